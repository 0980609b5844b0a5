#!/usr/bin/python3
"""Golden values from PyTorch for tests/ops/resample_test.cpp, tests/ops/pad_modes_test.cpp and
tests/modules/conv_test.cpp: F.interpolate, F.pad's non-constant modes and conv layers with a
padding_mode.

Writes tests/golden/resample.txt in the format of tests/golden/ops.txt, one tensor per line:

    <case> <name> <rank> <dims...> <values...>

Every case stores its float64 input "x", torch's float64 output "out", a random upstream gradient
"g" of out's shape and "grad_x" = d sum(out * g) / dx from torch's float64 backward, and the same
computed by torch in float32 from x and g rounded to float32: "out_f32" and "grad_x_f32" (the
nearest modes pick their source indices in the input's dtype, so float32 may pick others than
float64). The call's options are small tensors next to them, so the C++ tests rebuild the call
from the file alone:

    interp_*  opt_mode (0 nearest, 1 nearest-exact, 2 linear, 3 bilinear, 4 trilinear),
              opt_size or opt_scale (one value: torch was given a single number), opt_align
              (0 / 1; absent: align_corners not given), opt_recompute (1: recompute_scale_factor)
    pad_*     opt_mode (1 reflect, 2 replicate, 3 circular), opt_lo / opt_hi: the (low, high)
              widths of the trailing dims in dim order (F.pad takes them from the last dim back)
    conv_*    nn.Conv<d>d(C, K, kernel, stride, padding, padding_mode) with weight "w", bias "b"
              and their gradients "grad_w", "grad_b" (float64 only); opt_mode as pad_*,
              opt_kernel, opt_stride, opt_padding (per dim) or opt_same (padding="same")

Run with Debian's interpreter, which has python3-torch 1.13:

    /usr/bin/python3 scripts/make_resample_golden.py
"""

import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402
from golden_io import emit, lines, option  # noqa: E402

torch.manual_seed(20240615)
torch.set_num_threads(1)

MODES = ["nearest", "nearest-exact", "linear", "bilinear", "trilinear"]
PAD_MODES = {"reflect": 1, "replicate": 2, "circular": 3}


def run(fn, x, g=None):
    """fn(x) and d sum(fn(x) * g) / dx, with a fresh g of the output's shape unless given."""
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    if g is None:
        g = torch.randn(out.shape, dtype=torch.float64)
    (out * g.to(out.dtype)).sum().backward()
    return out, g, x.grad


def both(case, fn, x):
    out, g, gx = run(fn, x)
    out32, _, gx32 = run(fn, x.float(), g)
    lines.append("# " + case)
    emit(case, "x", x)
    emit(case, "out", out)
    emit(case, "g", g)
    emit(case, "grad_x", gx)
    emit(case, "out_f32", out32)
    emit(case, "grad_x_f32", gx32)


def interp(case, shape, mode, size=None, scale=None, align=None, recompute=None):
    x = torch.randn(shape, dtype=torch.float64)
    kw = dict(size=size, scale_factor=scale, mode=mode)
    if align is not None:
        kw["align_corners"] = align
    if recompute is not None:
        kw["recompute_scale_factor"] = recompute
    both(case, lambda t: F.interpolate(t, **kw), x)
    emit(case, "opt_mode", option(MODES.index(mode)))
    if size is not None:
        emit(case, "opt_size", option(size))
    if scale is not None:
        emit(case, "opt_scale", option(scale))
    if align is not None:
        emit(case, "opt_align", option(int(align)))
    if recompute:
        emit(case, "opt_recompute", option(1))


# nearest: up, down, integer and non-integer scale factors, every rank.
interp("interp_nearest1d_size_up", (2, 3, 5), "nearest", size=12)
interp("interp_nearest1d_size_down", (1, 2, 7), "nearest", size=3)
interp("interp_nearest1d_scale2", (2, 2, 4), "nearest", scale=2.0)
interp("interp_nearest1d_scale1p7", (1, 3, 7), "nearest", scale=1.7)
interp("interp_nearest1d_scale0p6", (1, 2, 9), "nearest", scale=0.6)
interp("interp_nearest2d_size", (2, 2, 3, 4), "nearest", size=(5, 7))
interp("interp_nearest2d_scale", (1, 2, 5, 4), "nearest", scale=(1.5, 0.75))
interp("interp_nearest2d_scale1p3_same_size", (1, 1, 2, 3), "nearest", scale=1.3)
interp("interp_nearest3d_size", (1, 2, 2, 3, 4), "nearest", size=(3, 5, 2))
interp("interp_nearest3d_scale2", (1, 1, 2, 2, 3), "nearest", scale=2.0)
# 2-d and 3-d 'nearest' copy a dim that keeps its size and halve the index in a doubled one,
# whatever the scale factor. 1-d does not in its forward, but its backward does (PyTorch 1.13's
# gradient there is not that of its forward, so no 1-d case with such a scale is stored).
interp("interp_nearest2d_scale2p0001", (1, 1, 3, 4), "nearest", scale=2.0001)
interp("interp_nearest3d_scale_mixed", (1, 1, 2, 3, 4), "nearest", scale=(1.3, 2.0001, 0.7))
interp("interp_nearestexact1d_scale1p7", (1, 2, 6), "nearest-exact", scale=1.7)
interp("interp_nearestexact2d_size", (1, 2, 5, 3), "nearest-exact", size=(3, 7))
interp("interp_nearestexact3d_scale", (1, 1, 3, 2, 4), "nearest-exact", scale=(0.7, 2.5, 1.25))
interp("interp_nearest2d_recompute", (1, 1, 5, 6), "nearest", scale=1.7, recompute=True)
# linear, bilinear, trilinear: align_corners both ways (and not given), size and scale.
for ac in (False, True):
    n = "ac" if ac else "noac"
    interp(f"interp_linear1d_size_up_{n}", (2, 2, 5), "linear", size=11, align=ac)
    interp(f"interp_linear1d_size_down_{n}", (1, 3, 9), "linear", size=4, align=ac)
    interp(f"interp_linear1d_scale1p3_{n}", (1, 2, 7), "linear", scale=1.3, align=ac)
    interp(f"interp_linear1d_scale0p6_{n}", (1, 2, 8), "linear", scale=0.6, align=ac)
    interp(f"interp_bilinear2d_size_{n}", (2, 2, 4, 5), "bilinear", size=(7, 3), align=ac)
    interp(f"interp_bilinear2d_scale_{n}", (1, 2, 3, 4), "bilinear", scale=(1.5, 2.25), align=ac)
    interp(f"interp_bilinear2d_scale0p5_{n}", (1, 1, 6, 7), "bilinear", scale=0.5, align=ac)
    interp(f"interp_trilinear3d_size_{n}", (1, 2, 3, 4, 2), "trilinear", size=(5, 3, 4), align=ac)
    interp(f"interp_trilinear3d_scale_{n}", (1, 1, 2, 3, 3), "trilinear", scale=1.5, align=ac)
