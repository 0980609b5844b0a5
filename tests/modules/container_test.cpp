// Tests of modules/container: ModuleList (positional names, push_back / append / extend, insert
// at any position, set, pop / erase with PyTorch's renaming, indexing with negative indices, typed
// access, iteration) and ModuleDict (keys in insertion order, replacement in place, pop / erase /
// clear, lookup, typed access, iteration), both as children of a model: names in
// named_parameters() and state_dict(), the state-dict round trip, train / eval, the printouts as
// PyTorch's (checked against torch 1.13), and one test per error message (a forward call
// included: neither is callable), each leaving the container as it was.
#include <memory>
#include <string>
#include <vector>

#include "modules/container.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

std::vector<std::string> param_names(const nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& [name, t] : m.named_parameters()) names.push_back(name);
  return names;
}

std::vector<std::string> state_names(const nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& [name, t] : m.state_dict()) names.push_back(name);
  return names;
}

std::vector<std::string> child_names(const nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& [name, c] : m.named_children()) names.push_back(name);
  return names;
}

// The parameter registered under name, which must exist.
Tensor param(const nn::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters()) {
    if (n == name) return t;
  }
  FAIL("no parameter " << name);
  return {};
}

// A model that owns a ModuleList and a ModuleDict and decides itself how to call them.
class Net : public nn::Module {
 public:
  Net() {
    layers = register_module("layers", std::make_shared<nn::ModuleList>());
    layers->push_back(std::make_shared<nn::Linear>(3, 4));
    layers->push_back(std::make_shared<nn::ReLU>());
    layers->push_back(std::make_shared<nn::Linear>(4, 4));
    heads = register_module("heads", std::make_shared<nn::ModuleDict>());
    heads->insert("cls", std::make_shared<nn::Linear>(4, 2));
    heads->insert("box", std::make_shared<nn::Linear>(4, 1));
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (const auto& m : *layers) y = (*m)(y);
    return cat({(*(*heads)["cls"])(y), (*(*heads)["box"])(y)}, 1);
  }
  std::string type_name() const override { return "Net"; }
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::ModuleDict> heads;
};

TEST_CASE("ModuleList and ModuleDict: names, state dict, modes and printout in a model") {
  manual_seed(191);
  Net net;
  CHECK(param_names(net) == std::vector<std::string>{"layers.0.weight", "layers.0.bias",
                                                     "layers.2.weight", "layers.2.bias",
                                                     "heads.cls.weight", "heads.cls.bias",
                                                     "heads.box.weight", "heads.box.bias"});
  std::vector<std::string> state;
  for (const auto& [name, t] : net.state_dict()) state.push_back(name);
  CHECK(state == param_names(net));
  const Tensor x = randn({5, 3});
  const Tensor y = net(x);
  CHECK(y.shape() == Shape{5, 3});
  Net copy;
  copy.load_state_dict(net.state_dict());
  CHECK(equal(copy(x), y));
  net.eval();
  CHECK_FALSE(net.layers->is_training());
  CHECK_FALSE((*net.layers)[1]->is_training());
  CHECK_FALSE((*net.heads)["box"]->is_training());
  CHECK(net.str() ==
        "Net(\n"
        "  (layers): ModuleList(\n"
        "    (0): Linear(in_features=3, out_features=4, bias=true)\n"
        "    (1): ReLU()\n"
        "    (2): Linear(in_features=4, out_features=4, bias=true)\n"
        "  )\n"
        "  (heads): ModuleDict(\n"
        "    (cls): Linear(in_features=4, out_features=2, bias=true)\n"
        "    (box): Linear(in_features=4, out_features=1, bias=true)\n"
        "  )\n"
        ")");
  CHECK(nn::ModuleList().str() == "ModuleList()");
  CHECK(nn::ModuleDict().str() == "ModuleDict()");
}

TEST_CASE("ModuleList: append, extend, insert, indexing and iteration") {
  auto a = std::make_shared<nn::Linear>(2, 2);
  auto b = std::make_shared<nn::ReLU>();
  auto c = std::make_shared<nn::Sigmoid>();
  nn::ModuleList list{a, b};
  CHECK(list.size() == 2);
  CHECK_FALSE(list.empty());
  CHECK(list[0].get() == a.get());
  CHECK(list[-1].get() == b.get());
  CHECK(list[-2].get() == a.get());
  CHECK(list.at<nn::Linear>(0).get() == a.get());
  CHECK(list.append(c).get() == c.get());
  list.extend({std::make_shared<nn::Tanh>()});
  nn::ModuleList other(std::vector<std::shared_ptr<nn::Module>>{std::make_shared<nn::ReLU>()});
  list.extend(other);
  list.insert(5, std::make_shared<nn::Sigmoid>());  // at the end: an append
  std::vector<std::string> types, names;
  for (const auto& m : list) types.push_back(m->type_name());
  for (const auto& [name, m] : list.named_children()) names.push_back(name);
  CHECK(types == std::vector<std::string>{"Linear", "ReLU", "Sigmoid", "Tanh", "ReLU", "Sigmoid"});
  CHECK(names == std::vector<std::string>{"0", "1", "2", "3", "4", "5"});
  list.extend(list);  // extending with itself copies the handles first
  CHECK(list.size() == 12);
  CHECK(list.children().size() == 12);
}

