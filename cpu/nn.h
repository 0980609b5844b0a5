// CPU kernels for softmax / log-softmax over one axis, negative log-likelihood with integer
// labels (class weights, ignore_index), and index_select / index_add along one dim.
// The kernels' signatures and contracts: core/kernels.def (declared by cpu/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "cpu/backend_kernels.h"
