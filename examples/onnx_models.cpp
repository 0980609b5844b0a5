// onnx_models: exports a set of models to ONNX with onnx::export_model and writes, beside each,
// example inputs and convtape's outputs for them, so that another runtime can be checked against
// convtape (scripts/check-onnx runs every model in ONNX Runtime and compares). Built where
// libconvtape_onnx is (Debian's libonnx-dev). The models, with seeded random weights:
//   fashion_small  train_fashion_mnist's small CNN (conv, ReLU, max pool, flatten, linear)
//   fashion_deep   train_fashion_mnist's --model deep (BatchNorm2d with trained running
//                  statistics, Dropout), in eval mode
//   conv1d_stack   grouped, dilated, strided Conv1d with per-side, "same" and no padding
//   conv2d_stack   the same in 2-d, with "same_lower" and per-dim kernel sizes
//   conv3d_stack   the same in 3-d, a depthwise conv among them
//   decoder        ConvTranspose2d with output_padding, BatchNorm2d (eval, after a few training
//                  steps), ReLU, bilinear Upsample, a grouped dilated ConvTranspose2d
//   pool_mix       padding modes (reflect, replicate, circular), LeakyReLU, Tanh, Sigmoid, max
//                  and average pooling with ceil_mode, global average pooling, Softmax
//   resample_mix   Upsample: nearest, bilinear with align_corners, nearest-exact, a scale of 1.5
//   skip_two_inputs  a module of two inputs joined by cat and a residual add
// Output, in --out DIR (created when missing):
//   NAME.onnx                    the model, opset 17; every model but conv1d_stack is exported
//                                with dynamic_batch
//   NAME.bB.safetensors          one case: the inputs and convtape's outputs (float32) at batch
//                                B, under the model's ONNX input and output names; the file's
//                                metadata says which is which ("inputs", "outputs": comma lists)
//   manifest.json                every model: its file, inputs, outputs, dynamic_batch and cases
// The exported models use batch 2; a dynamic-batch model gets a second case at batch 5. A model
// that fails to export is reported on stderr (and in the manifest, with the error) and the others
// are still written; the exit status is then 1.
//   usage: onnx_models --out DIR [--seed S] [--only NAME[,NAME...]] [--list]
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "convtape.h"
#include "fashion_mnist_models.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "onnx/export.h"

using namespace convtape;

namespace {

constexpr const char* kHelp =
    "onnx_models: exports a set of convtape models to ONNX and writes example inputs and\n"
    "convtape's outputs beside each (for scripts/check-onnx).\n"
    "  --out DIR          output directory (created when missing; required)\n"
    "  --seed S           seed of the weights and inputs, 0 to 2^62 (default 0)\n"
    "  --only A,B         only the named models (see --list)\n"
    "  --list             print the models' names and what each covers, and exit\n";

// One model to export: how to build it (weights drawn from the default generator), the shape of
// each input at batch 1 (dim 0 is replaced by the batch), whether its batch is dynamic in ONNX,
// and the steps it trains for before export (so that BatchNorm's running statistics and affine
// parameters are no longer their initial values).
struct ModelCase {
  std::string name;
  std::string covers;
  std::function<std::shared_ptr<nn::Module>()> build;
  std::vector<Shape> inputs;  // per input, dim 0 is the batch
  bool dynamic_batch = true;
  int train_steps = 0;
};

// Two inputs a [N, 3, H, W] and b [N, 5, H, W]: each through a conv of its own, joined by cat
// along the channels, a "same" conv and a residual add of the first branch.
class SkipJoin : public nn::Module {
 public:
  SkipJoin() {
    conv_a = register_module("conv_a",
                             std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 8, 3).padding(1)));
    conv_b = register_module("conv_b", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(5, 8, 1)));
    mix = register_module(
        "mix", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(16, 8, 3).padding("same")));
  }
  Tensor forward_inputs(const std::vector<Tensor>& in) override {
    CT_CHECK(in.size() == 2, "SkipJoin: expected 2 inputs, got {}", in.size());
    const Tensor a = (*conv_a)(in[0]);
    const Tensor b = (*conv_b)(in[1]);
    return add((*mix)(cat({relu(a), b}, 1)), a);
  }
  std::string type_name() const override { return "SkipJoin"; }

  std::shared_ptr<nn::Conv2d> conv_a, conv_b, mix;
};

