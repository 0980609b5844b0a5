#!/usr/bin/python3
"""Golden values from PyTorch for tests/ops/pool_golden_test.cpp: float32 pooling.

Writes tests/golden/pool.txt in the format of tests/golden/ops.txt, one tensor per line:

    <case> <name> <rank> <dims...> <values...>

Every case is computed by torch in float32. It stores the input "x" (exact float32 values), the
forward output "out", a random upstream gradient "g" of out's shape and "grad_x" = d sum(out * g)
/ dx from torch's float32 backward; max pooling cases also store torch's "indices" (as floats).
The call's options are stored next to them as small tensors, so the C++ test rebuilds the call
from the file alone; a one-element option means torch was given a single int (PoolOptions' scalar
overload on the C++ side), a longer one a per-dim tuple:

    opt_kernel, opt_stride, opt_padding, opt_dilation      max and avg (opt_dilation: max only)
    opt_ceil_mode, opt_count_include_pad                   0 or 1
    opt_divisor_override                                   avg only, when given
    opt_padding_lo, opt_padding_hi  per-dim (low, high) padding; torch: F.pad with -inf (max, no
                                    indices stored) or with zeros and sums divided by the count of
                                    real (or of all) elements (avg)
    opt_output_size                 adaptive pooling's output size; max_unpool's spatial size
    indices                         max_unpool: its second operand (from torch's max pool)

Case names start with the op: "max<d>d_", "avg<d>d_", "amax<d>d_" (adaptive max), "aavg<d>d_"
(adaptive avg) or "unpool<d>d_".

Run with Debian's interpreter, which has python3-torch 1.13:

    /usr/bin/python3 scripts/make_pool_golden.py
"""

import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_FILE = os.path.join(HERE, "..", "tests", "golden", "pool.txt")

torch.manual_seed(20240612)
torch.set_num_threads(1)  # one summation order, whatever the machine

lines = []


def emit(case, name, t):
    t = t.detach().contiguous()
    dims = list(t.shape)
    # 9 significant digits round-trip every float32 exactly; int64 indices print as integers.
    vals = ["%.9g" % v for v in t.to(torch.float64).flatten().tolist()]
    lines.append(" ".join([case, name, str(len(dims))] + [str(d) for d in dims] + vals))


def option(v):
    """An int or a tuple of ints as a float tensor (one element for an int)."""
    v = [v] if isinstance(v, int) else list(v)
    return torch.tensor(v, dtype=torch.float64)


def randn(*shape):
    return torch.randn(shape, dtype=torch.float32)


MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
AMAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}
AAVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
UNPOOL = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}


def torch_pad(x, lo, hi, value):
    widths = []
    for a, b in reversed(list(zip(lo, hi))):  # F.pad lists (low, high) from the last dim back
        widths += [a, b]
    return F.pad(x, widths, value=value)


def record(name, x, out, opts, extra=None):
    assert out.dtype == torch.float32
    g = randn(*out.shape)
    (grad_x,) = torch.autograd.grad((out * g).sum(), [x])
    lines.append("# " + name)
    emit(name, "x", x)
    for k, v in opts.items():
        emit(name, k, v)
    for k, v in (extra or {}).items():
        emit(name, k, v)
    emit(name, "out", out)
    emit(name, "g", g)
    emit(name, "grad_x", grad_x)


def max_case(name, x_shape, kernel, stride=None, padding=0, dilation=1, ceil_mode=False,
             padding_lo=None, padding_hi=None):
    s = len(x_shape) - 2
    assert name.startswith("max%dd_" % s)
    x = randn(*x_shape).requires_grad_(True)
    opts = {"opt_kernel": option(kernel), "opt_dilation": option(dilation),
            "opt_ceil_mode": option(int(ceil_mode))}
    if stride is not None:
        opts["opt_stride"] = option(stride)
    extra = {}
    if padding_lo is not None:
        out = MAX[s](torch_pad(x, padding_lo, padding_hi, float("-inf")), kernel, stride=stride,
                     dilation=dilation, ceil_mode=ceil_mode)
        opts["opt_padding_lo"] = option(tuple(padding_lo))
        opts["opt_padding_hi"] = option(tuple(padding_hi))
    else:
        out, ind = MAX[s](x, kernel, stride=stride, padding=padding, dilation=dilation,
                          ceil_mode=ceil_mode, return_indices=True)
        opts["opt_padding"] = option(padding)
        extra["indices"] = ind
    record(name, x, out, opts, extra)


