// Tests of modules/module: registration and dotted names, recursion and de-duplication, train /
// eval propagation, in-place dtype conversion (handles, names, requires_grad and gradients kept),
// zero_grad, state_dict order and round trip, every load_state_dict error (with the model left
// unchanged), non-strict loads, the printed tree, and summary() of the small Fashion-MNIST CNN
// (421,642 parameters).
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

std::vector<std::string> names_of(const nn::NamedTensors& list) {
  std::vector<std::string> out;
  for (const auto& [name, t] : list) out.push_back(name);
  return out;
}

std::vector<std::string> names_of(const StateDict& list, int) {
  std::vector<std::string> out;
  for (const auto& [name, t] : list) out.push_back(name);
  return out;
}

// A model with its own parameter, a buffer and a nested, named tree.
class Net : public nn::Module {
 public:
  Net() {
    scale = register_parameter("scale", ones({1}));
    features = register_module("features", std::make_shared<nn::Sequential>());
    features->push_back("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 2, 3)));
    features->push_back("bn", std::make_shared<nn::BatchNorm2d>(2));
    features->push_back("relu", std::make_shared<nn::ReLU>());
    head = register_module("head", std::make_shared<nn::Linear>(8, 3));
    steps = register_buffer("steps", zeros({2}));
  }
  Tensor forward(const Tensor& x) override { return (*head)(flatten((*features)(x), 1)) * scale; }
  std::string type_name() const override { return "Net"; }

  Tensor scale, steps;
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Linear> head;
};

// The small CNN of the reference (REFERENCE.md): 421,642 parameters.
std::shared_ptr<nn::Sequential> small_cnn() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 32, 3).padding(1)),
      std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions(32, 64, 3).padding(1)),
      std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(3136, 128),
      std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(128, 10),
  });
}

StateDict snapshot(const nn::Module& m) {
  StateDict out;
  for (auto& [name, t] : m.state_dict()) out.emplace_back(name, t.clone());
  return out;
}

bool same_state(const nn::Module& m, const StateDict& snap) {
  const StateDict now = m.state_dict();
  if (now.size() != snap.size()) return false;
  for (std::size_t i = 0; i < now.size(); ++i)
    if (now[i].first != snap[i].first || !equal(now[i].second, snap[i].second)) return false;
  return true;
}

TEST_CASE("Module: parameters, buffers and children with dotted names in registration order") {
  manual_seed(1);
  auto net = std::make_shared<Net>();
  CHECK(names_of(net->named_parameters()) ==
        std::vector<std::string>{"scale", "features.conv1.weight", "features.conv1.bias",
                                 "features.bn.weight", "features.bn.bias", "head.weight",
                                 "head.bias"});
  CHECK(names_of(net->named_parameters(/*recurse=*/false)) == std::vector<std::string>{"scale"});
  CHECK(names_of(net->named_buffers()) ==
        std::vector<std::string>{"steps", "features.bn.running_mean", "features.bn.running_var",
                                 "features.bn.num_batches_tracked"});
  const auto params = net->parameters();
  REQUIRE(params.size() == 7);
  CHECK(params[0].same(net->scale));
  CHECK(params[1].same(net->features->at<nn::Conv2d>(0)->weight()));
  CHECK(params[6].same(net->head->bias()));
  for (const auto& p : params) CHECK(p.requires_grad());
  for (const auto& b : net->buffers()) CHECK_FALSE(b.requires_grad());

  const auto children = net->named_children();
  REQUIRE(children.size() == 2);
  CHECK(children[0].first == "features");
  CHECK(children[0].second.get() == net->features.get());
  CHECK(net->children()[1].get() == net->head.get());

  std::vector<std::string> module_names;
  for (const auto& [name, m] : net->named_modules()) module_names.push_back(name);
  CHECK(module_names == std::vector<std::string>{"", "features", "features.conv1", "features.bn",
                                                 "features.relu", "head"});
  const auto mods = net->modules();
  REQUIRE(mods.size() == 6);
  CHECK(mods[0].get() == net.get());
  CHECK(mods[0].use_count() > 1);  // owned: the same control block as net
  CHECK(mods[4]->type_name() == "ReLU");

  // 1 + (18 + 2) + (2 + 2) + (24 + 3)
  CHECK(net->num_parameters() == 52);
  CHECK(net->num_parameters(/*trainable_only=*/true) == 52);
}