std::vector<ModelCase> model_cases() {
  using PadPairs = std::vector<std::pair<std::int64_t, std::int64_t>>;
  std::vector<ModelCase> cases;
  cases.push_back({"fashion_small",
                   "train_fashion_mnist's small CNN",
                   [] { return train_fashion_mnist::make_model("small"); },
                   {{1, 1, 28, 28}}});
  cases.push_back({"fashion_deep",
                   "train_fashion_mnist --model deep: BatchNorm2d (trained statistics), Dropout, "
                   "eval mode",
                   [] { return train_fashion_mnist::make_model("deep"); },
                   {{1, 1, 28, 28}},
                   true,
                   3});
  cases.push_back(
      {"conv1d_stack",
       "Conv1d: groups, dilation, stride, per-side / same / no padding; static batch",
       [] {
         return std::make_shared<nn::Sequential>(
             std::make_shared<nn::Conv1d>(
                 nn::Conv1dOptions(4, 8, 3).groups(2).dilation(2).padding(PadPairs{{1, 2}})),
             std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Conv1d>(
                 nn::Conv1dOptions(8, 8, 5).stride(2).groups(4).padding("same")),
             std::make_shared<nn::Conv1d>(
                 nn::Conv1dOptions(8, 6, 3).stride(3).dilation(2).bias(false)));
       },
       {{1, 4, 37}},
       false});
  cases.push_back(
      {"conv2d_stack",
       "Conv2d: groups, per-dim dilation and stride, per-side / same / same_lower padding",
       [] {
         return std::make_shared<nn::Sequential>(
             std::make_shared<nn::Conv2d>(nn::Conv2dOptions(4, 8, std::vector<std::int64_t>{3, 5})
                                              .groups(4)
                                              .dilation(std::vector<std::int64_t>{2, 1})
                                              .padding(PadPairs{{1, 2}, {0, 3}})),
             std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Conv2d>(nn::Conv2dOptions(8, 12, 3)
                                              .stride(std::vector<std::int64_t>{2, 3})
                                              .groups(2)
                                              .padding("same")),
             std::make_shared<nn::Conv2d>(nn::Conv2dOptions(12, 6, 4).padding("same_lower")),
             std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Conv2d>(nn::Conv2dOptions(6, 6, std::vector<std::int64_t>{1, 3})
                                              .stride(2)
                                              .dilation(std::vector<std::int64_t>{1, 3})
                                              .padding(PadPairs{{0, 1}})));
       },
       {{1, 4, 19, 23}}});
  cases.push_back(
      {"conv3d_stack",
       "Conv3d: groups (one depthwise), dilation, stride, per-side / same padding",
       [] {
         return std::make_shared<nn::Sequential>(
             std::make_shared<nn::Conv3d>(nn::Conv3dOptions(4, 8, 3)
                                              .groups(2)
                                              .dilation(std::vector<std::int64_t>{1, 2, 1})
                                              .padding(PadPairs{{1, 0}, {2, 1}, {0, 1}})),
             std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Conv3d>(
                 nn::Conv3dOptions(8, 8, std::vector<std::int64_t>{3, 2, 3})
                     .stride(std::vector<std::int64_t>{1, 2, 2})
                     .groups(8)
                     .padding("same")),
             std::make_shared<nn::Conv3d>(nn::Conv3dOptions(8, 4, 2).stride(2)));
       },
       {{1, 4, 7, 9, 8}}});
  cases.push_back(
      {"decoder",
       "ConvTranspose2d (output_padding; groups and dilation), BatchNorm2d (eval, trained "
       "statistics), ReLU, bilinear Upsample",
       [] {
         return std::make_shared<nn::Sequential>(
             std::make_shared<nn::ConvTranspose2d>(
                 nn::ConvTranspose2dOptions(8, 6, 3).stride(2).padding(1).output_padding(1)),
             std::make_shared<nn::BatchNorm2d>(6), std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Upsample>(
                 nn::UpsampleOptions().scale_factor(2.0).mode("bilinear")),
             std::make_shared<nn::ConvTranspose2d>(
                 nn::ConvTranspose2dOptions(6, 4, std::vector<std::int64_t>{3, 2})
                     .stride(std::vector<std::int64_t>{1, 2})
                     .groups(2)
                     .dilation(std::vector<std::int64_t>{2, 1})
                     .output_padding(std::vector<std::int64_t>{0, 1})));
       },
       {{1, 8, 5, 6}},
       true,
       3});
  cases.push_back(
      {"pool_mix",
       "reflect / replicate / circular padding_mode, LeakyReLU, Tanh, Sigmoid, max and average "
       "pooling (ceil_mode, count_include_pad false), global average pool, Linear, Softmax",
       [] {
         return std::make_shared<nn::Sequential>(
             std::make_shared<nn::Conv2d>(
                 nn::Conv2dOptions(3, 8, 3).padding(1).padding_mode("reflect")),
             std::make_shared<nn::LeakyReLU>(0.1),
             std::make_shared<nn::MaxPool2d>(PoolOptions(3).stride(2).padding(1).ceil_mode()),
             std::make_shared<nn::Conv2d>(
                 nn::Conv2dOptions(8, 8, 3).padding(2).dilation(2).padding_mode("replicate")),
             std::make_shared<nn::Tanh>(),
             std::make_shared<nn::AvgPool2d>(
                 PoolOptions(3).stride(2).padding(1).ceil_mode().count_include_pad(false)),
             std::make_shared<nn::Conv2d>(
                 nn::Conv2dOptions(8, 6, 3).padding(1).padding_mode("circular")),
             std::make_shared<nn::Sigmoid>(), std::make_shared<nn::AdaptiveAvgPool2d>(Shape{1, 1}),
             std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(6, 4),
             std::make_shared<nn::Softmax>(1));
       },
       {{1, 3, 17, 15}}});
  cases.push_back(
      {"resample_mix",
       "Upsample nearest (scale 2), bilinear with align_corners (size), nearest-exact (size), "
       "bilinear (scale 1.5)",
       [] {
         return std::make_shared<nn::Sequential>(
             std::make_shared<nn::Upsample>(nn::UpsampleOptions().scale_factor(2.0)),
             std::make_shared<nn::Conv2d>(nn::Conv2dOptions(4, 4, 3).padding(1)),
             std::make_shared<nn::Upsample>(nn::UpsampleOptions()
                                                .size(std::vector<std::int64_t>{13, 11})
                                                .mode("bilinear")
                                                .align_corners(true)),
             std::make_shared<nn::Upsample>(
                 nn::UpsampleOptions().size(std::vector<std::int64_t>{7, 9}).mode("nearest-exact")),
             std::make_shared<nn::Upsample>(
                 nn::UpsampleOptions().scale_factor(1.5).mode("bilinear")));
       },
       {{1, 4, 6, 5}}});
  cases.push_back({"skip_two_inputs",
                   "two inputs, cat along the channels, residual add",
                   [] { return std::make_shared<SkipJoin>(); },
                   {{1, 3, 12, 12}, {1, 5, 12, 12}}});
  return cases;
}

