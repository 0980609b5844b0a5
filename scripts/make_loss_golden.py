#!/usr/bin/python3
"""Golden values from PyTorch for tests/ops/loss_nd_test.cpp: the dense-prediction losses.

Writes tests/golden/loss.txt in scripts/make_golden.py's format, one tensor per line:

    <case> <name> <rank> <dims...> <values...>

Each float64 case stores its inputs, constants (labels, class weights, pos_weight), the forward
output "out", a random upstream gradient "g" of out's shape and "grad_<input>" = d sum(out * g) /
d <input> for each differentiable input. Cases named "f32_*" are forward-only, computed by torch in
float32. Labels are stored as float values (the C++ side converts them with .to(kInt64)). The other
arguments (reduction, ignore_index, label_smoothing) are written in both this script and the C++
test, next to the case name. NaN and infinities are not stored (the reader takes plain numbers):
the cases where PyTorch gives NaN (every target ignored) are checked in the C++ test.

Run with Debian's interpreter, which has python3-torch 1.13:

    /usr/bin/python3 scripts/make_loss_golden.py
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402
from golden_io import uniform  # noqa: E402

torch.manual_seed(20240915)
torch.set_default_dtype(torch.float64)

def _labels_long(key, value):
    return value.long() if key == "labels" else value


def _labels_long_rest_f32(key, value):
    return value.long() if key == "labels" else value.to(torch.float32)


def case(name, fn, inputs, constants=None):
    """Float64 case: inputs (dict name -> tensor) are differentiable; constants are not (labels
    reach fn as int64)."""
    golden_io.case(name, fn, inputs, constants, convert=_labels_long)


def case_f32(name, fn, inputs, constants=None):
    """Float32 forward-only case, computed by torch in float32 (labels reach fn as int64, the other
    constants as float32)."""
    golden_io.case_f32(name, fn, inputs, constants, convert=_labels_long_rest_f32)


def labels(shape, classes, ignore=None, frac=0.25):
    """Labels in [0, classes), a fraction of them replaced by ignore (when given)."""
    y = torch.randint(0, classes, shape)
    if ignore is not None:
        y = torch.where(torch.rand(shape) < frac, torch.full(shape, ignore), y)
        y.view(-1)[0] = ignore  # at least one ignored position
    return y.to(torch.float64)


# ---- binary_cross_entropy: probabilities away from 0 and 1 (PyTorch's log clamp not reached)
case("bce_weight_none",
     lambda x, t, w: F.binary_cross_entropy(x, t, weight=w, reduction="none"),
     {"x": uniform(0.05, 0.95, 3, 4), "t": uniform(0, 1, 3, 4)}, {"w": uniform(0.5, 2, 4)})
case("bce_weight_mean",
     lambda x, t, w: F.binary_cross_entropy(x, t, weight=w, reduction="mean"),
     {"x": uniform(0.05, 0.95, 2, 3, 5), "t": uniform(0, 1, 2, 3, 5)}, {"w": uniform(0.5, 2, 3, 1)})
case("bce_sum", lambda x, t: F.binary_cross_entropy(x, t, reduction="sum"),
     {"x": uniform(0.05, 0.95, 7), "t": uniform(0, 1, 7)})
# Probabilities 0 and 1: the log clamp at -100 and the 1e-12 floor of the gradient's divisor.
# The target is a constant here (its gradient, -logit(x), is infinite at 0 and 1).
case("bce_edges", lambda x, t: F.binary_cross_entropy(x, t, reduction="none"),
     {"x": torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5, 1e-30])},
     {"t": torch.tensor([1.0, 0.0, 0.0, 1.0, 0.25, 0.5])})
case_f32("f32_bce_weight_mean",
         lambda x, t, w: F.binary_cross_entropy(x, t, weight=w, reduction="mean"),
         {"x": uniform(0.05, 0.95, 4, 5), "t": uniform(0, 1, 4, 5)}, {"w": uniform(0.5, 2, 5)})

# ---- binary_cross_entropy_with_logits
case("bcel_weight_pos_none",
     lambda x, t, w, p: F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=p,
                                                           reduction="none"),
     {"x": torch.randn(3, 4) * 3, "t": uniform(0, 1, 3, 4)},
     {"w": uniform(0.5, 2, 3, 1), "p": uniform(0.5, 3, 4)})
case("bcel_pos_mean",
     lambda x, t, p: F.binary_cross_entropy_with_logits(x, t, pos_weight=p, reduction="mean"),
     {"x": torch.randn(2, 3, 4) * 3, "t": uniform(0, 1, 2, 3, 4)}, {"p": uniform(0.5, 3, 4)})
case("bcel_weight_sum",
     lambda x, t, w: F.binary_cross_entropy_with_logits(x, t, weight=w, reduction="sum"),
     {"x": torch.randn(5) * 3, "t": uniform(0, 1, 5)}, {"w": uniform(0.5, 2, 5)})
# Large logits: the stable form stays finite.
case("bcel_large_mean",
     lambda x, t, p: F.binary_cross_entropy_with_logits(x, t, pos_weight=p, reduction="mean"),
     {"x": torch.tensor([[1000.0, -1000.0, 80.0], [-80.0, 0.0, 30.0]]),
      "t": uniform(0, 1, 2, 3)}, {"p": uniform(0.5, 3, 3)})
case_f32("f32_bcel_weight_pos_mean",
         lambda x, t, w, p: F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=p),
         {"x": torch.randn(4, 5) * 3, "t": uniform(0, 1, 4, 5)},
         {"w": uniform(0.5, 2, 4, 1), "p": uniform(0.5, 3, 5)})


# ---- nll_loss over [N, C], [N, C, H, W], [N, C, D, H, W] (ignore_index -100 unless named)
def logp(*shape):
    return torch.randn(shape).log_softmax(1)


case("nll_2d_weight_ignore_mean",
     lambda x, labels, w: F.nll_loss(x, labels, weight=w),
     {"x": logp(6, 5)}, {"labels": labels((6,), 5, ignore=-100), "w": uniform(0.2, 2, 5)})
case("nll_2d_weight_ignore_sum",
     lambda x, labels, w: F.nll_loss(x, labels, weight=w, reduction="sum"),
     {"x": logp(6, 5)}, {"labels": labels((6,), 5, ignore=-100), "w": uniform(0.2, 2, 5)})
case("nll_4d_weight_ignore_mean",
     lambda x, labels, w: F.nll_loss(x, labels, weight=w),
     {"x": logp(2, 3, 4, 5)}, {"labels": labels((2, 4, 5), 3, ignore=-100),
                               "w": uniform(0.2, 2, 3)})
case("nll_4d_none",
     lambda x, labels: F.nll_loss(x, labels, reduction="none"),
     {"x": logp(2, 3, 2, 3)}, {"labels": labels((2, 2, 3), 3, ignore=-100)})
# ignore_index = 1, inside [0, C).
case("nll_5d_weight_ignore1_mean",
     lambda x, labels, w: F.nll_loss(x, labels, weight=w, ignore_index=1),
     {"x": logp(2, 3, 2, 3, 4)}, {"labels": labels((2, 2, 3, 4), 3), "w": uniform(0.2, 2, 3)})
case("nll_5d_weight_sum",
     lambda x, labels, w: F.nll_loss(x, labels, weight=w, reduction="sum"),
     {"x": logp(2, 4, 2, 2, 3)}, {"labels": labels((2, 2, 2, 3), 4), "w": uniform(0.2, 2, 4)})
case_f32("f32_nll_4d_weight_ignore_mean",
         lambda x, labels, w: F.nll_loss(x, labels, weight=w),
         {"x": logp(2, 4, 3, 5)}, {"labels": labels((2, 3, 5), 4, ignore=-100),
                                   "w": uniform(0.2, 2, 4)})

# ---- cross_entropy
case("ce_2d_weight_ignore2_ls_mean",
     lambda x, labels, w: F.cross_entropy(x, labels, weight=w, ignore_index=2,
                                          label_smoothing=0.2),
     {"x": torch.randn(6, 5) * 2}, {"labels": labels((6,), 5), "w": uniform(0.2, 2, 5)})
case("ce_4d_weight_ignore_ls_mean",
     lambda x, labels, w: F.cross_entropy(x, labels, weight=w, label_smoothing=0.1),
     {"x": torch.randn(2, 4, 3, 3) * 2}, {"labels": labels((2, 3, 3), 4, ignore=-100),
                                          "w": uniform(0.2, 2, 4)})
case("ce_4d_weight_ignore_ls_none",
     lambda x, labels, w: F.cross_entropy(x, labels, weight=w, label_smoothing=0.1,
                                          reduction="none"),
     {"x": torch.randn(2, 4, 3, 3) * 2}, {"labels": labels((2, 3, 3), 4, ignore=-100),
                                          "w": uniform(0.2, 2, 4)})
case("ce_4d_weight_ignore_ls_sum",
     lambda x, labels, w: F.cross_entropy(x, labels, weight=w, label_smoothing=0.3,
                                          reduction="sum"),
     {"x": torch.randn(2, 4, 3, 3) * 2}, {"labels": labels((2, 3, 3), 4, ignore=-100),
                                          "w": uniform(0.2, 2, 4)})
case("ce_4d_ignore_mean",
     lambda x, labels: F.cross_entropy(x, labels),
     {"x": torch.randn(3, 5, 2, 4) * 2}, {"labels": labels((3, 2, 4), 5, ignore=-100)})
case("ce_5d_weight_mean",
     lambda x, labels, w: F.cross_entropy(x, labels, weight=w),
     {"x": torch.randn(2, 3, 2, 2, 3) * 2}, {"labels": labels((2, 2, 2, 3), 3),
                                             "w": uniform(0.2, 2, 3)})
case("ce_prob_4d_weight_ls_mean",
     lambda x, p, w: F.cross_entropy(x, p, weight=w, label_smoothing=0.15),
     {"x": torch.randn(2, 3, 4, 2) * 2, "p": torch.randn(2, 3, 4, 2).softmax(1)},
     {"w": uniform(0.2, 2, 3)})
case("ce_prob_3d_none",
     lambda x, p: F.cross_entropy(x, p, reduction="none"),
     {"x": torch.randn(2, 4, 3) * 2, "p": torch.randn(2, 4, 3).softmax(1)})
case("ce_unbatched_weight_ls",
     lambda x, labels, w: F.cross_entropy(x, labels, weight=w, label_smoothing=0.1),
     {"x": torch.randn(5) * 2}, {"labels": torch.tensor(3.0), "w": uniform(0.2, 2, 5)})
case_f32("f32_ce_4d_weight_ignore_ls_mean",
         lambda x, labels, w: F.cross_entropy(x, labels, weight=w, label_smoothing=0.1),
         {"x": torch.randn(2, 4, 3, 5) * 2}, {"labels": labels((2, 3, 5), 4, ignore=-100),
                                              "w": uniform(0.2, 2, 4)})

golden_io.write(__file__, "loss.txt")
