#!/usr/bin/python3
"""Golden values from PyTorch for tests/ops/conv_golden_test.cpp: float32 convolutions.

Writes tests/golden/conv.txt in the format of tests/golden/ops.txt, one tensor per line:

    <case> <name> <rank> <dims...> <values...>

Every case is computed by torch in float32. It stores the inputs "x", "w" and (when the case has
a bias) "b" as their exact float32 values, the forward output "out", a random upstream gradient
"g" of out's shape, and "grad_x", "grad_w", "grad_b" = d sum(out * g) / d input from torch's
float32 backward. The call's options are stored next to them as small tensors, so the C++ test
rebuilds the call from the file alone; a one-element option means torch was given a single int
(ConvOptions' scalar overload on the C++ side), a longer one a per-dim tuple:

    opt_stride, opt_padding, opt_dilation, opt_groups            conv and conv_transpose
    opt_output_padding                                           conv_transpose only
    opt_padding_lo, opt_padding_hi   per-dim (low, high) padding, torch: F.pad then conv
    opt_same                         padding="same" (JAX's SAME: extra padding on the high side)
    opt_input_dilation               lhs dilation, torch: zeros inserted into x by slicing
    opt_flip                         true convolution, torch: conv with w flipped in space

Case names start with "conv<d>d_" (convolution, torch.nn.functional.conv<d>d) or "convT<d>d_"
(torch.nn.functional.conv_transpose<d>d, weight [C_in, C_out/groups, *k] as in convtape).

Run with Debian's interpreter, which has python3-torch 1.13:

    /usr/bin/python3 scripts/make_conv_golden.py
"""

import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_FILE = os.path.join(HERE, "..", "tests", "golden", "conv.txt")

torch.manual_seed(20240611)
torch.set_num_threads(1)  # one summation order, whatever the machine

lines = []


def emit(case, name, t):
    t = t.detach().contiguous()
    dims = list(t.shape)
    # 9 significant digits round-trip every float32 exactly.
    vals = ["%.9g" % v for v in t.to(torch.float64).flatten().tolist()]
    lines.append(" ".join([case, name, str(len(dims))] + [str(d) for d in dims] + vals))


def option(v):
    """An int or a tuple of ints as a float tensor (one element for an int)."""
    v = [v] if isinstance(v, int) else list(v)
    return torch.tensor(v, dtype=torch.float64)


def randn(*shape):
    return torch.randn(shape, dtype=torch.float32)


def per_dim(v, s):
    return [v] * s if isinstance(v, int) else list(v)


def dilate_input(x, d):
    """x with d[i] - 1 zeros inserted between neighbours along spatial dim i (lhs dilation)."""
    s = x.dim() - 2
    d = per_dim(d, s)
    shape = list(x.shape[:2]) + [(n - 1) * k + 1 for n, k in zip(x.shape[2:], d)]
    out = x.new_zeros(shape)
    out[(slice(None), slice(None)) + tuple(slice(None, None, k) for k in d)] = x
    return out


def conv_case(name, x_shape, w_shape, bias=True, stride=1, padding=0, dilation=1, groups=1,
              padding_lo=None, padding_hi=None, same=False, input_dilation=None, flip=False):
    s = len(x_shape) - 2
    assert name.startswith("conv%dd_" % s)
    conv_fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[s]
    x = randn(*x_shape).requires_grad_(True)
    w = randn(*w_shape).requires_grad_(True)
    b = randn(w_shape[0]).requires_grad_(True) if bias else None

    xi = x if input_dilation is None else dilate_input(x, input_dilation)
    if padding_lo is not None:
        # F.pad lists (low, high) from the last dim backwards.
        widths = []
        for lo, hi in reversed(list(zip(padding_lo, padding_hi))):
            widths += [lo, hi]
        xi = F.pad(xi, widths)
    wi = torch.flip(w, dims=list(range(2, 2 + s))) if flip else w
    pad_arg = "same" if same else (0 if padding_lo is not None else padding)
    out = conv_fn(xi, wi, b, stride=stride, padding=pad_arg, dilation=dilation, groups=groups)
    opts = {"opt_stride": option(stride), "opt_dilation": option(dilation),
            "opt_groups": option(groups)}
    if same:
        opts["opt_same"] = option(1)
    elif padding_lo is not None:
        opts["opt_padding_lo"] = option(tuple(padding_lo))
        opts["opt_padding_hi"] = option(tuple(padding_hi))
    else:
        opts["opt_padding"] = option(padding)
    if input_dilation is not None:
        opts["opt_input_dilation"] = option(input_dilation)
    if flip:
        opts["opt_flip"] = option(1)
    record(name, x, w, b, out, opts)