Shape with_batch(Shape s, std::int64_t batch) {
  s[0] = batch;
  return s;
}

std::vector<Tensor> random_inputs(const ModelCase& c, std::int64_t batch) {
  std::vector<Tensor> xs;
  for (const Shape& s : c.inputs) xs.push_back(randn(with_batch(s, batch)));
  return xs;
}

// A few SGD steps in training mode towards random targets: BatchNorm's running statistics and
// every parameter move away from their initial values. The model is left in eval mode.
void train_a_little(nn::Module& model, const ModelCase& c) {
  if (c.train_steps > 0) {
    model.train();
    optim::SGD sgd(model.parameters(), optim::SGDOptions(0.05).momentum(0.9));
    for (int step = 0; step < c.train_steps; ++step) {
      const Tensor y = model(random_inputs(c, 8));
      const Tensor loss = mse_loss(y, randn(y.shape()));
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }
  }
  model.eval();
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    if (ch == '"' || ch == '\\')
      out += std::string("\\") + ch;
    else if (static_cast<unsigned char>(ch) < 0x20)
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(ch)));
    else
      out += ch;
  }
  return out + "\"";
}

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json_string(items[i]);
  return out + "]";
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out;
}

// The names export_model gives by default: "input" for one input, "input0", "input1", ... for
// several; "output".
std::vector<std::string> input_names(std::size_t n) {
  if (n == 1) return {"input"};
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) names.push_back(fmt::format("input{}", i));
  return names;
}

// Exports one model and writes its cases; returns the manifest entry. Throws on failure.
std::string export_case(const ModelCase& c, const std::filesystem::path& dir) {
  std::shared_ptr<nn::Module> model = c.build();
  train_a_little(*model, c);
  const std::int64_t export_batch = 2;
  const std::vector<std::int64_t> batches =
      c.dynamic_batch ? std::vector<std::int64_t>{2, 5} : std::vector<std::int64_t>{2};
  const std::vector<std::string> in_names = input_names(c.inputs.size());
  const std::vector<std::string> out_names = {"output"};
  onnx::ExportOptions options;
  options.dynamic_batch = c.dynamic_batch;
  options.input_names = in_names;
  options.output_names = out_names;
  const std::string onnx_file = c.name + ".onnx";
  {
    const std::vector<Tensor> example = random_inputs(c, export_batch);
    onnx::export_model(*model, example, (dir / onnx_file).string(), options);
  }
  std::vector<std::string> case_entries;
  for (const std::int64_t batch : batches) {
    const std::vector<Tensor> xs = random_inputs(c, batch);
    Tensor y;
    {
      NoGradGuard no_grad;
      y = (*model)(xs);
    }
    StateDict tensors;
    for (std::size_t i = 0; i < xs.size(); ++i) tensors.emplace_back(in_names[i], xs[i]);
    tensors.emplace_back(out_names[0], y);
    const std::string file = fmt::format("{}.b{}.safetensors", c.name, batch);
    io::save_safetensors(tensors, (dir / file).string(),
                         {{"model", c.name},
                          {"inputs", joined(in_names)},
                          {"outputs", joined(out_names)},
                          {"batch", std::to_string(batch)}});
    case_entries.push_back(
        fmt::format("{{\"batch\": {}, \"file\": {}}}", batch, json_string(file)));
  }
  std::string cases_json = "[";
  for (std::size_t i = 0; i < case_entries.size(); ++i)
    cases_json += (i ? ", " : "") + case_entries[i];
  cases_json += "]";
  return fmt::format(
      "{{\"name\": {}, \"covers\": {}, \"onnx\": {}, \"opset\": {}, \"dynamic_batch\": {}, "
      "\"export_batch\": {}, \"inputs\": {}, \"outputs\": {}, \"cases\": {}}}",
      json_string(c.name), json_string(c.covers), json_string(onnx_file), options.opset,
      c.dynamic_batch ? "true" : "false", export_batch, json_list(in_names), json_list(out_names),
      cases_json);
}

