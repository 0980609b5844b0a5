#!/usr/bin/env python3
"""PyTorch models saved with safetensors, for tests/io/safetensors_test.cpp.

Writes, into tests/golden/:

  safetensors_cnn.safetensors       state_dict() of Sequential(Conv2d(3, 4, 3, padding=1),
                                    BatchNorm2d(4), ReLU(), Conv2d(4, 2, 3, stride=2), Flatten(),
                                    Linear(18, 5)), float32, with metadata
  safetensors_mlp.safetensors       state_dict() of Sequential(Linear(6, 8), BatchNorm1d(8), Tanh(),
                                    Linear(8, 3, bias=False)), float32
  safetensors_cnn_f16.safetensors   the CNN converted with .half() (num_batches_tracked stays int64)
  safetensors_cnn_bf16.safetensors  the CNN converted with .bfloat16()
  safetensors_halfs.safetensors     float16 and bfloat16 bit patterns (every exponent and sign with
                                    a few mantissas: zeros, subnormals, normals, infinities, NaNs)
                                    and PyTorch's float32 conversions of them
  safetensors.txt                   per model a fixed input "x" and PyTorch's eval-mode output "out"
                                    (float32; the half models are run with their rounded weights in
                                    float32), in the golden text format of scripts/golden_io.py

The BatchNorm layers have random affine parameters and running statistics from three
training-mode forward passes (num_batches_tracked = 3) before they are put in eval mode.

Run with the benchmark environment's PyTorch and safetensors from PyPI (scripts/bench-env):

    .bench-venv/bin/python scripts/make_safetensors_golden.py

With --check MODEL FILE it writes nothing: it loads FILE (a safetensors file written elsewhere, by
convtape's save_safetensors for instance) with safetensors.torch.load_file into the PyTorch model
MODEL (cnn or mlp) with load_state_dict(strict=True), checks every tensor against the committed
golden file's (same dtype, shape and values) and the model's output on the golden input against the
committed output, and prints what it checked.
"""

import copy
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

SCRIPT = os.path.basename(__file__)
GOLDEN = os.path.normpath(golden_io.GOLDEN_DIR)
METADATA = {"format": "pt", "producer": "scripts/" + SCRIPT}


def train_batchnorm(model, input_shape):
    """Random affine BatchNorm parameters, then three training-mode passes, then eval."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        model.train()
        for _ in range(3):
            model(torch.randn(input_shape) * 2 + 0.5)
    model.eval()
    return model


def make_cnn():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 2, 3, stride=2),
        torch.nn.Flatten(),
        torch.nn.Linear(18, 5),
    )
    return train_batchnorm(model, (4, 3, 7, 7))


def make_mlp():
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 8),
        torch.nn.BatchNorm1d(8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 3, bias=False),
    )
    return train_batchnorm(model, (5, 6))


INPUT_SHAPES = {"cnn": (2, 3, 7, 7), "mlp": (3, 6)}
BUILDERS = {"cnn": make_cnn, "mlp": make_mlp}


def half_patterns():
    """float16 / bfloat16 bit patterns as int16 tensors: both signs, every exponent, a few
    mantissas (all zero, lowest bit, top bit, a mix, all ones)."""
    f16 = [(s << 15) | (e << 10) | m for s in (0, 1) for e in range(32)
           for m in (0x000, 0x001, 0x002, 0x155, 0x200, 0x2aa, 0x3fe, 0x3ff)]
    bf16 = [(s << 15) | (e << 7) | m for s in (0, 1) for e in range(256)
            for m in (0x00, 0x01, 0x40, 0x55, 0x7f)]
    as_int16 = lambda v: torch.tensor([x - 65536 if x >= 32768 else x for x in v],
                                      dtype=torch.int16)
    return as_int16(f16).view(torch.float16), as_int16(bf16).view(torch.bfloat16)


def run(model, x):
    with torch.no_grad():
        out = model(x)
    assert out.dtype == torch.float32
    return out


def generate():
    torch.manual_seed(20240617)
    lines = golden_io.lines
    for name in ("cnn", "mlp"):
        model = BUILDERS[name]()
        x = torch.randn(INPUT_SHAPES[name])
        path = os.path.join(GOLDEN, "safetensors_%s.safetensors" % name)
        save_file(model.state_dict(), path, metadata=METADATA if name == "cnn" else None)
        lines.append("# " + name)
        golden_io.emit(name, "x", x, golden_io.FMT32)
        golden_io.emit(name, "out", run(model, x), golden_io.FMT32)
        if name != "cnn":
            continue
        for half in ("f16", "bf16"):
            dtype = torch.float16 if half == "f16" else torch.bfloat16
            rounded = copy.deepcopy(model).to(dtype)
            assert rounded[1].num_batches_tracked.dtype == torch.int64
            save_file(rounded.state_dict(),
                      os.path.join(GOLDEN, "safetensors_cnn_%s.safetensors" % half))
            case = "cnn_" + half
            lines.append("# " + case)
            golden_io.emit(case, "x", x, golden_io.FMT32)
            golden_io.emit(case, "out", run(rounded.float(), x), golden_io.FMT32)

    f16, bf16 = half_patterns()
    save_file({"f16": f16, "f16_as_f32": f16.float(), "bf16": bf16, "bf16_as_f32": bf16.float()},
              os.path.join(GOLDEN, "safetensors_halfs.safetensors"))

    out_file = os.path.join(GOLDEN, "safetensors.txt")
    with open(out_file, "w") as f:
        f.write("# Generated by scripts/%s (PyTorch %s, float32); do not edit by hand.\n"
                % (SCRIPT, torch.__version__))
        f.write("# Regenerate: .bench-venv/bin/python scripts/%s (scripts/bench-env makes the "
                "environment)\n" % SCRIPT)
        f.write("# Format: <case> <name> <rank> <dims...> <values...>\n")
        for line in lines:
            f.write(line + "\n")
    print("wrote %d lines to %s and the safetensors files beside it" % (len(lines), out_file),
          file=sys.stderr)


def read_golden_case(case):
    values = {}
    with open(os.path.join(GOLDEN, "safetensors.txt")) as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0].startswith("#") or parts[0] != case:
                continue
            rank = int(parts[2])
            dims = [int(d) for d in parts[3:3 + rank]]
            data = [float(v) for v in parts[3 + rank:]]
            values[parts[1]] = torch.tensor(data, dtype=torch.float64).reshape(dims)
    return values


def check(name, path):
    golden = load_file(os.path.join(GOLDEN, "safetensors_%s.safetensors" % name))
    loaded = load_file(path)
    assert sorted(loaded) == sorted(golden), (sorted(loaded), sorted(golden))
    for key, want in golden.items():
        got = loaded[key]
        assert got.dtype == want.dtype and got.shape == want.shape, (key, got.dtype, got.shape)
        assert torch.equal(got, want), key
    model = BUILDERS[name]()
    model.load_state_dict(loaded, strict=True)
    model.eval()
    case = read_golden_case(name)
    out = run(model, case["x"].float())
    err = (out.double() - case["out"]).abs().max().item()
    assert err <= 1e-5, err
    print("%s: %d tensors (%s) equal to the golden file's, loaded into PyTorch's %s with "
          "strict=True; output max |error| %.3g against the committed output"
          % (path, len(loaded), ", ".join("%s %s %s" % (k, str(v.dtype).replace("torch.", ""),
                                                       list(v.shape)) for k, v in loaded.items()),
             name, err))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 1:
        generate()
    else:
        sys.exit("usage: %s [--check cnn|mlp FILE]" % SCRIPT)
