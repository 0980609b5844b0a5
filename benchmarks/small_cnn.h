// The small CNN of REFERENCE.md that bench_train and bench_dist time: the training example's
// default model (examples/fashion_mnist_models.h, --model small), Conv(1,32,3,p1)-ReLU-MaxPool2-
// Conv(32,64,3,p1)-ReLU-MaxPool2-Flatten-Linear(3136,128)-ReLU-Linear(128,10), 421,642
// parameters, input [B, 1, 28, 28].
#pragma once

#include <memory>

#include "convtape.h"
#include "examples/fashion_mnist_models.h"

namespace ct_bench {

inline std::shared_ptr<convtape::nn::Sequential> small_cnn() {
  return train_fashion_mnist::make_model("small");
}

}  // namespace ct_bench