interp("interp_linear1d_size_up_default", (1, 2, 4), "linear", size=7)
interp("interp_bilinear2d_same_h", (1, 2, 2, 5), "bilinear", scale=(1.3, 1.5))
interp("interp_bilinear2d_recompute", (1, 1, 5, 4), "bilinear", scale=1.7, recompute=True)
interp("interp_linear1d_to_one_ac", (1, 1, 5), "linear", size=1, align=True)


def torch_widths(lo, hi):
    w = []
    for a, b in reversed(list(zip(lo, hi))):
        w += [a, b]
    return w


def pad(case, shape, mode, lo, hi):
    x = torch.randn(shape, dtype=torch.float64)
    both(case, lambda t: F.pad(t, torch_widths(lo, hi), mode=mode), x)
    emit(case, "opt_mode", option(PAD_MODES[mode]))
    emit(case, "opt_lo", option(lo))
    emit(case, "opt_hi", option(hi))


for mode in ("reflect", "replicate", "circular"):
    pad(f"pad_{mode}_1d", (2, 3, 5), mode, [2], [1])
    pad(f"pad_{mode}_2d", (1, 2, 4, 5), mode, [1, 3], [2, 0])
    pad(f"pad_{mode}_3d", (1, 1, 3, 4, 5), mode, [1, 0, 2], [2, 2, 1])
    if mode != "circular":  # torch 1.13 pads circularly only below a batch and a channel dim
        pad(f"pad_{mode}_1d_2d_input", (3, 5), mode, [0], [3])
        pad(f"pad_{mode}_3d_4d_input", (2, 3, 4, 3), mode, [2, 1, 0], [0, 3, 2])
pad("pad_reflect_max", (1, 2, 4, 3), "reflect", [3, 2], [3, 2])
pad("pad_circular_max", (1, 2, 4, 3), "circular", [4, 3], [4, 3])
pad("pad_replicate_wide", (1, 1, 2, 2), "replicate", [5, 0], [0, 6])


def conv(case, d, c, k, kernel, mode, stride=1, padding=None, same=False, shape=None):
    layer = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[d](
        c, k, kernel, stride=stride, padding="same" if same else padding, padding_mode=mode
    ).double()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    g = torch.randn(out.shape, dtype=torch.float64)
    (out * g).sum().backward()
    lines.append("# " + case)
    emit(case, "x", x)
    emit(case, "w", layer.weight)
    emit(case, "b", layer.bias)
    emit(case, "out", out)
    emit(case, "g", g)
    emit(case, "grad_x", x.grad)
    emit(case, "grad_w", layer.weight.grad)
    emit(case, "grad_b", layer.bias.grad)
    emit(case, "opt_mode", option(PAD_MODES[mode]))
    emit(case, "opt_kernel", option(kernel))
    emit(case, "opt_stride", option(stride))
    if same:
        emit(case, "opt_same", option(1))
    else:
        emit(case, "opt_padding", option(padding))


conv("conv2d_reflect", 2, 2, 3, 3, "reflect", padding=1, shape=(2, 2, 5, 6))
conv("conv2d_circular", 2, 2, 3, (3, 2), "circular", padding=(1, 2), shape=(1, 2, 4, 5))
conv("conv2d_replicate_stride2", 2, 1, 2, 3, "replicate", stride=2, padding=(2, 1),
     shape=(1, 1, 6, 5))
conv("conv2d_reflect_same", 2, 2, 2, (3, 4), "reflect", same=True, shape=(1, 2, 5, 6))
conv("conv2d_circular_same", 2, 1, 2, (2, 5), "circular", same=True, shape=(2, 1, 4, 6))
conv("conv1d_circular", 1, 2, 2, 3, "circular", padding=2, shape=(2, 2, 7))
conv("conv3d_replicate", 3, 1, 2, 2, "replicate", padding=1, shape=(1, 1, 3, 4, 3))

golden_io.write(__file__, "resample.txt", ", float64 and float32")
