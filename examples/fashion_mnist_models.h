// The two models of train_fashion_mnist (--model small | deep), in a header of their own so that
// onnx_models exports the same networks. Both take [N, 1, 28, 28] images and give [N, 10] logits;
// their state_dict names are those of the same nn.Sequential in PyTorch ("0.weight",
// "1.running_mean", ...), so weights move between the two as they are.
//   small  Conv(1,32,3,p1)-ReLU-MaxPool2-Conv(32,64,3,p1)-ReLU-MaxPool2-Flatten-Linear(3136,128)-
//          ReLU-Linear(128,10) (REFERENCE.md's CNN, 421,642 params; the benchmarks time it too)
//   deep   two blocks of two 3x3 convs (no bias) each followed by BatchNorm2d and ReLU, a max pool
//          after each block, then Flatten-Dropout(0.3)-Linear(3136,256)-ReLU-Dropout(0.3)-
//          Linear(256,10)
// load_weights is --init-from: a safetensors file's tensors into such a model, every name, shape
// and dtype checked before anything is written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "convtape.h"
#include "io/safetensors.h"

namespace train_fashion_mnist {

inline std::shared_ptr<convtape::nn::Sequential> make_model(const std::string& name) {
  using namespace convtape;
  auto m = std::make_shared<nn::Sequential>();
  if (name == "small") {
    m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 32, 3).padding(1)));
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::MaxPool2d>(2));
    m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(32, 64, 3).padding(1)));
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::MaxPool2d>(2));
    m->push_back(std::make_shared<nn::Flatten>());
    m->push_back(std::make_shared<nn::Linear>(3136, 128));
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::Linear>(128, 10));
    return m;
  }
  CT_CHECK(name == "deep", "make_model: expected the model name small or deep, got '{}'", name);
  const std::int64_t widths[] = {1, 32, 32, 64, 64};
  for (int i = 0; i < 4; ++i) {
    m->push_back(std::make_shared<nn::Conv2d>(
        nn::Conv2dOptions(widths[i], widths[i + 1], 3).padding(1).bias(false)));
    m->push_back(std::make_shared<nn::BatchNorm2d>(widths[i + 1]));
    m->push_back(std::make_shared<nn::ReLU>());
    if (i % 2 == 1) m->push_back(std::make_shared<nn::MaxPool2d>(2));
  }
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Dropout>(0.3));
  m->push_back(std::make_shared<nn::Linear>(3136, 256));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Dropout>(0.3));
  m->push_back(std::make_shared<nn::Linear>(256, 10));
  return m;
}

// The tensors of the safetensors file at path into model (strict: the file holds exactly the
// model's state_dict names, with its shapes and dtypes; F16 and BF16 files load as float32). A
// mismatch throws, naming the file and every entry that differs: "train_fashion_mnist:
// --init-from w.safetensors: load_state_dict: expected an entry for 1.running_mean, got none
// (missing)". Returns the number of tensors loaded.
inline std::size_t load_weights(convtape::nn::Module& model, const std::string& path) {
  const convtape::StateDict dict = convtape::io::load_safetensors(path);
  try {
    model.load_state_dict(dict);
  } catch (const convtape::Error& e) {
    CT_FAIL("train_fashion_mnist: --init-from {}: {}", path, e.message());
  }
  return dict.size();
}

}  // namespace train_fashion_mnist
