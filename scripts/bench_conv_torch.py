#!/usr/bin/env python3
"""Reference timings for benchmarks/conv: PyTorch on the conv tables (any PyTorch: benchmarks/conv
runs this with the newest one, from .bench-venv, and with Debian's 1.13).

usage: bench_conv_torch.py THREADS [DEVICE [MIN_SECONDS]] < cases
Reads the cases from stdin, one per line:
    name N C K spatial(comma-separated) kernel stride pad dilation groups transposed
    output_padding forward_only
(transposed 1: F.conv_transposeNd with the weight [C, K/groups, *R]; else F.convNd with the weight
[K, C/groups, *R]; forward_only 1: no backward is timed and its time prints as 0) and prints, per
case, "name fwd_seconds fwdbwd_seconds checksum": best-of-3-windows median wall times over
MIN_SECONDS (default 0.6) of calls each, as benchmarks/bench_util.h times convtape; the checksum is
the sum of the forward output for a fixed input, for a cross-check. DEVICE is cpu (default) or
cuda; on cuda every timed call ends with torch.cuda.synchronize(), cudnn.benchmark is on (convtape
searches its algorithms too) and TF32 is off (as in convtape by default).
"""

import sys
import time

import torch
import torch.nn.functional as F


def median_time(fn, min_seconds, min_reps, max_reps):
    fn()
    times = []
    total = 0.0
    while (total < min_seconds or len(times) < min_reps) and len(times) < max_reps:
        start = time.perf_counter()
        fn()
        t = time.perf_counter() - start
        times.append(t)
        total += t
    times.sort()
    return times[len(times) // 2]


def best_window_median(fn, min_seconds, windows=3):
    """The smallest of `windows` medians (as benchmarks/bench_util.h times convtape): a window
    that lands in a slow phase of the shared machine does not decide the figure."""
    return min(median_time(fn, min_seconds / windows, 3, 100) for _ in range(windows))


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def main():
    threads = int(sys.argv[1])
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    min_seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.6
    torch.set_num_threads(threads)
    sync = (lambda: None)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        sync = torch.cuda.synchronize
    for line in sys.stdin:
        if not line.strip():
            continue
        (name, n, c, k, spatial, ksize, stride, pad, dil, groups, transposed, out_pad,
         fwd_only) = line.split()
        n, c, k, ksize, stride, pad, dil, groups, transposed, out_pad, fwd_only = map(
            int, (n, c, k, ksize, stride, pad, dil, groups, transposed, out_pad, fwd_only))
        spatial = [int(s) for s in spatial.split(",")]
        rank = len(spatial)
        g = torch.Generator().manual_seed(0)
        x = torch.randn([n, c] + spatial, generator=g)
        wshape = [c, k // groups] if transposed else [k, c // groups]
        w = torch.randn(wshape + [ksize] * rank, generator=g) * 0.1
        b = torch.randn([k], generator=g)
        x, w, b = x.to(device), w.to(device), b.to(device)
        if transposed:
            def f(xi, wi, bi):
                return CONV_T[rank](xi, wi, bi, stride=stride, padding=pad,
                                    output_padding=out_pad, groups=groups, dilation=dil)
        else:
            def f(xi, wi, bi):
                return CONV[rank](xi, wi, bi, stride=stride, padding=pad, dilation=dil,
                                  groups=groups)

        def forward():
            with torch.no_grad():
                out = f(x, w, b)
            sync()
            return out

        y = forward()
        t_fwd = best_window_median(forward, min_seconds)
        t_all = 0.0
        if not fwd_only:
            dy = torch.ones_like(y)
            xg = x.clone().requires_grad_()
            wg = w.clone().requires_grad_()
            bg = b.clone().requires_grad_()

            def forward_backward():
                f(xg, wg, bg).backward(dy)
                xg.grad = None
                wg.grad = None
                bg.grad = None
                sync()

            t_all = best_window_median(forward_backward, min_seconds)
        print(f"{name} {t_fwd:.9f} {t_all:.9f} {float(y.double().sum()):.6e}", flush=True)


if __name__ == "__main__":
    main()