def avg_case(name, x_shape, kernel, stride=None, padding=0, ceil_mode=False,
             count_include_pad=True, divisor_override=None, padding_lo=None, padding_hi=None):
    s = len(x_shape) - 2
    assert name.startswith("avg%dd_" % s)
    x = randn(*x_shape).requires_grad_(True)
    opts = {"opt_kernel": option(kernel), "opt_ceil_mode": option(int(ceil_mode)),
            "opt_count_include_pad": option(int(count_include_pad))}
    if stride is not None:
        opts["opt_stride"] = option(stride)
    if divisor_override is not None:
        opts["opt_divisor_override"] = option(divisor_override)
    if padding_lo is not None:
        assert not ceil_mode and divisor_override is None
        sums = AVG[s](torch_pad(x, padding_lo, padding_hi, 0.0), kernel, stride=stride,
                      divisor_override=1)
        ones = torch.ones_like(x) if not count_include_pad else None
        if count_include_pad:
            k = [kernel] * s if isinstance(kernel, int) else list(kernel)
            count = torch.prod(torch.tensor(k)).item()
            out = sums / count
        else:
            count = AVG[s](torch_pad(ones, padding_lo, padding_hi, 0.0), kernel, stride=stride,
                           divisor_override=1)
            out = sums / count
        opts["opt_padding_lo"] = option(tuple(padding_lo))
        opts["opt_padding_hi"] = option(tuple(padding_hi))
    else:
        kwargs = {"divisor_override": divisor_override} if s > 1 else {}
        assert s > 1 or divisor_override is None  # avg_pool1d has no divisor_override
        out = AVG[s](x, kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad, **kwargs)
        opts["opt_padding"] = option(padding)
    record(name, x, out, opts)


def adaptive_case(name, x_shape, output_size):
    s = len(x_shape) - 2
    x = randn(*x_shape).requires_grad_(True)
    opts = {"opt_output_size": option(output_size)}
    if name.startswith("amax"):
        out, ind = AMAX[s](x, output_size, return_indices=True)
        record(name, x, out, opts, {"indices": ind})
    else:
        assert name.startswith("aavg")
        record(name, x, AAVG[s](x, output_size), opts)


def unpool_case(name, pooled_shape, kernel, stride=None, padding=0, output_size=None):
    s = len(pooled_shape) - 2
    assert name.startswith("unpool%dd_" % s)
    with torch.no_grad():
        _, ind = MAX[s](randn(*pooled_shape), kernel, stride=stride, padding=padding,
                        return_indices=True)
    x = randn(*ind.shape).requires_grad_(True)
    out = UNPOOL[s](x, ind, kernel, stride=stride, padding=padding,
                    output_size=pooled_shape[2:] if output_size else None)
    opts = {"opt_kernel": option(kernel), "opt_padding": option(padding)}
    if stride is not None:
        opts["opt_stride"] = option(stride)
    if output_size:
        opts["opt_output_size"] = option(tuple(pooled_shape[2:]))
    record(name, x, out, opts, {"indices": ind})


# ---- max pooling
max_case("max1d_k3_s2", (2, 3, 11), 3, 2)
max_case("max1d_k4_s1_pad2_dil2", (2, 2, 12), 4, 1, padding=2, dilation=2)
max_case("max1d_k3_s2_pad1_ceil", (1, 3, 10), 3, 2, padding=1, ceil_mode=True)
max_case("max1d_per_side_pad", (2, 2, 9), 3, 2, padding_lo=(0,), padding_hi=(1,))
max_case("max2d_k2_default_stride", (2, 3, 8, 6), 2)
max_case("max2d_k3_s2_pad1", (2, 2, 9, 10), 3, 2, padding=1)
max_case("max2d_per_dim", (2, 2, 7, 9), (2, 3), (2, 1), padding=(1, 1))
max_case("max2d_k3_dil2_pad1", (1, 3, 9, 8), 3, 1, padding=1, dilation=2)
max_case("max2d_ceil_overhang", (2, 2, 7, 8), 3, 2, ceil_mode=True)
max_case("max2d_ceil_dropped_window", (1, 2, 5, 5), 2, 2, padding=1, ceil_mode=True)
max_case("max2d_stride_over_kernel", (2, 2, 9, 9), 2, 3)
max_case("max2d_per_side_pad", (2, 2, 6, 7), 3, 2, padding_lo=(0, 1), padding_hi=(1, 0))
max_case("max3d_k2", (2, 2, 4, 6, 4), 2)
max_case("max3d_k3_s2_pad1_ceil", (1, 2, 5, 6, 7), 3, 2, padding=1, ceil_mode=True)
max_case("max3d_per_dim_dil", (1, 2, 6, 7, 5), (1, 2, 3), (1, 2, 1), dilation=(1, 2, 1),
         padding=(0, 1, 1))

