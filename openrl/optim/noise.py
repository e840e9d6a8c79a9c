"""Standard-normal noise for every parameter, bit-identical to `jax.random.normal` and faster on CPU."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotate_left(x: Array, r: int) -> Array:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _threefry2x32(k1: Array, k2: Array, x1: Array, x2: Array) -> tuple[Array, Array]:
    """Threefry-2x32 (20 rounds), written out: one elementwise kernel instead of XLA:CPU's rolled loop."""
    keys = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x1, x2 = x1 + keys[0], x2 + keys[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x1 = x1 + x2
            x2 = _rotate_left(x2, r) ^ x1
        x1 = x1 + keys[(block + 1) % 3]
        x2 = x2 + keys[(block + 2) % 3] + np.uint32(block + 1)
    return x1, x2


def _is_fast_path(key: PRNGKeyArray, shape: tuple[int, ...], dtype) -> bool:
    return (
        jax.default_backend() == "cpu"
        and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        and str(jax.random.key_impl(key)) == "threefry2x32"
        and jax.config.jax_threefry_partitionable
        and len(shape) == 1
        and 0 < shape[0] < 2**32
        and jnp.dtype(dtype) == jnp.float32
    )


def standard_normal(key: PRNGKeyArray, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
    """Exactly `jax.random.normal(key, shape, dtype)`.

    On CPU, for a typed threefry key and a float32 vector, the same bits are computed with the
    threefry rounds unrolled: XLA:CPU lowers `jax.random`'s threefry as a loop of five steps, each a
    separate pass over all parameters, which made the noise of one OPEN update cost as much as its
    GRU. Elsewhere (other backends, keys or shapes) this is `jax.random.normal` itself.
    """
    shape = tuple(shape)
    if not _is_fast_path(key, shape, dtype):
        return jax.random.normal(key, shape, dtype)
    k1, k2 = jax.random.key_data(key)
    counts = jax.lax.iota(jnp.uint32, shape[0])
    bits1, bits2 = _threefry2x32(k1, k2, jnp.zeros_like(counts), counts)
    # jax.random.uniform on [nextafter(-1, 0), 1), then sqrt(2) * erfinv, as jax.random.normal.
    float_bits = ((bits1 ^ bits2) >> np.uint32(32 - 23)) | np.array(1.0, np.float32).view(np.uint32)
    floats = jax.lax.bitcast_convert_type(float_bits, jnp.float32) - np.float32(1.0)
    low = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
    uniform = jnp.maximum(low, floats * (np.float32(1.0) - low) + low)
    return np.float32(np.sqrt(2)) * jax.lax.erf_inv(uniform)
