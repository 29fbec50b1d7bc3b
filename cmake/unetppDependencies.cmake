# Finds what unetpp's headers need, for this project's build and for find_package(unetpp):
# Eigen 3, OpenMP (optional) and stb (Debian's libstb-dev: headers in include/stb, libstb.so).
include(CMakeFindDependencyMacro)
find_dependency(Eigen3 3.3 NO_MODULE)
find_package(OpenMP COMPONENTS CXX QUIET)

if(NOT TARGET unetpp::stb)
  find_path(UNETPP_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb)
  find_library(UNETPP_STB_LIBRARY NAMES stb)
  if(NOT UNETPP_STB_INCLUDE_DIR OR NOT UNETPP_STB_LIBRARY)
    message(FATAL_ERROR "unetpp needs stb (stb_image.h and libstb): on Debian, "
                        "apt-get install libstb-dev")
  endif()
  add_library(unetpp::stb UNKNOWN IMPORTED)
  set_target_properties(unetpp::stb PROPERTIES
    IMPORTED_LOCATION ${UNETPP_STB_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${UNETPP_STB_INCLUDE_DIR})
endif()
