// convtape: the umbrella header. Include this to get tensors, the autograd tape and every op.
#pragma once

#include "core/autograd.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/random.h"
#include "core/shape.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "cuda/cuda.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/gradcheck.h"
#include "ops/linalg.h"
#include "ops/loss.h"
#include "ops/reduce.h"
#include "ops/shape.h"