TEST_CASE("Module: a module that is not owned by a shared_ptr lists itself without ownership") {
  nn::Sequential seq{std::make_shared<nn::ReLU>(), std::make_shared<nn::Tanh>()};
  const auto mods = seq.modules();
  REQUIRE(mods.size() == 3);
  CHECK(mods[0].get() == &seq);
  CHECK(mods[1]->type_name() == "ReLU");
  CHECK(mods[2]->type_name() == "Tanh");
}

TEST_CASE("Module: shared modules and parameters are listed once, state_dict names every path") {
  auto shared = std::make_shared<nn::Linear>(2, 2);
  nn::Sequential seq;
  seq.push_back(shared);
  seq.push_back(std::make_shared<nn::ReLU>());
  seq.push_back(shared);
  CHECK(names_of(seq.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias"});
  CHECK(seq.parameters().size() == 2);
  CHECK(seq.modules().size() == 3);  // seq, the Linear once, the ReLU
  CHECK(seq.num_parameters() == 6);
  CHECK(names_of(seq.state_dict(), 0) ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  // A tensor registered twice under two names is one parameter.
  nn::Sequential holder;
  Tensor w = zeros({3});
  holder.register_parameter("a", w);
  holder.register_parameter("b", w);
  CHECK(holder.parameters().size() == 1);
  CHECK(holder.num_parameters() == 3);
}

TEST_CASE("Module: registration errors") {
  nn::Sequential m;
  m.register_parameter("w", zeros({2}));
  CT_REQUIRE_ERROR(m.register_parameter("a.b", zeros({2})),
                   "register_parameter: expected a name without '.', got 'a.b'");
  CT_REQUIRE_ERROR(m.register_parameter("", zeros({2})),
                   "register_parameter: expected a non-empty name");
  CT_REQUIRE_ERROR(m.register_buffer("w", zeros({2})),
                   "register_buffer: expected a new name, got 'w' (already registered");
  CT_REQUIRE_ERROR(m.register_module("w", std::make_shared<nn::ReLU>()),
                   "register_module: expected a new name, got 'w'");
  CT_REQUIRE_ERROR(m.register_module("r", std::shared_ptr<nn::ReLU>()),
                   "register_module: expected a module for 'r', got nullptr");
  CT_REQUIRE_ERROR(m.register_parameter("u", Tensor()),
                   "register_parameter: expected a defined tensor for 'u'");
  const Tensor leaf = ones({2}).requires_grad_();
  CT_REQUIRE_ERROR(m.register_parameter("v", leaf * 2.0),
                   "register_parameter: expected a leaf tensor for 'v', got the output of mul");
  CT_REQUIRE_ERROR(m.register_parameter("i", zeros({2}, kInt64)),
                   "requires_grad_: expected a floating-point tensor, got int64");
  // A frozen parameter: saved and counted, not trainable.
  m.register_parameter("frozen", zeros({5}), /*requires_grad=*/false);
  CHECK(m.num_parameters() == 7);
  CHECK(m.num_parameters(/*trainable_only=*/true) == 2);
  // Nothing half-registered by the failures.
  CHECK(names_of(m.named_parameters()) == std::vector<std::string>{"w", "frozen"});
}

TEST_CASE("Module: train and eval reach every module") {
  auto net = std::make_shared<Net>();
  for (const auto& m : net->modules()) CHECK(m->is_training());
  net->eval();
  for (const auto& m : net->modules()) CHECK_FALSE(m->is_training());
  net->features->train();
  CHECK_FALSE(net->is_training());
  CHECK(net->features->at<nn::BatchNorm2d>(1)->is_training());
  CHECK_FALSE(net->head->is_training());
  net->train(true);
  for (const auto& m : net->modules()) CHECK(m->is_training());
}

TEST_CASE("Module: to(dtype) converts in place, keeping handles, names, flags and gradients") {
  manual_seed(2);
  auto net = std::make_shared<Net>();
  const Tensor x = randn({2, 1, 4, 4});
  sum(net->forward(x)).backward();
  const Tensor w = net->head->weight();  // a handle, as an optimizer would hold
  const std::vector<float> before = w.to_vector<float>();
  const auto names_before = names_of(net->state_dict(), 0);
  REQUIRE(w.grad().defined());
  const std::vector<float> grad_before = w.grad().to_vector<float>();

  net->to(kFloat64);
  CHECK(w.dtype() == kFloat64);
  CHECK(w.requires_grad());
  CHECK(w.same(net->parameters()[5]));
  const std::vector<double> after = w.to_vector<double>();
  for (std::size_t i = 0; i < before.size(); ++i) CHECK(after[i] == static_cast<double>(before[i]));
  REQUIRE(w.grad().defined());
  CHECK(w.grad().dtype() == kFloat64);
  CHECK(w.grad().to_vector<double>()[3] == static_cast<double>(grad_before[3]));
  for (const auto& p : net->parameters()) {
    CHECK(p.dtype() == kFloat64);
    CHECK(p.requires_grad());
  }
  auto bn = net->features->at<nn::BatchNorm2d>(1);
  CHECK(bn->running_mean().dtype() == kFloat64);
  CHECK(bn->num_batches_tracked().dtype() == kInt64);  // integer buffers stay
  CHECK(names_of(net->state_dict(), 0) == names_before);

  // The model runs in float64 and gradients reach the same handles.
  net->zero_grad();
  sum(net->forward(x.to(kFloat64))).backward();
  CHECK(w.grad().dtype() == kFloat64);

  net->to(kFloat32);
  CHECK(w.dtype() == kFloat32);
  CHECK(w.to_vector<float>() == before);
  CT_REQUIRE_ERROR(net->to(kInt64), "Module::to: expected a floating dtype, got int64");
  net->to(kCPU);  // already there: a no-op
  CHECK(w.dtype() == kFloat32);
}

TEST_CASE("Module: zero_grad drops every parameter's gradient") {
  manual_seed(3);
  auto net = std::make_shared<Net>();
  sum(net->forward(randn({2, 1, 4, 4}))).backward();
  for (const auto& p : net->parameters()) CHECK(p.grad().defined());
  net->zero_grad();
  for (const auto& p : net->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("Module: state_dict lists parameters then buffers per module, and round-trips") {
  manual_seed(4);
  auto a = std::make_shared<Net>();
  const StateDict dict = a->state_dict();
  CHECK(names_of(dict, 0) ==
        std::vector<std::string>{"scale", "steps", "features.conv1.weight", "features.conv1.bias",
                                 "features.bn.weight", "features.bn.bias",
                                 "features.bn.running_mean", "features.bn.running_var",
                                 "features.bn.num_batches_tracked", "head.weight", "head.bias"});
  for (const auto& [name, t] : dict) {
    CHECK_FALSE(t.requires_grad());
    CHECK(t.is_leaf());
  }
  CHECK(dict[2].second.storage() == a->features->at<nn::Conv2d>(0)->weight().storage());

  // Train a's BatchNorm a little so its buffers differ from a fresh model's.
  const Tensor x = randn({3, 1, 4, 4});
  a->forward(x);
  a->forward(x * 2.0);
  auto b = std::make_shared<Net>();
  a->eval();
  b->eval();
  CHECK_FALSE(equal(a->forward(x), b->forward(x)));
  const Tensor bw = b->head->weight();
  b->load_state_dict(a->state_dict());
  CHECK(equal(a->forward(x), b->forward(x)));
  CHECK(bw.same(b->head->weight()));  // loaded in place
  CHECK(b->features->at<nn::BatchNorm2d>(1)->num_batches_tracked().item() == 2.0);
  // Loading a model's own state is harmless.
  const StateDict snap = snapshot(*b);
  b->load_state_dict(b->state_dict());
  CHECK(same_state(*b, snap));
}

TEST_CASE("Module: load_state_dict validates everything before writing anything") {
  manual_seed(5);
  auto model = small_cnn();
  auto other = small_cnn();
  const StateDict good = other->state_dict();
  const StateDict snap = snapshot(*model);

  SECTION("missing entry") {
    StateDict d = good;
    d.erase(d.begin() + 3);  // 3.bias
    CT_REQUIRE_ERROR(model->load_state_dict(d),
                     "load_state_dict: expected an entry for 3.bias, got none (missing)");
  }
  SECTION("unexpected entry") {
    StateDict d = good;
    d.emplace_back("10.weight", zeros({2}));
    CT_REQUIRE_ERROR(model->load_state_dict(d), "got unexpected 10.weight");
  }
  SECTION("shape mismatch") {
    StateDict d = good;
    d[0].second = zeros({16, 1, 3, 3});
    CT_REQUIRE_ERROR(
        model->load_state_dict(d),
        "load_state_dict: expected 0.weight of shape [32, 1, 3, 3], got [16, 1, 3, 3]");
  }
  SECTION("dtype mismatch") {
    StateDict d = good;
    d[1].second = d[1].second.to(kFloat64);
    CT_REQUIRE_ERROR(model->load_state_dict(d),
                     "load_state_dict: expected 0.bias of dtype float32, got float64");
  }
  SECTION("undefined tensor") {
    StateDict d = good;
    d[2].second = Tensor();
    CT_REQUIRE_ERROR(model->load_state_dict(d), "expected a tensor for 3.weight, got an undefined");
  }
  SECTION("duplicate name") {
    StateDict d = good;
    d.push_back(d[0]);
    CT_REQUIRE_ERROR(model->load_state_dict(d), "expected each name once, got 0.weight twice");
  }
  SECTION("every problem in one message, the good entries not written") {
    StateDict d = good;
    d[0].second = zeros({32, 1, 3});
    d.erase(d.begin() + 7);
    d.emplace_back("extra", zeros({1}));
    try {
      model->load_state_dict(d);
      FAIL("no error");
    } catch (const Error& e) {
      const std::string msg = e.message();
      CHECK(msg.find("0.weight of shape [32, 1, 3, 3], got [32, 1, 3]") != std::string::npos);
      CHECK(msg.find("9.bias, got none (missing)") != std::string::npos);
      CHECK(msg.find("unexpected extra") != std::string::npos);
    }
  }
  // Whatever failed, the model is exactly as it was.
  CHECK(same_state(*model, snap));
}

TEST_CASE("Module: non-strict loads take the common entries and ignore the rest") {
  manual_seed(6);
  auto model = small_cnn();
  auto other = small_cnn();
  StateDict d = other->state_dict();
  d.erase(d.begin() + 2, d.end());  // only 0.weight and 0.bias
  d.emplace_back("head.weight", zeros({3}));
  model->load_state_dict(d, /*strict=*/false);
  CHECK(equal(model->at<nn::Conv2d>(0)->weight(), other->at<nn::Conv2d>(0)->weight()));
  CHECK_FALSE(equal(model->at<nn::Linear>(7)->weight(), other->at<nn::Linear>(7)->weight()));
  // Shapes are checked either way.
  d[0].second = zeros({1});
  CT_REQUIRE_ERROR(model->load_state_dict(d, false), "expected 0.weight of shape [32, 1, 3, 3]");
}

TEST_CASE("Module: str() prints the tree like PyTorch") {
  auto net = std::make_shared<Net>();
  CHECK(net->str() ==
        "Net(\n"
        "  (features): Sequential(\n"
        "    (conv1): Conv2d(1, 2, kernel_size=[3, 3], stride=[1, 1])\n"
        "    (bn): BatchNorm2d(2, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)\n"
        "    (relu): ReLU()\n"
        "  )\n"
        "  (head): Linear(in_features=8, out_features=3, bias=true)\n"
        ")");
  std::ostringstream os;
  os << *net->head;
  CHECK(os.str() == "Linear(in_features=8, out_features=3, bias=true)");
}

TEST_CASE("Module: summary() of the small CNN on [1, 1, 28, 28]") {
  manual_seed(7);
  auto cnn = small_cnn();
  CHECK(cnn->num_parameters() == 421642);
  const std::string text = cnn->summary({1, 1, 28, 28});
  INFO(text);
  CHECK(text ==
        "Sequential summary: input [1, 1, 28, 28] (float32), output [1, 10]\n"
        "------------------------------------------\n"
        "Layer  Type       Output shape      Params\n"
        "------------------------------------------\n"
        "0      Conv2d     [1, 32, 28, 28]      320\n"
        "1      ReLU       [1, 32, 28, 28]        0\n"
        "2      MaxPool2d  [1, 32, 14, 14]        0\n"
        "3      Conv2d     [1, 64, 14, 14]   18,496\n"
        "4      ReLU       [1, 64, 14, 14]        0\n"
        "5      MaxPool2d  [1, 64, 7, 7]          0\n"
        "6      Flatten    [1, 3136]              0\n"
        "7      Linear     [1, 128]         401,536\n"
        "8      ReLU       [1, 128]               0\n"
        "9      Linear     [1, 10]            1,290\n"
        "------------------------------------------\n"
        "Total params: 421,642\n"
        "Trainable params: 421,642\n"
        "Non-trainable params: 0\n");
}

TEST_CASE("Module: summary() leaves the model as it was and names nested layers") {
  manual_seed(8);
  auto net = std::make_shared<Net>();
  net->features->at<nn::Conv2d>(0)->weight().requires_grad_(false);
  auto bn = net->features->at<nn::BatchNorm2d>(1);
  const StateDict snap = snapshot(*net);
  const std::string text = net->summary({2, 1, 4, 4}, kFloat32);
  INFO(text);
  CHECK(text.find("(self)          Net") != std::string::npos);  // owns a parameter: its row
  CHECK(text.find("features.conv1  Conv2d") != std::string::npos);
  CHECK(text.find("features.bn     BatchNorm2d  [2, 2, 2, 2]") != std::string::npos);
  CHECK(text.find("head            Linear       [2, 3]") != std::string::npos);
  CHECK(text.find("Total params: 52\nTrainable params: 34\nNon-trainable params: 18\n") !=
        std::string::npos);
  CHECK(same_state(*net, snap));  // running statistics untouched
  for (const auto& m : net->modules()) CHECK(m->is_training());
  net->eval();
  net->summary({2, 1, 4, 4});
  CHECK_FALSE(bn->is_training());
  // A failing forward restores the flags too.
  net->train();
  CT_REQUIRE_ERROR(net->summary({2, 3, 4, 4}), "conv2d");
  for (const auto& m : net->modules()) CHECK(m->is_training());
}

TEST_CASE("Module: apply visits children before parents; group_digits") {
  auto net = std::make_shared<Net>();
  std::vector<std::string> order;
  net->apply([&](nn::Module& m) { order.push_back(m.type_name()); });
  CHECK(order ==
        std::vector<std::string>{"Conv2d", "BatchNorm2d", "ReLU", "Sequential", "Linear", "Net"});
  net->apply([](nn::Module& m) {
    if (auto* conv = dynamic_cast<nn::ConvNd*>(&m)) nn::init::constant_(conv->weight(), 0.5);
  });
  CHECK(net->features->at<nn::Conv2d>(0)->weight().to_vector<float>()[7] == 0.5f);
  CHECK(nn::group_digits(0) == "0");
  CHECK(nn::group_digits(999) == "999");
  CHECK(nn::group_digits(1000) == "1,000");
  CHECK(nn::group_digits(421642) == "421,642");
  CHECK(nn::group_digits(-1234567) == "-1,234,567");
}

}  // namespace
