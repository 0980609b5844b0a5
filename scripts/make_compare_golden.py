#!/usr/bin/python3
"""Golden values from PyTorch for tests/ops/compare_test.cpp: where, maximum, minimum,
masked_fill, masked_select, topk and sort, forward and gradient, in float64.

Writes tests/golden/compare.txt in the format of tests/golden/ops.txt, one tensor per line:

    <case> <name> <rank> <dims...> <values...>

Each case stores its inputs, the output "out" (topk / sort: also "indices", as floats), the
upstream gradient "g" of out's shape and "grad_<input>" = d sum(out * g) / d <input> for each
differentiable input. Masks and conditions are stored as 0 / 1 floats (torch takes them as bool).
Scalar arguments (k, dim, largest, fill values) live in both this script and the C++ test, next to
the case name. Ties: maximum / minimum cases hold equal elements (torch splits the gradient half
and half there); "topk_ties" holds equal values that all lie inside the top k, with g = 1, the one
tie case whose gradient does not depend on the order torch leaves unspecified.

Run with Debian's interpreter, which has python3-torch 1.13:

    /usr/bin/python3 scripts/make_compare_golden.py
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402
from golden_io import emit  # noqa: E402

torch.manual_seed(20240615)
torch.set_default_dtype(torch.float64)

def t(values):
    return torch.tensor(values, dtype=torch.float64)


def case(name, fn, inputs, constants=None, g=None):
    """inputs (dict name -> tensor) are differentiable; constants (masks) are not. fn returns the
    output, or (output, indices)."""
    constants = constants or {}
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    res = fn(**leaves, **{k: v.bool() for k, v in constants.items()})
    out, indices = res if isinstance(res, tuple) else (res, None)
    if g is None:
        g = torch.rand(out.shape) * 2 - 1
    (out * g).sum().backward()
    for k, v in inputs.items():
        emit(name, k, v)
    for k, v in constants.items():
        emit(name, k, v)
    emit(name, "out", out)
    if indices is not None:
        emit(name, "indices", indices)
    emit(name, "g", g)
    for k, v in leaves.items():
        emit(name, "grad_" + k, v.grad)


# where: cond [3, 1], a [1, 4], b [3, 4]; and a cond that broadcasts against both.
case("where_bcast", lambda a, b, cond: torch.where(cond, a, b),
     {"a": torch.randn(1, 4), "b": torch.randn(3, 4)}, {"cond": t([[1.0], [0.0], [1.0]])})
case("where_3d", lambda a, b, cond: torch.where(cond, a, b),
     {"a": torch.randn(2, 1, 3), "b": torch.randn(4, 1)},
     {"cond": (torch.rand(2, 4, 1) < 0.5).double()})

# maximum / minimum with ties (equal elements), same shape and broadcast.
ta = t([[1, 2, 3], [4, 0, -1]])
tb = t([[1, 3, 2], [4, 0, 5]])
case("maximum_ties", torch.maximum, {"input": ta, "other": tb})
case("minimum_ties", torch.minimum, {"input": ta, "other": tb})
ba = t([[0], [1], [2]])
bb = t([1, 0, 2, 1])
case("maximum_bcast", torch.maximum, {"input": ba, "other": bb})
case("minimum_bcast", torch.minimum, {"input": ba, "other": bb})
case("maximum_random", torch.maximum, {"input": torch.randn(2, 3, 4), "other": torch.randn(3, 1)})

# masked_fill: mask [3] over x [2, 3] (value -2.5); x [2, 1] against mask [2, 3] (value 7).
case("masked_fill", lambda x, mask: torch.masked_fill(x, mask, -2.5), {"x": torch.randn(2, 3)},
     {"mask": t([1, 0, 1])})
case("masked_fill_bcast", lambda x, mask: torch.masked_fill(x, mask, 7.0),
     {"x": torch.randn(2, 1)}, {"mask": t([[1, 0, 0], [0, 1, 1]])})

# masked_select: x [2, 3] with mask [2, 1]; x [3] with mask [2, 3].
case("masked_select", torch.masked_select, {"x": torch.randn(2, 3)}, {"mask": t([[1], [0]])})
case("masked_select_bcast", torch.masked_select, {"x": torch.randn(3)},
     {"mask": t([[1, 0, 1], [1, 1, 0]])})

# topk without ties: k = 2 along dim 1, largest; k = 3 along dim 0, smallest; k = 2 along the
# middle dim of a 3-d tensor.
case("topk_dim1", lambda x: tuple(torch.topk(x, 2, dim=1, largest=True)), {"x": torch.randn(3, 5)})
case("topk_dim0_smallest", lambda x: tuple(torch.topk(x, 3, dim=0, largest=False)),
     {"x": torch.randn(4, 3)})
case("topk_3d", lambda x: tuple(torch.topk(x, 2, dim=1)), {"x": torch.randn(2, 4, 3)})
# Ties all inside the top 3 of each row, g = 1.
case("topk_ties", lambda x: tuple(torch.topk(x, 3, dim=1)), {"x": t([[5, 5, 1, 0, 2],
                                                                    [3, 1, 3, 3, -1]])},
     g=torch.ones(2, 3))
# sort, descending along dim 0.
case("sort_desc", lambda x: tuple(torch.sort(x, dim=0, descending=True)), {"x": torch.randn(4, 2)})

golden_io.write(__file__, "compare.txt", ", float64")