def conv_transpose_case(name, x_shape, w_shape, bias=True, stride=1, padding=0,
                        output_padding=0, dilation=1, groups=1):
    s = len(x_shape) - 2
    assert name.startswith("convT%dd_" % s)
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[s]
    x = randn(*x_shape).requires_grad_(True)
    w = randn(*w_shape).requires_grad_(True)
    b = randn(w_shape[1] * groups).requires_grad_(True) if bias else None
    out = fn(x, w, b, stride=stride, padding=padding, output_padding=output_padding,
             groups=groups, dilation=dilation)
    opts = {"opt_stride": option(stride), "opt_padding": option(padding),
            "opt_output_padding": option(output_padding), "opt_dilation": option(dilation),
            "opt_groups": option(groups)}
    record(name, x, w, b, out, opts)


def record(name, x, w, b, out, opts):
    assert out.dtype == torch.float32
    g = randn(*out.shape)
    leaves = [x, w] + ([b] if b is not None else [])
    grads = torch.autograd.grad((out * g).sum(), leaves)
    lines.append("# " + name)
    emit(name, "x", x)
    emit(name, "w", w)
    if b is not None:
        emit(name, "b", b)
    for k, v in opts.items():
        emit(name, k, v)
    emit(name, "out", out)
    emit(name, "g", g)
    for k, gr in zip(["grad_x", "grad_w", "grad_b"], grads):
        emit(name, k, gr)


# ---- conv1d
conv_case("conv1d_basic", (2, 3, 10), (4, 3, 3))
conv_case("conv1d_stride2_pad1", (2, 4, 11), (6, 4, 3), stride=2, padding=1)
conv_case("conv1d_dilation3_pad2_nobias", (1, 2, 16), (3, 2, 4), bias=False, dilation=3, padding=2)
conv_case("conv1d_groups2", (2, 4, 9), (6, 2, 3), groups=2, padding=1)
conv_case("conv1d_depthwise", (2, 5, 12), (5, 1, 5), groups=5, padding=2)
conv_case("conv1d_same_even_kernel", (2, 3, 10), (2, 3, 4), same=True)
conv_case("conv1d_stride3_kernel2", (2, 2, 13), (3, 2, 2), stride=3)

# ---- conv2d
conv_case("conv2d_basic", (2, 3, 7, 6), (4, 3, 3, 3))
conv_case("conv2d_stride2_pad1", (2, 3, 9, 8), (5, 3, 3, 3), stride=2, padding=1)
conv_case("conv2d_per_dim_stride_pad", (2, 2, 8, 7), (3, 2, 3, 2), stride=(2, 1), padding=(1, 2))
conv_case("conv2d_dilation2_nobias", (1, 3, 10, 9), (4, 3, 3, 3), bias=False, dilation=2,
          padding=2)
conv_case("conv2d_dilation_3_1", (2, 2, 9, 6), (3, 2, 2, 2), dilation=(3, 1))
conv_case("conv2d_groups2", (2, 4, 6, 6), (6, 2, 3, 3), groups=2, padding=1)
conv_case("conv2d_groups3_stride2", (1, 6, 9, 9), (9, 2, 3, 3), groups=3, stride=2)
conv_case("conv2d_depthwise", (2, 4, 8, 8), (4, 1, 3, 3), groups=4, padding=1)
conv_case("conv2d_depthwise_multiplier2", (2, 3, 7, 7), (6, 1, 3, 3), groups=3, bias=False)
conv_case("conv2d_pointwise", (2, 8, 5, 5), (4, 8, 1, 1))
conv_case("conv2d_pointwise_stride2", (2, 6, 7, 6), (5, 6, 1, 1), stride=2)
conv_case("conv2d_large_reduction", (1, 32, 5, 5), (8, 32, 3, 3), padding=1)
conv_case("conv2d_same_dilated", (1, 2, 8, 9), (3, 2, 4, 3), same=True, dilation=(1, 2))
conv_case("conv2d_asym_pad_stride2", (2, 3, 7, 8), (4, 3, 3, 3), stride=2, padding_lo=(0, 2),
          padding_hi=(2, 1))
