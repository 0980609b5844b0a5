// Tests of modules/normalization: LayerNorm, GroupNorm and InstanceNorm1d/2d/3d. Parameter and
// buffer names and shapes as PyTorch's state_dict, initial values, forward equal to the functional
// ops, the state-dict round trip, InstanceNorm's running statistics (updated in training, used in
// eval, num_batches_tracked untouched as in PyTorch) and unbatched inputs, float64 gradients of
// input and parameters, the printouts, and one test per error message.
#include <string>
#include <vector>

#include "modules/module_check.h"
#include "modules/normalization.h"
#include "ops/normalization.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

std::vector<std::string> state_names(const nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& [name, t] : m.state_dict()) names.push_back(name);
  return names;
}

// Every parameter of m set to random values (so that a round trip is not trivially ones / zeros).
void randomise(nn::Module& m) {
  NoGradGuard no_grad;
  for (Tensor& p : m.parameters()) p.copy_(randn(p.shape(), p.dtype()));
}

TEST_CASE("LayerNorm: parameters, forward, state dict and printout") {
  manual_seed(171);
  nn::LayerNorm ln({3, 4});
  CHECK(state_names(ln) == std::vector<std::string>{"weight", "bias"});
  CHECK(ln.weight().shape() == Shape{3, 4});
  CHECK(equal(ln.weight(), ones({3, 4})));
  CHECK(equal(ln.bias(), zeros({3, 4})));
  CHECK(ln.str() == "LayerNorm([3, 4], eps=1e-05, elementwise_affine=true)");
  randomise(ln);
  const Tensor x = randn({2, 3, 4});
  CHECK(equal(ln(x), layer_norm(x, {3, 4}, ln.weight(), ln.bias(), 1e-5)));
  nn::LayerNorm copy({3, 4});
  copy.load_state_dict(ln.state_dict());
  CHECK(equal(copy(x), ln(x)));

  nn::LayerNorm plain({5}, 1e-3, /*elementwise_affine=*/false);
  CHECK(plain.parameters().empty());
  CHECK(plain.str() == "LayerNorm([5], eps=0.001, elementwise_affine=false)");
  const Tensor z = randn({4, 5});
  CHECK(equal(plain(z), layer_norm(z, {5}, {}, {}, 1e-3)));
  nn::LayerNorm no_bias({5}, 1e-5, true, /*bias=*/false);
  CHECK(state_names(no_bias) == std::vector<std::string>{"weight"});
  CHECK_FALSE(no_bias.bias().defined());
}

TEST_CASE("GroupNorm: parameters, forward, state dict and printout") {
  manual_seed(172);
  nn::GroupNorm gn(2, 6);
  CHECK(state_names(gn) == std::vector<std::string>{"weight", "bias"});
  CHECK(gn.weight().shape() == Shape{6});
  CHECK(gn.str() == "GroupNorm(2, 6, eps=1e-05, affine=true)");
  randomise(gn);
  const Tensor x = randn({3, 6, 2, 2});
  CHECK(equal(gn(x), group_norm(x, 2, gn.weight(), gn.bias(), 1e-5)));
  nn::GroupNorm copy(2, 6);
  copy.load_state_dict(gn.state_dict());
  CHECK(equal(copy(x), gn(x)));
  nn::GroupNorm plain(3, 6, 1e-3, /*affine=*/false);
  CHECK(plain.parameters().empty());
  CHECK(plain.str() == "GroupNorm(3, 6, eps=0.001, affine=false)");
  CHECK(equal(plain(x), group_norm(x, 3, {}, {}, 1e-3)));
}

TEST_CASE("InstanceNorm: names, ranks, unbatched inputs and printouts") {
  manual_seed(173);
  nn::InstanceNorm1d in1(3);
  CHECK(state_names(in1).empty());
  CHECK(in1.str() ==
        "InstanceNorm1d(3, eps=1e-05, momentum=0.1, affine=false, track_running_stats=false)");
  const Tensor x1 = randn({2, 3, 5});
  CHECK(equal(in1(x1), instance_norm(x1)));
  // Unbatched [C, L] is the batched result of its one sample.
  const Tensor one = randn({3, 5});
  CHECK(equal(in1(one), instance_norm(unsqueeze(one, 0)).squeeze(0)));
  // Without weight, bias or running statistics a different channel count works (PyTorch warns).
  CHECK(in1(randn({2, 4, 5})).shape() == Shape{2, 4, 5});

  nn::InstanceNorm2d in2(3, 1e-5, 0.1, /*affine=*/true, /*track_running_stats=*/true);
  CHECK(state_names(in2) == std::vector<std::string>{"weight", "bias", "running_mean",
                                                     "running_var", "num_batches_tracked"});
  CHECK(in2.num_batches_tracked().dtype() == kInt64);
  CHECK(in2.str() ==
        "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)");
  CHECK(in2(randn({2, 3, 4, 4})).shape() == Shape{2, 3, 4, 4});
  CHECK(in2(randn({3, 4, 4})).shape() == Shape{3, 4, 4});

  nn::InstanceNorm3d in3(2, 1e-3, 0.2, true, false);
  CHECK(state_names(in3) == std::vector<std::string>{"weight", "bias"});
  randomise(in3);
  const Tensor x3 = randn({2, 2, 2, 3, 2});
  CHECK(equal(in3(x3), instance_norm(x3, {}, {}, in3.weight(), in3.bias(), true, 0.2, 1e-3)));
  CHECK(in3(randn({2, 2, 3, 2})).shape() == Shape{2, 2, 3, 2});
}