// FNV-1a of the name, from the run's seed.
std::uint64_t model_seed(std::uint64_t seed, const std::string& name) {
  std::uint64_t h = 14695981039346656037ull ^ seed;
  for (const char ch : name) {
    h ^= static_cast<unsigned char>(ch);
    h *= 1099511628211ull;
  }
  return h;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = text.find(',', start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir, only;
  long long seed = 0;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (a == "--list") {
      list = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "onnx_models: unknown argument or missing value: %s (try --help)\n",
                   a.c_str());
      return 2;
    }
    const char* v = argv[++i];
    if (a == "--out") {
      out_dir = v;
    } else if (a == "--only") {
      only = v;
    } else if (a == "--seed") {
      char* end = nullptr;
      seed = std::strtoll(v, &end, 10);
      if (end == v || *end != '\0' || seed < 0 || seed > (1LL << 62)) {
        std::fprintf(stderr, "onnx_models: --seed expects an integer in [0, 2^62], got '%s'\n", v);
        return 2;
      }
    } else {
      std::fprintf(stderr, "onnx_models: unknown argument %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  std::vector<ModelCase> cases = model_cases();
  if (list) {
    for (const ModelCase& c : cases) std::printf("%-16s %s\n", c.name.c_str(), c.covers.c_str());
    return 0;
  }
  if (out_dir.empty()) {
    std::fprintf(stderr, "onnx_models: expected --out DIR, got none (try --help)\n");
    return 2;
  }
  if (!only.empty()) {
    std::vector<ModelCase> picked;
    for (const std::string& name : split_commas(only)) {
      bool found = false;
      for (const ModelCase& c : cases)
        if (c.name == name) {
          picked.push_back(c);
          found = true;
        }
      if (!found) {
        std::fprintf(stderr, "onnx_models: expected a model name of --list in --only, got '%s'\n",
                     name.c_str());
        return 2;
      }
    }
    cases = std::move(picked);
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    std::fprintf(stderr, "onnx_models: cannot create %s: %s\n", out_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  std::vector<std::string> entries;
  int failed = 0;
  for (const ModelCase& c : cases) {
    // Each model's weights and inputs from a seed of its own (--seed and its name): a model's
    // draws do not depend on which others run (--only) or on their order.
    manual_seed(model_seed(static_cast<std::uint64_t>(seed), c.name));
    try {
      entries.push_back(export_case(c, out_dir));
      std::printf("%-16s exported: %s\n", c.name.c_str(),
                  (std::filesystem::path(out_dir) / (c.name + ".onnx")).string().c_str());
    } catch (const Error& e) {
      ++failed;
      std::fprintf(stderr, "onnx_models: %s: %s\n", c.name.c_str(), e.message().c_str());
      entries.push_back(fmt::format("{{\"name\": {}, \"covers\": {}, \"error\": {}}}",
                                    json_string(c.name), json_string(c.covers),
                                    json_string(e.message())));
    }
  }
  std::string manifest = "{\"seed\": " + std::to_string(seed) + ", \"models\": [\n";
  for (std::size_t i = 0; i < entries.size(); ++i)
    manifest += "  " + entries[i] + (i + 1 < entries.size() ? ",\n" : "\n");
  manifest += "]}\n";
  const std::string manifest_path = (std::filesystem::path(out_dir) / "manifest.json").string();
  try {
    io::write_file_atomically(manifest_path, manifest.data(), manifest.size(), "onnx_models");
  } catch (const Error& e) {
    std::fprintf(stderr, "onnx_models: %s\n", e.what());
    return 1;
  }
  std::printf("%zu of %zu models exported to %s (manifest.json lists them)\n",
              cases.size() - static_cast<std::size_t>(failed), cases.size(), out_dir.c_str());
  return failed ? 1 : 0;
}
