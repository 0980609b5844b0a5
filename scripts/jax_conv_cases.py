#!/usr/bin/env python3
"""JAX's answers for the conv_general cases of tests/ops/conv_exact_test.cpp.

Prints the output of jax.lax.conv_general_dilated (float64) for the negative-padding cases and
checks that JAX refuses string padding together with lhs dilation; the test states the same
values. Run with an interpreter that has jax (for instance the benchmarks' environment after
`.bench-venv/bin/pip install jax jaxlib`):

    .bench-venv/bin/python scripts/jax_conv_cases.py
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

jax.config.update("jax_enable_x64", True)
print("jax", jax.__version__)

x = jnp.arange(1.0, 7.0, dtype=jnp.float64).reshape(1, 1, 6)
w = jnp.array([[[1.0, 2.0, 3.0]]], dtype=jnp.float64)
for pad, lhs_dilation in [((-1, -2), 1), ((-1, -1), 1), ((-1, 2), 2), ((-3, -4), 2), ((2, -5), 3)]:
    y = lax.conv_general_dilated(x, w, (1,), [pad], lhs_dilation=(lhs_dilation,))
    print("pad", pad, "lhs_dilation", lhs_dilation, "->", list(y.shape),
          np.asarray(y).ravel().tolist())

x2 = jnp.arange(1.0, 21.0, dtype=jnp.float64).reshape(1, 1, 4, 5)
w2 = jnp.array([[[[1.0, 0.0], [2.0, -1.0]]]], dtype=jnp.float64)
y = lax.conv_general_dilated(x2, w2, (2, 1), [(-1, 1), (1, -2)], lhs_dilation=(2, 1),
                             rhs_dilation=(1, 2))
print("2-d ->", list(y.shape), np.asarray(y).ravel().tolist())

for padding in ["SAME", "VALID"]:
    try:
        lax.conv_general_dilated(x, jnp.ones((1, 1, 1)), (2,), padding, lhs_dilation=(2,))
        print(padding, "with lhs dilation: accepted")
    except ValueError as e:
        print(padding, "with lhs dilation: refused:", e)