TEST_CASE("ModuleDict: keys in insertion order, lookup and iteration") {
  auto z = std::make_shared<nn::Linear>(2, 3);
  nn::ModuleDict dict(nn::NamedModules{{"zeta", z}, {"alpha", std::make_shared<nn::ReLU>()}});
  dict.update({{"mid", std::make_shared<nn::Tanh>()}});
  CHECK(dict.size() == 3);
  CHECK(dict.keys() == std::vector<std::string>{"zeta", "alpha", "mid"});
  CHECK(dict.contains("alpha"));
  CHECK_FALSE(dict.contains("beta"));
  CHECK(dict["zeta"].get() == z.get());
  CHECK(dict.at<nn::Linear>("zeta").get() == z.get());
  CHECK(dict.values()[2]->type_name() == "Tanh");
  std::vector<std::string> seen;
  for (const auto& [key, m] : dict) seen.push_back(key + ":" + m->type_name());
  CHECK(seen == std::vector<std::string>{"zeta:Linear", "alpha:ReLU", "mid:Tanh"});
  CHECK(param_names(dict) == std::vector<std::string>{"zeta.weight", "zeta.bias"});
  CHECK(dict.items().size() == 3);
}

TEST_CASE("ModuleList: insert at any position renames the children as PyTorch does") {
  manual_seed(7);
  Net net;
  auto mid = std::make_shared<nn::Linear>(4, 4);
  net.layers->insert(1, mid);  // ModuleList.insert(1, Linear(4, 4))
  CHECK(child_names(*net.layers) == std::vector<std::string>{"0", "1", "2", "3"});
  CHECK((*net.layers)[1].get() == mid.get());
  CHECK(param_names(*net.layers) ==
        std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"});
  CHECK(param(net, "layers.1.weight").same(mid->weight()));
  CHECK(param(net, "layers.1.bias").same(mid->bias()));
  CHECK(state_names(net) == std::vector<std::string>{"layers.0.weight", "layers.0.bias",
                                                     "layers.1.weight", "layers.1.bias",
                                                     "layers.3.weight", "layers.3.bias",
                                                     "heads.cls.weight", "heads.cls.bias",
                                                     "heads.box.weight", "heads.box.bias"});
  CHECK(net.layers->str() ==
        "ModuleList(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=true)\n"
        "  (1): Linear(in_features=4, out_features=4, bias=true)\n"
        "  (2): ReLU()\n"
        "  (3): Linear(in_features=4, out_features=4, bias=true)\n"
        ")");
  CHECK(net(randn({2, 3})).shape() == Shape{2, 3});  // the model still runs through all four

  // At the front: every name moves up by one ("1.weight" was "0.weight").
  const Tensor first_weight = net.layers->at<nn::Linear>(0)->weight();
  net.layers->insert(0, std::make_shared<nn::Tanh>());
  CHECK(param_names(*net.layers) ==
        std::vector<std::string>{"1.weight", "1.bias", "2.weight", "2.bias", "4.weight", "4.bias"});
  CHECK(param(*net.layers, "1.weight").same(first_weight));

  // Negative index, as Python's list.insert: -1 is before the last module, -size() the front.
  nn::ModuleList list{std::make_shared<nn::ReLU>(), std::make_shared<nn::Tanh>()};
  list.insert(-1, std::make_shared<nn::Sigmoid>());
  list.insert(-3, std::make_shared<nn::Identity>());
  list.insert(4, std::make_shared<nn::Flatten>());  // index == size(): an append
  std::vector<std::string> types;
  for (const auto& m : list) types.push_back(m->type_name());
  CHECK(types == std::vector<std::string>{"Identity", "ReLU", "Sigmoid", "Tanh", "Flatten"});
  CHECK(child_names(list) == std::vector<std::string>{"0", "1", "2", "3", "4"});
  CHECK(list.children().size() == 5);
  CHECK(list.children()[2]->type_name() == "Sigmoid");
}

TEST_CASE("ModuleList: set, pop and erase") {
  manual_seed(8);
  auto a = std::make_shared<nn::Linear>(3, 4);
  auto b = std::make_shared<nn::ReLU>();
  auto c = std::make_shared<nn::Linear>(4, 2);
  auto d = std::make_shared<nn::Tanh>();
  nn::ModuleList list{a, b, c, d};

  // pop returns the module and renames those after it, as PyTorch's del / pop.
  CHECK(list.pop(1).get() == b.get());
  CHECK(child_names(list) == std::vector<std::string>{"0", "1", "2"});
  CHECK(list[1].get() == c.get());
  CHECK(param_names(list) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});
  CHECK(param(list, "1.weight").same(c->weight()));
  CHECK(list.str() ==
        "ModuleList(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=true)\n"
        "  (1): Linear(in_features=4, out_features=2, bias=true)\n"
        "  (2): Tanh()\n"
        ")");
  list.erase(-1);  // del list[-1]
  CHECK(list.size() == 2);
  CHECK(child_names(list) == std::vector<std::string>{"0", "1"});
  CHECK(list[-1].get() == c.get());
  CHECK(list.pop(0).get() == a.get());
  CHECK(state_names(list) == std::vector<std::string>{"0.weight", "0.bias"});
  CHECK(param(list, "0.bias").same(c->bias()));

  // set replaces in place: the name and the position stay, the parameters are the new module's.
  list.append(b);
  auto e = std::make_shared<nn::Linear>(4, 5);
  list.set(-2, e);  // list[-2] = Linear(4, 5)
  CHECK(list[0].get() == e.get());
  CHECK(child_names(list) == std::vector<std::string>{"0", "1"});
  CHECK(param_names(list) == std::vector<std::string>{"0.weight", "0.bias"});
  CHECK(param(list, "0.weight").same(e->weight()));
  CHECK(list.str() ==
        "ModuleList(\n"
        "  (0): Linear(in_features=4, out_features=5, bias=true)\n"
        "  (1): ReLU()\n"
        ")");
  list.erase(1);
  list.erase(0);
  CHECK(list.empty());
  CHECK(list.children().empty());
  CHECK(list.str() == "ModuleList()");
  list.append(d);  // the names start again at "0"
  CHECK(child_names(list) == std::vector<std::string>{"0"});
}

