# Installs unetpp into a scratch prefix, then configures, builds and runs tests/consumer against it.
file(REMOVE_RECURSE ${WORK_DIR})
set(build ${WORK_DIR}/unetpp-build)
set(prefix ${WORK_DIR}/prefix)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S ${UNETPP_SOURCE_DIR} -B ${build} -G ${GENERATOR}
    -DUNETPP_BUILD_TESTS=OFF -DUNETPP_BUILD_BENCHMARKS=OFF -DUNETPP_BUILD_EXAMPLES=OFF
    -DCMAKE_INSTALL_PREFIX=${prefix})
run(${CMAKE_COMMAND} --install ${build})
run(${CMAKE_COMMAND} -S ${UNETPP_SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/consumer-build
    -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run(${WORK_DIR}/consumer-build/consumer)
message(STATUS "consumer project built and ran against ${prefix}")
