"""The analysis quantities of paper Appendix F, measured on every update of a PPO run.

`train` records them per PPO iteration (the mean over the iteration's updates) when
`PPOConfig(record_stats=True)`; they land in `TrainResult.stats` under `STAT_NAMES`:

- `update_magnitude`: E_i |û_i / p_i| over all parameters, û the update before any noise (F.3).
- `noise_magnitude`: E_i |σ_i / p_i| over actor parameters, σ = α3·|δ| the std of the learned noise
  (F.4; the paper plots |δ/p|, which is this divided by the constant α3).
- `cosine_gradient`, `cosine_momentum_<β>`: cosine similarity of the applied update `u`
  (parameters move by `-u`) with the clipped gradient and with its momentum
  m ← β·m + (1 - β)·g at each of OPEN's timescales β (F.2).

Parameters that are exactly zero (biases at initialisation) are left out of the magnitudes.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree

from openrl.optim.features import MOMENTUM_DECAYS

ANALYSIS_DECAYS = MOMENTUM_DECAYS
"""Momentum timescales the update is compared with: OPEN's own (Appendix F.2)."""

STAT_NAMES = (
    "update_magnitude", "noise_magnitude", "cosine_gradient",
    *(f"cosine_momentum_{b}" for b in ANALYSIS_DECAYS),
)


def init_momentum(num_params: int) -> Float[Array, "k n"]:
    """Zero momentum at every analysis timescale."""
    return jnp.zeros((len(ANALYSIS_DECAYS), num_params), jnp.float32)


def cosine(a: Float[Array, " n"], b: Float[Array, " n"]) -> Float[Array, ""]:
    """Cosine similarity of two vectors; 0 when either is zero."""
    norms = jnp.linalg.norm(a) * jnp.linalg.norm(b)
    return jnp.where(norms > 0, jnp.dot(a, b) / jnp.where(norms > 0, norms, 1.0), 0.0)


def relative_magnitude(x: Float[Array, " n"], param: Float[Array, " n"], mask: Float[Array, " n"]) -> Float[Array, ""]:
    """E_i |x_i / p_i| over the elements where `mask` is 1 and `p_i` is not zero (0 if there are none)."""
    keep = mask * (param != 0)
    ratio = jnp.abs(x) / jnp.where(param != 0, jnp.abs(param), 1.0)
    return jnp.sum(keep * ratio) / jnp.maximum(jnp.sum(keep), 1.0)


def analyse_update(
    momentum: Float[Array, "k n"],
    grads: PyTree,
    params: PyTree,
    updates: PyTree,
    stats: dict[str, Float[Array, " n"]],
    actor_mask: np.ndarray,
) -> tuple[Float[Array, "k n"], dict[str, Float[Array, ""]]]:
    """The new momentum and the `STAT_NAMES` quantities of one update.

    `params` are those before the update, `updates` the optax-convention updates applied to them,
    `stats` the optimizer's `update_with_stats` output and `actor_mask` 1 on actor parameters.
    """
    grad, _ = ravel_pytree(grads)
    param, _ = ravel_pytree(params)
    applied, _ = ravel_pytree(updates)
    decays = jnp.asarray(ANALYSIS_DECAYS, jnp.float32)[:, None]
    momentum = decays * momentum + (1.0 - decays) * grad[None, :]
    u = -applied
    values = {
        "update_magnitude": relative_magnitude(stats["deterministic"], param, jnp.ones_like(param)),
        "noise_magnitude": relative_magnitude(stats["noise_std"], param, jnp.asarray(actor_mask, jnp.float32)),
        "cosine_gradient": cosine(u, grad),
    }
    for b, m in zip(ANALYSIS_DECAYS, momentum):
        values[f"cosine_momentum_{b}"] = cosine(u, m)
    return momentum, values