conv_case("conv2d_input_dilation", (2, 2, 5, 4), (3, 2, 3, 3), input_dilation=(2, 3), padding=1)
conv_case("conv2d_input_dilation_stride2", (1, 3, 6, 6), (2, 3, 3, 2), input_dilation=2, stride=2,
          bias=False)
conv_case("conv2d_flip_kernel", (2, 3, 6, 7), (4, 3, 3, 2), flip=True, padding=1)
conv_case("conv2d_stride3_kernel2", (2, 3, 10, 11), (4, 3, 2, 2), stride=3)

# ---- conv3d
conv_case("conv3d_basic_pad1", (2, 2, 4, 4, 5), (3, 2, 3, 3, 3), padding=1)
conv_case("conv3d_per_dim_stride_dilation", (1, 2, 7, 6, 5), (4, 2, 3, 2, 2), stride=(1, 2, 2),
          dilation=(2, 1, 1), padding=(2, 1, 0))
conv_case("conv3d_groups2_stride2", (1, 4, 6, 5, 5), (4, 2, 2, 3, 3), groups=2, stride=2)
conv_case("conv3d_depthwise_nobias", (1, 3, 4, 5, 4), (3, 1, 3, 3, 3), groups=3, padding=1,
          bias=False)
conv_case("conv3d_pointwise", (2, 6, 3, 4, 3), (4, 6, 1, 1, 1))

# ---- conv_transpose1d
conv_transpose_case("convT1d_basic", (2, 3, 7), (3, 4, 3))
conv_transpose_case("convT1d_stride2_pad1_outpad1", (2, 4, 6), (4, 2, 3), stride=2, padding=1,
                    output_padding=1)
conv_transpose_case("convT1d_stride3_dilation2", (1, 3, 5), (3, 2, 4), stride=3, dilation=2,
                    padding=1, bias=False)
conv_transpose_case("convT1d_groups2", (2, 4, 5), (4, 3, 3), groups=2)

# ---- conv_transpose2d
conv_transpose_case("convT2d_basic", (2, 3, 5, 4), (3, 2, 3, 3))
conv_transpose_case("convT2d_stride2_pad1_outpad1", (2, 4, 5, 5), (4, 3, 3, 3), stride=2,
                    padding=1, output_padding=1)
conv_transpose_case("convT2d_per_dim", (2, 2, 4, 3), (2, 3, 3, 4), stride=(2, 3), padding=(1, 0),
                    output_padding=(1, 2), dilation=(1, 2))
conv_transpose_case("convT2d_groups2_stride2", (2, 4, 4, 4), (4, 3, 3, 3), groups=2, stride=2)
conv_transpose_case("convT2d_depthwise", (2, 3, 5, 5), (3, 1, 3, 3), groups=3, stride=2, padding=1,
                    output_padding=1)
conv_transpose_case("convT2d_dilation2_nobias", (1, 2, 4, 5), (2, 3, 3, 3), dilation=2, padding=2,
                    bias=False)
conv_transpose_case("convT2d_stride3_kernel2", (2, 3, 4, 3), (3, 2, 2, 2), stride=3)
conv_transpose_case("convT2d_dcgan_large", (1, 16, 4, 4), (16, 8, 4, 4), stride=2, padding=1)

# ---- conv_transpose3d
conv_transpose_case("convT3d_basic_stride2", (1, 3, 3, 4, 3), (3, 2, 3, 3, 3), stride=2)
conv_transpose_case("convT3d_groups2_outpad", (2, 4, 3, 3, 3), (4, 1, 2, 3, 3), groups=2,
                    stride=(2, 2, 1), padding=(0, 1, 1), output_padding=(1, 1, 0))
conv_transpose_case("convT3d_dilation2_pad1_nobias", (1, 2, 3, 3, 4), (2, 2, 3, 2, 3), dilation=2,
                    padding=1, bias=False)

os.makedirs(os.path.dirname(OUT_FILE), exist_ok=True)
with open(OUT_FILE, "w") as f:
    f.write("# Generated by scripts/make_conv_golden.py (PyTorch %s, float32); do not edit by "
            "hand.\n" % torch.__version__)
    f.write("# Regenerate: /usr/bin/python3 scripts/make_conv_golden.py\n")
    f.write("# Format: <case> <name> <rank> <dims...> <values...>\n")
    for line in lines:
        f.write(line + "\n")
print("wrote %d lines to %s" % (len(lines), os.path.normpath(OUT_FILE)), file=sys.stderr)
