#pragma once
// The umbrella header: everything a unetpp user needs. Keep the list sorted and free of duplicates.

#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/log.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/random.hpp"
#include "unetpp/simd/simd.hpp"
#include "unetpp/tensor.hpp"
