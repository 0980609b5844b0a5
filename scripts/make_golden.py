#!/usr/bin/python3
"""Golden values from PyTorch for tests/ops/golden_test.cpp.

Writes tests/golden/ops.txt, one tensor per line:

    <case> <name> <rank> <dims...> <values...>

For each float64 case it stores the inputs, the forward output "out", a random upstream gradient
"g" of out's shape, and "grad_<input>" = d sum(out * g) / d <input> for each differentiable input.
Cases named "f32_*" are forward-only and computed by torch in float32 (their inputs are stored as
the exact float32 values, widened to float64). Integer arguments (labels, indices) are stored as
float values; the C++ side converts them with .to(kInt64). Scalar arguments (exponents, slopes,
pad widths, dims) live in both this script and the C++ test, next to the case name.

Run with Debian's interpreter, which has python3-torch 1.13:

    /usr/bin/python3 scripts/make_golden.py
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402
from golden_io import case, case_f32, randn, uniform  # noqa: E402

torch.manual_seed(20240607)
torch.set_default_dtype(torch.float64)

def away_from_zero(*shape, low=0.2, high=2.0):
    """Values with |x| in [low, high] and a random sign: no kinks of abs/relu/leaky_relu nearby."""
    sign = torch.where(torch.rand(shape) < 0.5, -1.0, 1.0)
    return sign * uniform(low, high, *shape)


def labels(n, classes):
    return torch.randint(0, classes, (n,)).to(torch.float64)


# ---- elementwise binary, with broadcasting
case("add_bcast", lambda a, b: a + b, {"a": randn(2, 3, 4), "b": randn(3, 1)})
case("sub_bcast", lambda a, b: a - b, {"a": randn(4, 1), "b": randn(2, 1, 5)})
case("mul_bcast", lambda a, b: a * b, {"a": randn(2, 1, 3), "b": randn(4, 3)})
case("div_bcast", lambda a, b: a / b, {"a": randn(3, 4), "b": away_from_zero(4, low=0.5)})
case("pow_tensor", lambda a, b: torch.pow(a, b), {"a": uniform(0.5, 2.0, 3, 4), "b": randn(1, 4)})
# Exponent 2.5 (C++ side: pow(a, 2.5)).
case("pow_scalar", lambda a: torch.pow(a, 2.5), {"a": uniform(0.3, 2.0, 3, 4)})

# ---- elementwise unary and activations
case("exp", torch.exp, {"x": randn(3, 4)})
case("log", torch.log, {"x": uniform(0.1, 3.0, 3, 4)})
case("sqrt", torch.sqrt, {"x": uniform(0.1, 3.0, 3, 4)})
case("abs", torch.abs, {"x": away_from_zero(3, 4)})
case("relu", torch.relu, {"x": away_from_zero(3, 4)})
# Slope 0.2 (C++ side: leaky_relu(x, 0.2)).
case("leaky_relu", lambda x: F.leaky_relu(x, 0.2), {"x": away_from_zero(3, 4)})
case("sigmoid", torch.sigmoid, {"x": randn(3, 4) * 2})
case("tanh", torch.tanh, {"x": randn(3, 4) * 2})
# Bounds [-0.5, 0.7]; values kept at least 0.05 away from them so no element sits on a kink.
_c = uniform(-1.5, 1.5, 4, 5)
_c = torch.where((_c + 0.5).abs() < 0.05, _c - 0.1, _c)
_c = torch.where((_c - 0.7).abs() < 0.05, _c + 0.1, _c)
case("clamp", lambda x: torch.clamp(x, -0.5, 0.7), {"x": _c})

# ---- reductions
case("sum_dims_keepdim", lambda x: x.sum(dim=(0, 2), keepdim=True), {"x": randn(2, 3, 4)})
case("sum_last", lambda x: x.sum(dim=-1), {"x": randn(2, 3, 4)})
case("mean_dim", lambda x: x.mean(dim=1), {"x": randn(2, 3, 4)})
case("mean_dims_keepdim", lambda x: x.mean(dim=(1, 2), keepdim=True), {"x": randn(2, 3, 4)})
case("max_dim", lambda x: x.max(dim=1).values, {"x": randn(3, 5)})
case("max_dim_keepdim", lambda x: x.max(dim=0, keepdim=True).values, {"x": randn(4, 2, 3)})

# ---- matmul
case("matmul_2d", lambda a, b: torch.matmul(a, b), {"a": randn(3, 4), "b": randn(4, 5)})
case("matmul_batched", lambda a, b: torch.matmul(a, b), {"a": randn(2, 1, 3, 4), "b": randn(3, 4, 2)})
case("matmul_vec", lambda a, b: torch.matmul(a, b), {"a": randn(2, 3, 4), "b": randn(4)})

# ---- softmax and losses
case("softmax", lambda x: torch.softmax(x, dim=1), {"x": randn(3, 5) * 2})
case("log_softmax", lambda x: torch.log_softmax(x, dim=-1), {"x": randn(2, 3, 4) * 2})
case("mse_loss", lambda a, b: F.mse_loss(a, b), {"a": randn(3, 4), "b": randn(3, 4)})
case("mse_loss_sum", lambda a, b: F.mse_loss(a, b, reduction="sum"), {"a": randn(5), "b": randn(5)})
case("cross_entropy", lambda x, labels: F.cross_entropy(x, labels.long()), {"x": randn(4, 5) * 2},
     {"labels": labels(4, 5)})
case("cross_entropy_none", lambda x, labels: F.cross_entropy(x, labels.long(), reduction="none"),
     {"x": randn(6, 3) * 2}, {"labels": labels(6, 3)})
case("nll_loss", lambda x, labels: F.nll_loss(x, labels.long(), reduction="sum"), {"x": randn(5, 4)},
     {"labels": labels(5, 4)})

# ---- shape ops
case("permute_reshape", lambda x: x.permute(2, 0, 1).reshape(4, 6), {"x": randn(2, 3, 4)})
case("cat", lambda a, b, c: torch.cat([a, b, c], dim=1), {"a": randn(2, 3), "b": randn(2, 1), "c": randn(2, 2)})
# F.pad lists (low, high) from the last dim backwards: W gets (1, 2), H gets (0, 3); value 0.5.
case("pad", lambda x: F.pad(x, (1, 2, 0, 3), mode="constant", value=0.5), {"x": randn(2, 3, 4)})
case("flip", lambda x: torch.flip(x, dims=(0, 2)), {"x": randn(2, 3, 4)})
case("rot90_k1", lambda x: torch.rot90(x, 1, (1, 2)), {"x": randn(2, 3, 4)})
case("rot90_k3", lambda x: torch.rot90(x, -1, (2, 0)), {"x": randn(2, 3, 4)})
case("rot90_k2", lambda x: torch.rot90(x, 2, (0, 1)), {"x": randn(3, 4)})
# Index with a repeat, so the backward must accumulate.
case("index_select", lambda x, index: torch.index_select(x, 1, index.long()), {"x": randn(3, 4, 2)},
     {"index": torch.tensor([2.0, 0.0, 2.0, 3.0])})

# ---- float32 forward cases (compared at rtol 1e-4, atol 1e-5)
case_f32("f32_matmul", lambda a, b: torch.matmul(a, b), {"a": randn(2, 5, 7), "b": randn(7, 3)})
case_f32("f32_softmax", lambda x: torch.softmax(x, dim=-1), {"x": randn(3, 6) * 3})
case_f32("f32_sigmoid_tanh", lambda x: torch.sigmoid(x) * torch.tanh(x), {"x": randn(4, 5) * 2})
case_f32("f32_exp_log", lambda x: torch.exp(x) + torch.log(x), {"x": uniform(0.1, 3.0, 4, 5)})
case_f32("f32_sum_mean", lambda x: x.sum(dim=1) + x.mean(dim=1), {"x": randn(3, 50)})
case_f32("f32_cross_entropy", lambda x, labels: F.cross_entropy(x, labels.long()), {"x": randn(8, 10) * 2},
         {"labels": labels(8, 10)})

# ---- cross-entropy with label smoothing and with class probabilities. Appended after every other
# case so that the random draws above, and so their values in the file, stay as they were.
# Smoothing 0.1 / 0.25 / 0.3 / 0.2 (C++ side: cross_entropy(x, labels, reduction, eps)).
case("cross_entropy_smooth", lambda x, labels: F.cross_entropy(x, labels.long(), label_smoothing=0.1),
     {"x": randn(4, 5) * 2}, {"labels": labels(4, 5)})
case("cross_entropy_smooth_sum",
     lambda x, labels: F.cross_entropy(x, labels.long(), reduction="sum", label_smoothing=0.25),
     {"x": randn(5, 3) * 2}, {"labels": labels(5, 3)})
case("cross_entropy_smooth_none",
     lambda x, labels: F.cross_entropy(x, labels.long(), reduction="none", label_smoothing=0.3),
     {"x": randn(6, 4) * 2}, {"labels": labels(6, 4)})
case("cross_entropy_probs", lambda x, p: F.cross_entropy(x, p),
     {"x": randn(4, 5) * 2, "p": torch.softmax(randn(4, 5), dim=1)})
case("cross_entropy_probs_smooth_none",
     lambda x, p: F.cross_entropy(x, p, reduction="none", label_smoothing=0.2),
     {"x": randn(3, 4) * 2, "p": torch.softmax(randn(3, 4), dim=1)})
case("cross_entropy_probs_sum", lambda x, p: F.cross_entropy(x, p, reduction="sum"),
     {"x": randn(3, 6) * 2, "p": torch.softmax(randn(3, 6), dim=1)})

golden_io.write(__file__, "ops.txt")
