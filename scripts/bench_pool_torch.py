#!/usr/bin/env python3
"""Reference timings for benchmarks/pool: PyTorch (CPU; benchmarks/pool runs this with the newest
PyTorch, from .bench-venv, and with Debian's 1.13) on the pool suite.

usage: bench_pool_torch.py THREADS [DEVICE [MIN_SECONDS]] < cases  (DEVICE: cpu only)

Reads the suite from stdin, one case per line:
    name op N C spatial(comma-separated) kernel stride pad output_size
where op is max, avg, adaptive_avg or global_avg (kernel, stride and pad are single ints used for
every spatial dim; output_size likewise, for adaptive_avg), and prints, per case,
"name fwd_seconds fwdbwd_seconds checksum" (best-of-3-windows median wall times; the checksum is
the sum of the forward output for a fixed input, for a cross-check), each window's median over
MIN_SECONDS / 3 (default 0.6 in all) of calls, as benchmarks/bench_util.h times convtape.
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


MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


def pool_fn(op, rank, kernel, stride, pad, out_size):
    if op == "max":
        return lambda x: MAX[rank](x, kernel, stride=stride, padding=pad)
    if op == "avg":
        return lambda x: AVG[rank](x, kernel, stride=stride, padding=pad)
    if op == "adaptive_avg":
        return lambda x: ADAPTIVE_AVG[rank](x, out_size)
    assert op == "global_avg"
    return lambda x: ADAPTIVE_AVG[rank](x, 1)


def main():
    threads = int(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] != "cpu":
        sys.exit(f"bench_pool_torch.py: expected device cpu, got {sys.argv[2]}")
    min_seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.6
    torch.set_num_threads(threads)
    for line in sys.stdin:
        if not line.strip():
            continue
        name, op, n, c, spatial, kernel, stride, pad, out_size = line.split()
        n, c, kernel, stride, pad, out_size = map(int, (n, c, kernel, stride, pad, out_size))
        spatial = [int(s) for s in spatial.split(",")]
        f = pool_fn(op, len(spatial), kernel, stride, pad, out_size)
        g = torch.Generator().manual_seed(0)
        x = torch.randn([n, c] + spatial, generator=g)

        def forward():
            with torch.no_grad():
                return f(x)

        y = forward()
        dy = torch.ones_like(y)
        xg = x.clone().requires_grad_()

        def forward_backward():
            f(xg).backward(dy)
            xg.grad = None

        t_fwd = best_window_median(forward, min_seconds)
        t_all = best_window_median(forward_backward, min_seconds)
        print(f"{name} {t_fwd:.9f} {t_all:.9f} {float(y.double().sum()):.6e}", flush=True)


if __name__ == "__main__":
    main()