TEST_CASE("ModuleDict: replacement in place, pop, erase and clear") {
  manual_seed(9);
  Net net;
  auto wide = std::make_shared<nn::Linear>(4, 3);
  CHECK(net.heads->insert("cls", wide).get() == wide.get());  // heads["cls"] = Linear(4, 3)
  CHECK(net.heads->keys() == std::vector<std::string>{"cls", "box"});
  CHECK(child_names(*net.heads) == std::vector<std::string>{"cls", "box"});
  CHECK((*net.heads)["cls"].get() == wide.get());
  CHECK(param(net, "heads.cls.weight").same(wide->weight()));
  CHECK(state_names(*net.heads) ==
        std::vector<std::string>{"cls.weight", "cls.bias", "box.weight", "box.bias"});
  CHECK(net.heads->str() ==
        "ModuleDict(\n"
        "  (cls): Linear(in_features=4, out_features=3, bias=true)\n"
        "  (box): Linear(in_features=4, out_features=1, bias=true)\n"
        ")");
  CHECK(net(randn({2, 3})).shape() == Shape{2, 4});  // the model now uses the wider head

  auto extra = std::make_shared<nn::ReLU>();
  net.heads->update({{"act", extra}, {"box", std::make_shared<nn::Linear>(4, 2)}});
  CHECK(net.heads->keys() == std::vector<std::string>{"cls", "box", "act"});
  CHECK(net.heads->at<nn::Linear>("box")->options().out_features() == 2);

  CHECK(net.heads->pop("cls").get() == wide.get());
  CHECK(net.heads->keys() == std::vector<std::string>{"box", "act"});
  CHECK(child_names(*net.heads) == std::vector<std::string>{"box", "act"});
  CHECK_FALSE(net.heads->contains("cls"));
  CHECK(param_names(*net.heads) == std::vector<std::string>{"box.weight", "box.bias"});
  CHECK(net.heads->str() ==
        "ModuleDict(\n"
        "  (box): Linear(in_features=4, out_features=2, bias=true)\n"
        "  (act): ReLU()\n"
        ")");
  net.heads->erase("act");
  CHECK(net.heads->keys() == std::vector<std::string>{"box"});
  net.heads->insert("cls", wide);  // a removed key can be added again, at the end
  CHECK(net.heads->keys() == std::vector<std::string>{"box", "cls"});
  CHECK(state_names(*net.heads) ==
        std::vector<std::string>{"box.weight", "box.bias", "cls.weight", "cls.bias"});

  net.heads->clear();
  CHECK(net.heads->empty());
  CHECK(net.heads->children().empty());
  CHECK(net.heads->str() == "ModuleDict()");
  CHECK(state_names(net) == std::vector<std::string>{"layers.0.weight", "layers.0.bias",
                                                     "layers.2.weight", "layers.2.bias"});
  net.heads->insert("cls", wide);
  CHECK(param_names(*net.heads) == std::vector<std::string>{"cls.weight", "cls.bias"});
}

