"""Update heads: turn the per-parameter network's outputs into an update."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from openrl.optim.layout import ParamLayout
from openrl.optim.noise import standard_normal


class UpdateHead(eqx.Module):
    """Maps network outputs `[num_outputs, n]` to an update `u` (parameters move by `-u`).

    Subclasses declare `num_outputs` and whether they need the agent's layout.
    """

    num_outputs: eqx.AbstractClassVar[int]
    needs_layout: ClassVar[bool] = False

    def deterministic(self, outputs: Float[Array, "k n"]) -> Float[Array, " n"]:
        """The update without any noise."""
        raise NotImplementedError

    def noise_std(self, outputs: Float[Array, "k n"], *, layout: ParamLayout) -> Float[Array, " n"]:
        """The standard deviation of the update's noise per parameter (zero for a deterministic head)."""
        return jnp.zeros(outputs.shape[1:], outputs.dtype)

    def __call__(
        self, outputs: Float[Array, "k n"], *, key: PRNGKeyArray, layout: ParamLayout
    ) -> Float[Array, " n"]:
        return self.deterministic(outputs)


class MagnitudeHead(UpdateHead):
    """Metz et al.'s u = α1·m·exp(α2·e) from outputs (m, e)."""

    alpha1: float = eqx.field(static=True, default=1e-3)
    alpha2: float = eqx.field(static=True, default=1e-3)
    num_outputs: ClassVar[int] = 2

    def deterministic(self, outputs):
        return self.alpha1 * outputs[0] * jnp.exp(self.alpha2 * outputs[1])


class StochasticHead(UpdateHead):
    """OPEN's head: α1·m·exp(α2·e), plus learned noise α3·δ·ε on actor parameters only."""

    alpha1: float = eqx.field(static=True, default=1e-3)
    alpha2: float = eqx.field(static=True, default=1e-3)
    alpha3: float = eqx.field(static=True, default=1e-3)
    num_outputs: ClassVar[int] = 3
    needs_layout: ClassVar[bool] = True

    def deterministic(self, outputs):
        return self.alpha1 * outputs[0] * jnp.exp(self.alpha2 * outputs[1])

    def noise(self, outputs: Float[Array, "3 n"], *, key: PRNGKeyArray, layout: ParamLayout) -> Float[Array, " n"]:
        """The stochastic part α3·δ·ε, zero on critic parameters."""
        eps = standard_normal(key, outputs.shape[1:], outputs.dtype)
        return self.alpha3 * outputs[2] * eps * jnp.asarray(layout.actor_mask())

    def noise_std(self, outputs, *, layout):
        """α3·|δ| on actor parameters, 0 on the critic's."""
        return self.alpha3 * jnp.abs(outputs[2]) * jnp.asarray(layout.actor_mask())

    def __call__(self, outputs, *, key, layout):
        return self.deterministic(outputs) + self.noise(outputs, key=key, layout=layout)
