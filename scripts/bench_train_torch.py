#!/usr/bin/env python3
"""Reference for benchmarks/train: PyTorch (any version: benchmarks/train runs this with the newest
PyTorch, from .bench-venv, and with Debian's 1.13) training the small
Fashion-MNIST CNN of REFERENCE.md on the same synthetic batches that convtape trains on.

    Conv(1,32,3,p1)-ReLU-MaxPool2-Conv(32,64,3,p1)-ReLU-MaxPool2-Flatten-Linear(3136,128)-ReLU-
    Linear(128,10), cross-entropy, SGD lr 0.05 momentum 0.9

usage: bench_train_torch.py THREADS BATCH STEPS WINDOWS [DEVICE]
DEVICE is cpu (default) or cuda; on cuda the model and batches live on the GPU, every window ends
with torch.cuda.synchronize(), TF32 is off, cudnn.benchmark is on, and the peak figure is
torch.cuda.max_memory_allocated() in KiB (baseline 0).
Prints one line: "images_per_second peak_rss_kib baseline_rss_kib", where the rate is the best of
WINDOWS windows of STEPS training steps each (after two warm-up steps), peak_rss_kib the process's
peak resident set and baseline_rss_kib the resident set just before the first step (after torch
and the data are loaded), so that the training's own memory is their difference.
"""

import resource
import sys
import time

import torch
import torch.nn as nn


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    threads, batch, steps, windows = (int(a) for a in sys.argv[1:5])
    device = sys.argv[5] if len(sys.argv) > 5 else "cpu"
    torch.set_num_threads(threads)
    sync = (lambda: None)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        sync = torch.cuda.synchronize
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    batches = [(torch.rand(batch, 1, 28, 28, generator=g).to(device),
                torch.randint(0, 10, (batch,), generator=g).to(device)) for _ in range(8)]

    def train_step(i):
        x, y = batches[i % len(batches)]
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    baseline = rss_kib()
    for i in range(2):
        train_step(i)
    sync()
    best = 0.0
    for _ in range(windows):
        start = time.perf_counter()
        for i in range(steps):
            train_step(i)
        sync()
        best = max(best, steps * batch / (time.perf_counter() - start))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device == "cuda":
        peak, baseline = torch.cuda.max_memory_allocated() // 1024, 0
    print(f"{best:.3f} {peak} {baseline}", flush=True)


if __name__ == "__main__":
    main()