# ---- average pooling
avg_case("avg1d_k3_s2_pad1", (2, 3, 11), 3, 2, padding=1)
avg_case("avg1d_k3_s2_pad1_exclude", (2, 3, 11), 3, 2, padding=1, count_include_pad=False)
avg_case("avg1d_k4_s3_ceil", (1, 2, 12), 4, 3, padding=2, ceil_mode=True)
avg_case("avg2d_k2_default_stride", (2, 3, 8, 6), 2)
avg_case("avg2d_k3_s1_pad1", (2, 2, 6, 7), 3, 1, padding=1)
avg_case("avg2d_k3_s1_pad1_exclude", (2, 2, 6, 7), 3, 1, padding=1, count_include_pad=False)
avg_case("avg2d_k3_s2_pad1_ceil", (1, 2, 8, 7), 3, 2, padding=1, ceil_mode=True)
avg_case("avg2d_k3_s2_pad1_ceil_exclude", (1, 2, 8, 7), 3, 2, padding=1, ceil_mode=True,
         count_include_pad=False)
avg_case("avg2d_divisor_override", (2, 2, 7, 7), 3, 2, padding=1, divisor_override=5)
avg_case("avg2d_per_dim", (2, 2, 9, 6), (3, 2), (2, 1), padding=(1, 0))
avg_case("avg2d_per_side_pad_include", (1, 2, 6, 7), 3, 2, padding_lo=(1, 0), padding_hi=(0, 1))
avg_case("avg2d_per_side_pad_exclude", (1, 2, 6, 7), 3, 2, padding_lo=(1, 0), padding_hi=(0, 1),
         count_include_pad=False)
avg_case("avg3d_k2", (2, 2, 4, 6, 4), 2)
avg_case("avg3d_k3_s2_pad1_ceil_exclude", (1, 2, 5, 6, 7), 3, 2, padding=1, ceil_mode=True,
         count_include_pad=False)
avg_case("avg3d_divisor_override", (1, 2, 4, 5, 6), (2, 3, 2), 2, padding=(1, 1, 0),
         divisor_override=7)

# ---- adaptive pooling
adaptive_case("aavg1d_10_to_4", (2, 3, 10), 4)
adaptive_case("aavg1d_3_to_5", (1, 2, 3), 5)
adaptive_case("aavg2d_7x9_to_3x4", (2, 2, 7, 9), (3, 4))
adaptive_case("aavg2d_8x8_to_4x2", (2, 2, 8, 8), (4, 2))
adaptive_case("aavg2d_global", (2, 3, 5, 6), 1)
adaptive_case("aavg3d_5x6x7_to_2x3x4", (1, 2, 5, 6, 7), (2, 3, 4))
adaptive_case("amax1d_10_to_4", (2, 3, 10), 4)
adaptive_case("amax1d_3_to_5", (1, 2, 3), 5)
adaptive_case("amax2d_7x9_to_3x4", (2, 2, 7, 9), (3, 4))
adaptive_case("amax2d_8x8_to_2x4", (2, 2, 8, 8), (2, 4))
adaptive_case("amax3d_5x6x7_to_2x3x4", (1, 2, 5, 6, 7), (2, 3, 4))

# ---- max unpooling
unpool_case("unpool1d_k2", (2, 3, 10), 2)
unpool_case("unpool1d_k3_s2_pad1_size", (1, 2, 10), 3, 2, padding=1, output_size=True)
unpool_case("unpool2d_k2", (2, 2, 6, 8), 2)
unpool_case("unpool2d_k3_s2_size", (1, 2, 8, 9), 3, 2, output_size=True)
unpool_case("unpool3d_k2", (1, 2, 4, 4, 6), 2)

os.makedirs(os.path.dirname(OUT_FILE), exist_ok=True)
with open(OUT_FILE, "w") as f:
    f.write("# Generated by scripts/make_pool_golden.py (PyTorch %s, float32); do not edit by "
            "hand.\n" % torch.__version__)
    f.write("# Regenerate: /usr/bin/python3 scripts/make_pool_golden.py\n")
    f.write("# Format: <case> <name> <rank> <dims...> <values...>\n")
    for line in lines:
        f.write(line + "\n")
print("wrote %d lines to %s" % (len(lines), os.path.normpath(OUT_FILE)), file=sys.stderr)