TEST_CASE("InstanceNorm: running statistics in training and eval") {
  manual_seed(174);
  nn::InstanceNorm1d in(2, 1e-5, 0.5, false, /*track_running_stats=*/true);
  const Tensor x = randn({3, 2, 6}) * 2.0 + 1.0;
  // Training: batch statistics, and the running ones updated as the functional form does.
  Tensor rm = zeros({2}), rv = ones({2});
  CHECK(equal(in(x), instance_norm(x, rm, rv, {}, {}, true, 0.5, 1e-5)));
  CHECK(equal(in.running_mean(), rm));
  CHECK(equal(in.running_var(), rv));
  CHECK_FALSE(equal(rm, zeros({2})));
  CHECK(in.num_batches_tracked().item() == 0);  // as PyTorch: instance norm never counts
  // Eval: the running statistics normalise, and stay.
  in.eval();
  const Tensor z = randn({2, 2, 6});
  CHECK(equal(in(z), (z - reshape(rm, {1, 2, 1})) / sqrt(reshape(rv, {1, 2, 1}) + 1e-5)));
  CHECK(equal(in.running_mean(), rm));
  // Eval without tracking: batch statistics.
  nn::InstanceNorm1d untracked(2);
  untracked.eval();
  CHECK(equal(untracked(z), instance_norm(z)));
  // The state dict round trip carries the running statistics.
  nn::InstanceNorm1d copy(2, 1e-5, 0.5, false, true);
  copy.load_state_dict(in.state_dict());
  copy.eval();
  CHECK(equal(copy(z), in(z)));
  in.reset_running_stats();
  CHECK(equal(in.running_mean(), zeros({2})));
}

TEST_CASE("normalization layers: float64 gradients of input and parameters") {
  manual_seed(175);
  nn::LayerNorm ln({4});
  ln.to(kFloat64);
  randomise(ln);
  CT_REQUIRE_MODULE_GRADCHECK(ln, randn({3, 4}, kFloat64));
  nn::GroupNorm gn(2, 4);
  gn.to(kFloat64);
  randomise(gn);
  CT_REQUIRE_MODULE_GRADCHECK(gn, randn({2, 4, 3}, kFloat64));
  nn::InstanceNorm2d in(2, 1e-5, 0.1, true, true);
  in.to(kFloat64);
  randomise(in);
  CT_REQUIRE_MODULE_GRADCHECK(in, randn({2, 2, 2, 3}, kFloat64));
  in.eval();
  CT_REQUIRE_MODULE_GRADCHECK(in, randn({2, 2, 3}, kFloat64));
}

TEST_CASE("normalization layers: errors") {
  CT_REQUIRE_ERROR(nn::LayerNorm({}),
                   "LayerNorm: expected a non-empty normalized_shape of positive extents, got []");
  CT_REQUIRE_ERROR(nn::LayerNorm({3, 0}), "got [3, 0]");
  CT_REQUIRE_ERROR(nn::LayerNorm({3}, -1.0), "LayerNorm: expected eps >= 0, got -1");
  nn::LayerNorm ln({3});
  CT_REQUIRE_ERROR(ln(zeros({2, 4})), "layer_norm: expected input of shape [*, 3]");
  CT_REQUIRE_ERROR(nn::GroupNorm(2, 3),
                   "GroupNorm: expected num_channels > 0 divisible by num_groups > 0, got "
                   "num_channels = 3, num_groups = 2");
  nn::GroupNorm gn(2, 4);
  CT_REQUIRE_ERROR(gn(zeros({2, 6, 3})), "group_norm: expected weight of shape [6]");
  CT_REQUIRE_ERROR(nn::InstanceNorm1d(0), "InstanceNorm1d: expected num_features > 0, got 0");
  CT_REQUIRE_ERROR(nn::InstanceNorm2d(2, 1e-5, 1.5),
                   "InstanceNorm2d: expected momentum in [0, 1], got 1.5");
  nn::InstanceNorm1d in1(3);
  CT_REQUIRE_ERROR(in1(zeros({2, 3, 4, 5})),
                   "InstanceNorm1d: expected 2D or 3D input (unbatched or batched), got 4D input "
                   "[2, 3, 4, 5]");
  nn::InstanceNorm3d in3(3, 1e-5, 0.1, true);
  CT_REQUIRE_ERROR(in3(zeros({2, 3, 4})), "InstanceNorm3d: expected 4D or 5D input");
  CT_REQUIRE_ERROR(in3(zeros({4, 2, 2, 2})),
                   "InstanceNorm3d: expected input's size at dim=0 to match num_features (3), got "
                   "4 (input [4, 2, 2, 2])");
  nn::InstanceNorm1d tracked(3, 1e-5, 0.1, false, true);
  CT_REQUIRE_ERROR(tracked(zeros({2, 4, 5})), "expected input's size at dim=1 to match");
  CT_REQUIRE_ERROR(in1(zeros({2, 3, 1})), "instance_norm: expected more than 1 spatial value");
}

}  // namespace