TEST_CASE("ModuleList and ModuleDict: errors") {
  nn::ModuleList list{std::make_shared<nn::ReLU>(), std::make_shared<nn::Tanh>()};
  CT_REQUIRE_ERROR(list(ones({2})),
                   "ModuleList: expected a module with a forward, got a call of a ModuleList");
  CT_REQUIRE_ERROR(list[2], "ModuleList: expected index in [-2, 2), got 2");
  CT_REQUIRE_ERROR(list[-3], "ModuleList: expected index in [-2, 2), got -3");
  CT_REQUIRE_ERROR(list.at<nn::Linear>(1),
                   "ModuleList: expected module 1 to be of the requested type, got Tanh");
  CT_REQUIRE_ERROR(list.insert(3, std::make_shared<nn::ReLU>()),
                   "ModuleList::insert: expected index in [-2, 2], got 3");
  CT_REQUIRE_ERROR(list.insert(-3, std::make_shared<nn::ReLU>()),
                   "ModuleList::insert: expected index in [-2, 2], got -3");
  CT_REQUIRE_ERROR(list.insert(0, nullptr), "ModuleList::insert: expected a module, got nullptr");
  CT_REQUIRE_ERROR(list.set(2, std::make_shared<nn::ReLU>()),
                   "ModuleList::set: expected index in [-2, 2), got 2");
  CT_REQUIRE_ERROR(list.set(-1, nullptr), "ModuleList::set: expected a module, got nullptr");
  CT_REQUIRE_ERROR(list.pop(2), "ModuleList::pop: expected index in [-2, 2), got 2");
  CT_REQUIRE_ERROR(list.erase(-3), "ModuleList::erase: expected index in [-2, 2), got -3");
  {
    auto self = std::make_shared<nn::ModuleList>();
    self->append(std::make_shared<nn::ReLU>());
    CT_REQUIRE_ERROR(self->insert(0, self),
                     "ModuleList::insert: expected another module, got the ModuleList itself");
    CT_REQUIRE_ERROR(self->set(0, self),
                     "ModuleList::set: expected another module, got the ModuleList itself");
    CHECK(self->size() == 1);
    CHECK((*self)[0]->type_name() == "ReLU");
  }
  CT_REQUIRE_ERROR(list.push_back(nullptr), "register_module: expected a module for '2'");
  CHECK(list.size() == 2);

  nn::ModuleDict dict(nn::NamedModules{{"a", std::make_shared<nn::ReLU>()}});
  CT_REQUIRE_ERROR(dict(ones({2})),
                   "ModuleDict: expected a module with a forward, got a call of a ModuleDict");
  CT_REQUIRE_ERROR(dict["b"], "ModuleDict: expected one of the keys ['a'], got 'b'");
  CT_REQUIRE_ERROR(dict.at<nn::Linear>("a"),
                   "ModuleDict: expected module 'a' to be of the requested type, got ReLU");
  CT_REQUIRE_ERROR(dict.insert("a", nullptr),
                   "ModuleDict::insert: expected a module for 'a', got nullptr");
  CT_REQUIRE_ERROR(dict.insert("n", nullptr),
                   "ModuleDict::insert: expected a module for 'n', got nullptr");
  CT_REQUIRE_ERROR(dict.pop("b"), "ModuleDict::pop: expected one of the keys ['a'], got 'b'");
  CT_REQUIRE_ERROR(dict.erase("b"), "ModuleDict::erase: expected one of the keys ['a'], got 'b'");
  CT_REQUIRE_ERROR(dict.insert("x.y", std::make_shared<nn::Tanh>()),
                   "register_module: expected a name without '.', got 'x.y'");
  CHECK(dict.keys() == std::vector<std::string>{"a"});
  CHECK(dict["a"]->type_name() == "ReLU");
  CHECK(child_names(dict) == std::vector<std::string>{"a"});
  CT_REQUIRE_ERROR(nn::ModuleDict().pop("a"),
                   "ModuleDict::pop: expected one of the keys [], got 'a'");
}

}  // namespace
