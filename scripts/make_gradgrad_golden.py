#!/usr/bin/python3
"""Golden second derivatives from PyTorch for tests/autograd/gradgrad_golden_test.cpp.

Writes three files in scripts/make_golden.py's format, one tensor per line:

    tests/golden/gradgrad_conv.txt         conv1d/2d/3d and conv_transpose1d/2d/3d
    tests/golden/gradgrad_pool.txt         max pooling (1-d, 2-d, 3-d)
    tests/golden/gradgrad_correlation.txt  the FlowNet correlation of ops/correlation.h

    <case> <name> <rank> <dims...> <values...>

Every case is float64. For inputs a_1..a_n (the differentiable operands, stored under their own
names), out = f(a), a fixed output gradient "v" of out's shape and fixed directions "u_<a_i>" of
each input's shape, it stores:

    out           f(a)
    grad_<a_i>    g_i = (d out / d a_i)^T v, the first gradients (create_graph=True)
    gg_<a_i>      d s / d a_i with s = sum_i <g_i, u_i>: a second derivative
    gg_v          d s / d v

that is, exactly what torch.autograd.grad(out, a, v, create_graph=True) followed by
torch.autograd.grad(s, a + [v]) gives; a derivative torch reports as unused (None) is stored as
zeros. The call's options are stored next to them as small tensors (opt_*), one value per spatial
dim (conv: opt_stride, opt_padding, opt_dilation, opt_groups, and opt_output_padding for the
transposed cases; max pool: opt_kernel, opt_stride, opt_padding, opt_dilation, opt_ceil_mode;
correlation: opt_kernel_size, opt_max_displacement, opt_stride1, opt_stride2, opt_padding).
Case names start with the op: "conv<d>d_", "convt<d>d_", "max<d>d_" or "corr_".

Max pooling's inputs are distinct values (a permutation of a grid, plus noise far below its step),
so that every window has one maximum. PyTorch has no correlation op: it is written below from the
definition in ops/correlation.h as padding, shifted slices, products and means, and its forward is
checked against a direct loop over that definition before anything is written.

Run with Debian's interpreter, which has python3-torch 1.13:

    /usr/bin/python3 scripts/make_gradgrad_golden.py
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402
from golden_io import emit, option, randn  # noqa: E402

torch.manual_seed(20241216)
torch.set_num_threads(1)  # one summation order, whatever the machine
torch.set_default_dtype(torch.float64)


def gradgrad_case(name, fn, inputs, opts):
    """inputs: dict name -> float64 tensor, all differentiable; opts: dict name -> tensor."""
    leaves = {k: t.clone().requires_grad_(True) for k, t in inputs.items()}
    out = fn(**leaves)
    v = randn(*out.shape).requires_grad_(True)
    u = {k: randn(*t.shape) for k, t in inputs.items()}
    grads = torch.autograd.grad(out, list(leaves.values()), v, create_graph=True)
    s = sum((g * u[k]).sum() for k, g in zip(leaves.keys(), grads))
    wrt = list(leaves.values()) + [v]
    second = torch.autograd.grad(s, wrt, allow_unused=True)
    second = [torch.zeros_like(t) if g is None else g for t, g in zip(wrt, second)]
    golden_io.lines.append("# " + name)
    for k, t in inputs.items():
        emit(name, k, t)
    for k, t in opts.items():
        emit(name, k, t)
    emit(name, "out", out)
    emit(name, "v", v)
    for k, g in zip(leaves.keys(), grads):
        emit(name, "grad_" + k, g)
    for k in inputs:
        emit(name, "u_" + k, u[k])
    for k, g in zip(leaves.keys(), second):
        emit(name, "gg_" + k, g)
    emit(name, "gg_v", second[-1])


def per_dim(v, dims):
    return [v] * dims if isinstance(v, int) else list(v)


def write(out_name):
    golden_io.write(__file__, out_name)
    golden_io.lines.clear()


# ---------------------------------------------------------------- conv

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONVT = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def conv_case(name, x_shape, out_channels, kernel, stride=1, padding=0, dilation=1, groups=1,
              bias=True):
    d = len(x_shape) - 2
    assert name.startswith("conv%dd_" % d)
    w_shape = [out_channels, x_shape[1] // groups] + per_dim(kernel, d)
    inputs = {"x": randn(*x_shape), "w": randn(*w_shape)}
    if bias:
        inputs["b"] = randn(out_channels)
    opts = {"opt_stride": option(per_dim(stride, d)), "opt_padding": option(per_dim(padding, d)),
            "opt_dilation": option(per_dim(dilation, d)), "opt_groups": option(groups)}
    gradgrad_case(name, lambda x, w, b=None: CONV[d](x, w, b, stride, padding, dilation, groups),
                  inputs, opts)


def convt_case(name, x_shape, out_channels, kernel, stride=1, padding=0, output_padding=0,
               dilation=1, groups=1, bias=True):
    d = len(x_shape) - 2
    assert name.startswith("convt%dd_" % d)
    w_shape = [x_shape[1], out_channels // groups] + per_dim(kernel, d)
    inputs = {"x": randn(*x_shape), "w": randn(*w_shape)}
    if bias:
        inputs["b"] = randn(out_channels)
    opts = {"opt_stride": option(per_dim(stride, d)), "opt_padding": option(per_dim(padding, d)),
            "opt_output_padding": option(per_dim(output_padding, d)),
            "opt_dilation": option(per_dim(dilation, d)), "opt_groups": option(groups)}
    gradgrad_case(name,
                  lambda x, w, b=None: CONVT[d](x, w, b, stride, padding, output_padding, groups,
                                                dilation),
                  inputs, opts)


conv_case("conv1d_s2_p1_bias", [2, 3, 7], 4, 3, stride=2, padding=1)
conv_case("conv1d_dil2_nobias", [1, 2, 8], 3, 2, dilation=2, bias=False)
conv_case("conv2d_groups2_stride_pad_dil", [1, 4, 5, 6], 6, (3, 2), stride=(1, 2), padding=(1, 0),
          dilation=(2, 1), groups=2)
conv_case("conv2d_depthwise", [2, 3, 4, 4], 3, 2, groups=3, padding=1, bias=False)
conv_case("conv3d_stride_pad_dil", [1, 2, 4, 3, 4], 3, 2, stride=(1, 2, 1), padding=(1, 0, 1),
          dilation=(1, 1, 2))
convt_case("convt1d_s2_p1_op1", [2, 2, 4], 3, 3, stride=2, padding=1, output_padding=1)
convt_case("convt2d_groups2_op_dil", [1, 4, 3, 3], 4, (3, 2), stride=(2, 3), padding=(1, 0),
           output_padding=(1, 2), dilation=(1, 2), groups=2)
convt_case("convt3d_s2_op1", [1, 2, 2, 3, 2], 2, 2, stride=2, output_padding=1, bias=False)
write("gradgrad_conv.txt")


# ---------------------------------------------------------------- max pool

MAXPOOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def distinct(*shape):
    """Distinct values: a shuffled grid of step 0.25 around 0, plus noise of at most 0.01."""
    n = math.prod(shape)
    grid = (torch.randperm(n).to(torch.float64) - n / 2) * 0.25
    return (grid + golden_io.uniform(-0.01, 0.01, n)).reshape(shape)


def max_case(name, x_shape, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    d = len(x_shape) - 2
    assert name.startswith("max%dd_" % d)
    opts = {"opt_kernel": option(per_dim(kernel, d)),
            "opt_stride": option(per_dim(kernel if stride is None else stride, d)),
            "opt_padding": option(per_dim(padding, d)),
            "opt_dilation": option(per_dim(dilation, d)), "opt_ceil_mode": option(int(ceil_mode))}
    gradgrad_case(name,
                  lambda x: MAXPOOL[d](x, kernel, stride=stride, padding=padding,
                                       dilation=dilation, ceil_mode=ceil_mode),
                  {"x": distinct(*x_shape)}, opts)


max_case("max1d_k3_s2", [2, 3, 9], 3, stride=2)
max_case("max1d_k2_p1_dil2", [1, 2, 8], 2, stride=1, padding=1, dilation=2)
max_case("max2d_k3_s2_p1_dil2", [1, 2, 7, 8], 3, stride=2, padding=1, dilation=2)
max_case("max2d_k2_s1", [2, 2, 4, 5], 2, stride=1)
max_case("max2d_k3x2_s21_p10_ceil", [1, 3, 6, 5], (3, 2), stride=(2, 1), padding=(1, 0),
         ceil_mode=True)
max_case("max3d_k2_s1_p1", [1, 2, 3, 4, 3], 2, stride=1, padding=1)
write("gradgrad_pool.txt")


# ---------------------------------------------------------------- correlation

def correlation(f1, f2, k, md, s1, s2, pad):
    """ops/correlation.h's cost volume: y[n, (p + R) * D + (o + R), y, x] = 1 / (k * k * C) *
    sum over c and the k x k patch of f1p[n, c, cy + i, cx + j] * f2p[n, c, cy + i + p * s2,
    cx + j + o * s2], centre (cy, cx) = (y * s1 + b, x * s1 + b) in the zero-padded inputs."""
    r = (k - 1) // 2
    b = md + r
    R = md // s2
    f1p = F.pad(f1, [pad] * 4)
    f2p = F.pad(f2, [pad] * 4)
    hp, wp = f1p.shape[2], f1p.shape[3]
    ho = -(-(hp - 2 * b) // s1)
    wo = -(-(wp - 2 * b) // s1)

    def window(t, dy, dx):  # t[:, :, b + dy + s1 * y, b + dx + s1 * x] for every output (y, x)
        y0, x0 = b + dy, b + dx
        return t[:, :, y0:y0 + s1 * (ho - 1) + 1:s1, x0:x0 + s1 * (wo - 1) + 1:s1]

    planes = []
    for p in range(-R, R + 1):
        for o in range(-R, R + 1):
            acc = 0
            for i in range(-r, r + 1):
                for j in range(-r, r + 1):
                    prod = window(f1p, i, j) * window(f2p, i + p * s2, j + o * s2)
                    acc = acc + prod.mean(1)
            planes.append(acc / (k * k))
    return torch.stack(planes, 1)


def correlation_loops(f1, f2, k, md, s1, s2, pad):
    """The same definition as plain loops over unpadded coordinates (reads outside are zero)."""
    n_, c_, h, w = f1.shape
    r = (k - 1) // 2
    b = md + r
    R = md // s2
    D = 2 * R + 1
    ho = -(-(h + 2 * pad - 2 * b) // s1)
    wo = -(-(w + 2 * pad - 2 * b) // s1)
    y = torch.zeros(n_, D * D, ho, wo)

    def at(t, n, c, yy, xx):
        return t[n, c, yy, xx].item() if 0 <= yy < h and 0 <= xx < w else 0.0

    for n in range(n_):
        for p in range(-R, R + 1):
            for o in range(-R, R + 1):
                for oy in range(ho):
                    for ox in range(wo):
                        cy, cx = oy * s1 + b - pad, ox * s1 + b - pad
                        total = 0.0
                        for c in range(c_):
                            for i in range(-r, r + 1):
                                for j in range(-r, r + 1):
                                    total += at(f1, n, c, cy + i, cx + j) * at(
                                        f2, n, c, cy + i + p * s2, cx + j + o * s2)
                        y[n, (p + R) * D + (o + R), oy, ox] = total / (k * k * c_)
    return y


def corr_case(name, shape, k, md, s1, s2, pad):
    assert name.startswith("corr_")
    f1, f2 = randn(*shape), randn(*shape)
    composed = correlation(f1, f2, k, md, s1, s2, pad)
    direct = correlation_loops(f1, f2, k, md, s1, s2, pad)
    assert composed.shape == direct.shape, (composed.shape, direct.shape)
    assert torch.allclose(composed, direct, rtol=1e-12, atol=1e-14), name
    opts = {"opt_kernel_size": option(k), "opt_max_displacement": option(md),
            "opt_stride1": option(s1), "opt_stride2": option(s2), "opt_padding": option(pad)}
    gradgrad_case(name, lambda f1, f2: correlation(f1, f2, k, md, s1, s2, pad),
                  {"f1": f1, "f2": f2}, opts)


corr_case("corr_k1_md2_pad2", [1, 3, 5, 6], 1, 2, 1, 1, 2)
corr_case("corr_k3_md2_s2_pad1", [2, 2, 7, 6], 3, 2, 2, 2, 1)
corr_case("corr_k1_md3_s2_pad0", [1, 4, 8, 9], 1, 3, 1, 2, 0)
corr_case("corr_k3_md1_s1x2_pad3", [1, 3, 4, 5], 3, 1, 2, 1, 3)
write("gradgrad_correlation.txt")
