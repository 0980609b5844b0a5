#!/usr/bin/python3
"""Reference timings for benchmarks/conv: PyTorch (Debian python3-torch, CPU) on the conv suite.

Reads the suite from stdin, one case per line:
    name N C K spatial(comma-separated) kernel stride pad dilation groups
and prints, per case, "name fwd_seconds fwdbwd_seconds checksum" (best-of-3-windows median wall
times; the checksum is the sum of the forward output for a fixed input, for a cross-check). Run by
benchmarks/conv, which passes the thread count and the device (cpu or cuda) as arguments. On cuda
every timed call ends with torch.cuda.synchronize(), cudnn.benchmark is on (convtape searches its
algorithms too) and TF32 is off (as in convtape by default).
"""

import sys
import time

import torch
import torch.nn.functional as F


def median_time(fn, min_seconds=0.4, min_reps=5, max_reps=200):
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


def best_window_median(fn, min_seconds=0.6, windows=3):
    """The smallest of `windows` medians (as benchmarks/bench_util.h times convtape): a window
    that lands in a slow phase of the shared machine does not decide the figure."""
    return min(median_time(fn, min_seconds / windows, 3, 100) for _ in range(windows))


def main():
    threads = int(sys.argv[1])
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    torch.set_num_threads(threads)
    sync = (lambda: None)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        sync = torch.cuda.synchronize
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
    for line in sys.stdin:
        if not line.strip():
            continue
        name, n, c, k, spatial, ksize, stride, pad, dil, groups = line.split()
        n, c, k, ksize, stride, pad, dil, groups = map(int, (n, c, k, ksize, stride, pad, dil, groups))
        spatial = [int(s) for s in spatial.split(",")]
        rank = len(spatial)
        g = torch.Generator().manual_seed(0)
        x = torch.randn([n, c] + spatial, generator=g)
        w = torch.randn([k, c // groups] + [ksize] * rank, generator=g) * 0.1
        b = torch.randn([k], generator=g)
        x, w, b = x.to(device), w.to(device), b.to(device)
        f = conv[rank]

        def forward():
            with torch.no_grad():
                out = f(x, w, b, stride=stride, padding=pad, dilation=dil, groups=groups)
            sync()
            return out

        y = forward()
        dy = torch.ones_like(y)
        xg = x.clone().requires_grad_()
        wg = w.clone().requires_grad_()
        bg = b.clone().requires_grad_()

        def forward_backward():
            out = f(xg, wg, bg, stride=stride, padding=pad, dilation=dil, groups=groups)
            out.backward(dy)
            xg.grad = None
            wg.grad = None
            bg.grad = None
            sync()

        t_fwd = best_window_median(forward)
        t_all = best_window_median(forward_backward)
        print(f"{name} {t_fwd:.9f} {t_all:.9f} {float(y.double().sum()):.6e}", flush=True)


if __name__ == "__main__":
    main()
