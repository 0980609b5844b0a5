#!/usr/bin/python3
"""Golden trajectories from PyTorch for tests/optim/optim_golden_test.cpp.

Writes tests/golden/optim.txt in the format of tests/golden/ops.txt, one tensor per line:

    <case> <name> <rank> <dims...> <values...>

Case "problem" holds a tiny float64 linear regression: data x [8, 4], targets y [8, 3] and the
initial parameters w [3, 4], b [3]; the loss is mse_loss(x @ w.T + b, y). Each optimizer case runs
STEPS steps from those parameters (zero_grad, loss, backward, step) and stores:
    hp_<name>        the hyper-parameters (booleans 0 / 1); hp1_<name> overrides for group 1
                     (cases with two groups put w in group 0 and b in group 1)
    w, b             the parameters after each step, [STEPS, *shape]
    loss             the loss before each step, [STEPS]
Scheduler cases store their arguments and "lr" [epochs + 1, groups]: the lrs after construction
and after each step (ReduceLROnPlateau: "metric" [epochs] and the lrs after each step). Clipping
cases store gradients g0, g1, g2, the arguments, "total" and the clipped gradients c0, c1, c2.

Run with Debian's interpreter, which has python3-torch 1.13:

    /usr/bin/python3 scripts/make_optim_golden.py
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_FILE = os.path.join(HERE, "..", "tests", "golden", "optim.txt")
STEPS = 12

torch.manual_seed(20240611)
torch.set_default_dtype(torch.float64)

lines = []


def emit(case, name, t):
    t = torch.as_tensor(t, dtype=torch.float64).detach().contiguous()
    dims = list(t.shape)
    vals = t.flatten().tolist()
    fields = [case, name, str(len(dims))] + [str(d) for d in dims] + ["%.17g" % v for v in vals]
    lines.append(" ".join(fields))


X = torch.randn(8, 4)
Y = torch.randn(8, 3)
W0 = torch.randn(3, 4) * 0.5
B0 = torch.randn(3) * 0.5
lines.append("# problem")
for name, t in (("x", X), ("y", Y), ("w", W0), ("b", B0)):
    emit("problem", name, t)


def run(case, make, hp, hp1=None):
    w = W0.clone().requires_grad_(True)
    b = B0.clone().requires_grad_(True)
    if hp1 is None:
        opt = make([w, b], **hp)
    else:
        opt = make([{"params": [w]}, {"params": [b], **hp1}], **hp)
    ws, bs, losses = [], [], []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.mse_loss(X @ w.t() + b, Y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        ws.append(w.detach().clone())
        bs.append(b.detach().clone())
    lines.append("# " + case)
    for k, v in hp.items():
        for name, value in (zip(("beta1", "beta2"), v) if k == "betas" else ((k, v),)):
            emit(case, "hp_" + name, float(value))
    for k, v in (hp1 or {}).items():
        emit(case, "hp1_" + k, float(v))
    emit(case, "w", torch.stack(ws))
    emit(case, "b", torch.stack(bs))
    emit(case, "loss", torch.tensor(losses))


SGD = torch.optim.SGD
ADAM = torch.optim.Adam
ADAMW = torch.optim.AdamW


def sgd_hp(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    return {"lr": lr, "momentum": momentum, "dampening": dampening, "nesterov": nesterov,
            "weight_decay": weight_decay}


def adam_hp(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
    return {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad}


# ---- SGD
run("sgd_plain", SGD, sgd_hp(0.1))
run("sgd_momentum", SGD, sgd_hp(0.05, momentum=0.9))
run("sgd_dampening", SGD, sgd_hp(0.05, momentum=0.8, dampening=0.3))
run("sgd_nesterov", SGD, sgd_hp(0.05, momentum=0.9, nesterov=True))
run("sgd_weight_decay", SGD, sgd_hp(0.1, weight_decay=0.05))
run("sgd_all", SGD, sgd_hp(0.03, momentum=0.7, nesterov=True, weight_decay=0.02))
run("sgd_groups", SGD, sgd_hp(0.05, momentum=0.9), {"lr": 0.2, "momentum": 0.5})

# ---- Adam / AdamW
run("adam", ADAM, adam_hp(0.05))
run("adam_betas_eps", ADAM, adam_hp(0.02, betas=(0.8, 0.99), eps=1e-3))
run("adam_amsgrad", ADAM, adam_hp(0.05, amsgrad=True))
run("adam_weight_decay", ADAM, adam_hp(0.05, weight_decay=0.1))
run("adam_amsgrad_weight_decay", ADAM, adam_hp(0.03, weight_decay=0.05, amsgrad=True))
run("adam_groups", ADAM, adam_hp(0.05), {"lr": 0.01, "weight_decay": 0.2})
run("adamw", ADAMW, adam_hp(0.05, weight_decay=0.01))
run("adamw_strong_decay", ADAMW, adam_hp(0.05, weight_decay=0.5))
run("adamw_amsgrad", ADAMW, adam_hp(0.05, weight_decay=0.1, amsgrad=True))


# ---- schedulers: SGD over two groups with lrs 0.1 and 0.03
def scheduler_case(case, make, epochs, args):
    p0 = torch.zeros(1, requires_grad=True)
    p1 = torch.zeros(1, requires_grad=True)
    opt = SGD([{"params": [p0]}, {"params": [p1], "lr": 0.03}], lr=0.1)
    sched = make(opt)
    lrs = [[g["lr"] for g in opt.param_groups]]
    for _ in range(epochs):
        opt.step()
        sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    lines.append("# " + case)
    for k, v in args.items():
        emit(case, k, float(v))
    emit(case, "lr", torch.tensor(lrs))


scheduler_case("steplr", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 14,
               {"step_size": 3, "gamma": 0.5})
scheduler_case("steplr_one", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.9),
               10, {"step_size": 1, "gamma": 0.9})
scheduler_case("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
               25, {"t_max": 10, "eta_min": 0.001})
scheduler_case("cosine_zero_min", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4),
               13, {"t_max": 4, "eta_min": 0.0})


def plateau_case(case, metrics, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
    p0 = torch.zeros(1, requires_grad=True)
    p1 = torch.zeros(1, requires_grad=True)
    opt = SGD([{"params": [p0]}, {"params": [p1], "lr": 0.03}], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode=mode, factor=factor, patience=patience, threshold=threshold,
        threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr, eps=eps)
    lrs = []
    for m in metrics:
        opt.step()
        sched.step(m)
        lrs.append([g["lr"] for g in opt.param_groups])
    lines.append("# " + case)
    emit(case, "mode", 0.0 if mode == "min" else 1.0)
    emit(case, "threshold_mode", 0.0 if threshold_mode == "rel" else 1.0)
    for k, v in (("factor", factor), ("patience", patience), ("threshold", threshold),
                 ("cooldown", cooldown), ("eps", eps)):
        emit(case, k, float(v))
    emit(case, "min_lr", torch.tensor(min_lr if isinstance(min_lr, list) else [min_lr]))
    emit(case, "metric", torch.tensor(metrics))
    emit(case, "lr", torch.tensor(lrs))


_decreasing_then_flat = [1.0, 0.9, 0.85, 0.85, 0.8499, 0.86, 0.84, 0.84, 0.84, 0.84, 0.83, 0.9, 0.9,
                         0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
plateau_case("plateau_min_rel", _decreasing_then_flat, factor=0.5, patience=2, threshold=0.01)
plateau_case("plateau_min_abs_cooldown", _decreasing_then_flat, factor=0.5, patience=1,
             threshold=0.02, threshold_mode="abs", cooldown=2, min_lr=[0.02, 0.01])
plateau_case("plateau_max_rel", [0.1, 0.2, 0.25, 0.25, 0.2, 0.26, 0.3, 0.3, 0.3, 0.3, 0.31, 0.31,
                                 0.31, 0.31, 0.31, 0.31], mode="max", factor=0.2, patience=1,
             threshold=0.05, min_lr=0.001)
plateau_case("plateau_max_abs_eps", [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
             mode="max", factor=0.5, patience=0, threshold=0.5, threshold_mode="abs", min_lr=0.01,
             eps=0.004)


# ---- gradient clipping
def clip_case(case, fn, args, scale):
    grads = [torch.randn(3, 4) * scale, torch.randn(5) * scale, torch.randn(2, 2, 2) * scale]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = fn(params)
    lines.append("# " + case)
    for i, g in enumerate(grads):
        emit(case, "g%d" % i, g)
    for k, v in args.items():
        emit(case, k, float(v))
    if total is not None:
        emit(case, "total", float(total))
    for i, p in enumerate(params):
        emit(case, "c%d" % i, p.grad)


clip = torch.nn.utils.clip_grad_norm_
clip_case("clip_norm2", lambda p: clip(p, 1.5), {"max_norm": 1.5, "norm_type": 2.0}, 1.0)
clip_case("clip_norm2_unclipped", lambda p: clip(p, 100.0), {"max_norm": 100.0, "norm_type": 2.0},
          1.0)
# norm_type 1e300 stands for infinity (the file format has no inf); the C++ test maps it back.
clip_case("clip_norm_inf", lambda p: clip(p, 0.5, norm_type=math.inf),
          {"max_norm": 0.5, "norm_type": 1e300}, 1.0)
clip_case("clip_norm1", lambda p: clip(p, 2.0, norm_type=1.0), {"max_norm": 2.0, "norm_type": 1.0},
          1.0)
clip_case("clip_norm3", lambda p: clip(p, 0.7, norm_type=3.0), {"max_norm": 0.7, "norm_type": 3.0},
          1.0)
clip_case("clip_value", lambda p: torch.nn.utils.clip_grad_value_(p, 0.8), {"clip_value": 0.8}, 1.0)

os.makedirs(os.path.dirname(OUT_FILE), exist_ok=True)
with open(OUT_FILE, "w") as f:
    f.write("# Generated by scripts/make_optim_golden.py (PyTorch %s); do not edit by hand.\n" %
            torch.__version__)
    f.write("# Regenerate: /usr/bin/python3 scripts/make_optim_golden.py\n")
    f.write("# Format: <case> <name> <rank> <dims...> <values...>\n")
    for line in lines:
        f.write(line + "\n")
print("wrote %d lines to %s" % (len(lines), os.path.normpath(OUT_FILE)), file=sys.stderr)
