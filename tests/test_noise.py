"""`standard_normal` is `jax.random.normal`, bit for bit, on its fast path and off it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from openrl.optim.noise import standard_normal


@pytest.mark.parametrize("size", [1, 7, 1000, 59_908])
def test_standard_normal_is_jax_random_normal(size):
    for seed in range(3):
        key = jax.random.fold_in(jax.random.key(seed), size)
        want = jax.jit(lambda k: jax.random.normal(k, (size,)))(key)
        got = jax.jit(lambda k: standard_normal(k, (size,)))(key)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    keys = jax.random.split(jax.random.key(9), 4)
    np.testing.assert_array_equal(jax.vmap(lambda k: standard_normal(k, (size,)))(keys),
                                  jax.vmap(lambda k: jax.random.normal(k, (size,)))(keys))


def test_other_shapes_dtypes_and_keys_fall_back_to_jax_random_normal():
    key = jax.random.key(0)
    np.testing.assert_array_equal(standard_normal(key, (3, 4)), jax.random.normal(key, (3, 4)))
    np.testing.assert_array_equal(standard_normal(key, (5,), jnp.float16), jax.random.normal(key, (5,), jnp.float16))
    rbg = jax.random.key(0, impl="rbg")
    np.testing.assert_array_equal(standard_normal(rbg, (5,)), jax.random.normal(rbg, (5,)))
    raw = jax.random.PRNGKey(0)
    np.testing.assert_array_equal(standard_normal(raw, (5,)), jax.random.normal(raw, (5,)))
