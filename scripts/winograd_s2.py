#!/usr/bin/env python3
"""Derives and checks the transforms of cpu/conv_winograd_s2.cpp.

Along one axis, the stride-2 3x3 kernels run the even input phase as Winograd F(M, 2): a 2-tap
stride-1 correlation y_o = h_0 e_o + h_1 e_{o+1}, o < M, from M + 1 inputs, computed as
    y = A^T [(G h) . (B^T e)]
with M + 1 interpolation points (0, 1, -1, 2, -2 and infinity for M = 5; 1/2 and -1/2 besides
for M = 7). Toom-Cook construction: A^T[i][j] = p_j^i and G[j][k] = p_j^k / prod_{q != p_j}
(p_j - q) for the finite points, the point at infinity contributing e_M to both; B^T is then the
unique matrix that makes the identity hold, solved here in exact rational arithmetic. The script
prints A^T, G and B^T for each M (the tables of Matrices<M> in cpu/conv_winograd_s2.cpp), checks
the identity exactly, and prints the largest magnitudes (the transforms' error growth).

Needs sympy (a dependency of PyTorch, so the benchmarks' environment has it):
    .bench-venv/bin/python scripts/winograd_s2.py
"""
import itertools
import sys

import sympy as sp

HALF = sp.Rational(1, 2)
# (M, R): the finite interpolation points of F(M, R) (infinity is the last point of each).
SCHEMES = {
    (5, 2): [0, 1, -1, 2, -2],
    (7, 2): [0, 1, -1, 2, -2, HALF, -HALF],
    (6, 3): [0, 1, -1, 2, -2, HALF, -HALF],
    (4, 5): [0, 1, -1, 2, -2, HALF, -HALF],
    (2, 7): [0, 1, -1, 2, -2, HALF, -HALF],
}


def derive(m, r, finite):
    a = m + r - 1
    pts = [sp.nsimplify(p) for p in finite]
    assert len(pts) == a - 1
    at = sp.zeros(m, a)
    g = sp.zeros(a, r)
    for j, p in enumerate(pts):
        n = sp.prod([p - q for q in pts if q != p])
        for i in range(m):
            at[i, j] = p**i
        for k in range(r):
            g[j, k] = p**k / n
    at[m - 1, a - 1] = 1
    g[a - 1, r - 1] = 1
    bt = sp.Matrix(a, a, lambda i, j: sp.Symbol(f"b{i}_{j}"))
    eqs = []
    for o, t, s in itertools.product(range(m), range(r), range(a)):
        eqs.append(sum(at[o, j] * g[j, t] * bt[j, s] for j in range(a)) - (1 if s == o + t else 0))
    solution = sp.solve(eqs, list(bt), dict=True)
    if len(solution) != 1:
        sys.exit(f"F({m}, {r}): expected one B^T, got {len(solution)} solutions")
    bt = bt.subs(solution[0])
    if bt.free_symbols:
        sys.exit(f"F({m}, {r}): B^T is not determined: {bt.free_symbols}")
    return at, g, bt


def check(m, r, at, g, bt):
    e = sp.symbols(f"e0:{m + r - 1}")
    h = sp.symbols(f"h0:{r}")
    y = at * (sp.Matrix(g * sp.Matrix(h)).multiply_elementwise(bt * sp.Matrix(e)))
    for o in range(m):
        if sp.expand(y[o] - sum(h[t] * e[o + t] for t in range(r))) != 0:
            sys.exit(f"F({m}, {r}): output {o} is wrong")


def main():
    for (m, r), finite in SCHEMES.items():
        at, g, bt = derive(m, r, finite)
        check(m, r, at, g, bt)
        print(f"F({m}, {r}), points {finite} and infinity: identity holds exactly")
        for name, mat in (("A^T", at), ("G", g), ("B^T", bt)):
            print(f"  {name} =")
            for i in range(mat.rows):
                print("    [" + ", ".join(str(mat[i, j]) for j in range(mat.cols)) + "]")
        big = lambda mat: max(abs(v) for v in mat)
        print(f"  largest |A^T| {big(at)}, |G| {big(g)}, |B^T| {big(bt)}")


if __name__ == "__main__":
    main()
