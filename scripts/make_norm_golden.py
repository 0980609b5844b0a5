#!/usr/bin/python3
"""Golden values from PyTorch for the normalisation layers and the embedding lookup.

Writes tests/golden/norm.txt (read by tests/ops/normalization_test.cpp and
tests/ops/embedding_test.cpp), one tensor per line, in scripts/make_golden.py's format:

    <case> <name> <rank> <dims...> <values...>

For each float64 case it stores the inputs (differentiable ones and constants, the constants as
they were before the call), the forward output "out", a random upstream gradient "g" of out's
shape, "grad_<input>" = d sum(out * g) / d <input> for each differentiable input, and
"new_<constant>" for the constants the call updates in place (instance_norm's running_mean and
running_var). Integer arguments (indices) are stored as float values. Scalar arguments
(normalized_shape, num_groups, eps, momentum, padding_idx, use_input_stats) live in both this
script and the C++ tests, next to the case name.

Run with Debian's interpreter, which has python3-torch 1.13:

    /usr/bin/python3 scripts/make_norm_golden.py
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402
from golden_io import case, randn  # noqa: E402

torch.manual_seed(20240615)
torch.set_default_dtype(torch.float64)

# ---- layer_norm over the last 1 and 2 dims, with and without weight and bias
case("layer_norm_1d", lambda x, w, b: F.layer_norm(x, [5], w, b, 1e-5),
     {"x": randn(3, 5) * 2 + 1, "w": randn(5), "b": randn(5)})
case("layer_norm_2d", lambda x, w, b: F.layer_norm(x, [3, 4], w, b, 1e-5),
     {"x": randn(2, 3, 4) * 3, "w": randn(3, 4), "b": randn(3, 4)})
case("layer_norm_1d_plain", lambda x: F.layer_norm(x, [6], eps=1e-5), {"x": randn(2, 2, 6)})
case("layer_norm_2d_plain", lambda x: F.layer_norm(x, [2, 3], eps=1e-3), {"x": randn(4, 2, 3) + 2})
case("layer_norm_weight_only", lambda x, w: F.layer_norm(x, [4], w, None, 1e-5),
     {"x": randn(3, 4), "w": randn(4)})

# ---- group_norm with 1, 2 and 4 groups (C = 4), and without weight and bias
for groups in (1, 2, 4):
    case("group_norm_g%d" % groups, lambda x, w, b, G=groups: F.group_norm(x, G, w, b, 1e-5),
         {"x": randn(2, 4, 3, 2) * 2, "w": randn(4), "b": randn(4)})
case("group_norm_plain", lambda x: F.group_norm(x, 3, eps=1e-5), {"x": randn(3, 6, 5)})
case("group_norm_2d_input", lambda x, w, b: F.group_norm(x, 2, w, b, 1e-5),
     {"x": randn(3, 6), "w": randn(6), "b": randn(6)})

# ---- instance_norm 1d / 2d / 3d: batch statistics without running stats (weight and bias in 2d),
# batch statistics that update running stats (momentum 0.1, then 0.3), and the running stats
# alone (use_input_stats false, as InstanceNorm in eval with track_running_stats).
case("instance_norm_1d", lambda x: F.instance_norm(x, eps=1e-5), {"x": randn(2, 3, 5)})
case("instance_norm_2d_affine", lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-5),
     {"x": randn(2, 3, 4, 3), "w": randn(3), "b": randn(3)})
case("instance_norm_3d", lambda x: F.instance_norm(x, eps=1e-5), {"x": randn(2, 2, 3, 2, 2)})
case("instance_norm_1d_track",
     lambda x, rm, rv: F.instance_norm(x, rm, rv, use_input_stats=True, momentum=0.1, eps=1e-5),
     {"x": randn(3, 2, 4) * 2 + 1}, {"rm": randn(2), "rv": torch.rand(2) + 0.5}, updated=("rm", "rv"))
case("instance_norm_2d_track",
     lambda x, w, b, rm, rv: F.instance_norm(x, rm, rv, w, b, use_input_stats=True, momentum=0.3,
                                             eps=1e-5),
     {"x": randn(2, 3, 3, 3), "w": randn(3), "b": randn(3)},
     {"rm": randn(3), "rv": torch.rand(3) + 0.5}, updated=("rm", "rv"))
case("instance_norm_3d_track",
     lambda x, rm, rv: F.instance_norm(x, rm, rv, use_input_stats=True, momentum=0.1, eps=1e-5),
     {"x": randn(2, 2, 2, 3, 2)}, {"rm": randn(2), "rv": torch.rand(2) + 0.5}, updated=("rm", "rv"))
case("instance_norm_1d_eval",
     lambda x, rm, rv: F.instance_norm(x, rm, rv, use_input_stats=False, eps=1e-5),
     {"x": randn(2, 3, 4)}, {"rm": randn(3), "rv": torch.rand(3) + 0.5}, updated=("rm", "rv"))
case("instance_norm_2d_eval",
     lambda x, w, b, rm, rv: F.instance_norm(x, rm, rv, w, b, use_input_stats=False, eps=1e-5),
     {"x": randn(2, 2, 3, 2), "w": randn(2), "b": randn(2)},
     {"rm": randn(2), "rv": torch.rand(2) + 0.5}, updated=("rm", "rv"))
case("instance_norm_3d_eval",
     lambda x, rm, rv: F.instance_norm(x, rm, rv, use_input_stats=False, eps=1e-5),
     {"x": randn(1, 2, 2, 2, 3)}, {"rm": randn(2), "rv": torch.rand(2) + 0.5}, updated=("rm", "rv"))

# ---- embedding: repeated indices (the gradient accumulates), padding_idx 2 and -1 (= 5), none
idx = torch.tensor([[0.0, 2.0, 4.0, 2.0], [5.0, 1.0, 2.0, 0.0]])
case("embedding", lambda w, idx: F.embedding(idx.long(), w), {"w": randn(6, 3)}, {"idx": idx})
case("embedding_pad2", lambda w, idx: F.embedding(idx.long(), w, padding_idx=2), {"w": randn(6, 3)},
     {"idx": idx})
case("embedding_pad_neg1", lambda w, idx: F.embedding(idx.long(), w, padding_idx=-1),
     {"w": randn(6, 3)}, {"idx": idx})
case("embedding_3d_idx", lambda w, idx: F.embedding(idx.long(), w, padding_idx=0),
     {"w": randn(4, 2)}, {"idx": torch.tensor([[[0.0, 3.0], [1.0, 1.0]], [[2.0, 0.0], [3.0, 3.0]]])})

golden_io.write(__file__, "norm.txt")
