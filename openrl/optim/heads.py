"""Update heads: turn the per-parameter network's outputs (and, where they need them, the feature
inputs: gradient, parameters, context, layout) into an update."""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from openrl.optim.features import FeatureInputs
from openrl.optim.noise import standard_normal


class UpdateHead(eqx.Module):
    """Maps network outputs `[num_outputs, n]` to an update `u` (parameters move by `-u`): abstract.

    The update is `deterministic(outputs, inputs) + noise(outputs, inputs, key=key)`. Subclasses
    declare `num_outputs` and whether they need the agent's layout (`needs_layout`); `inputs` are
    the same `FeatureInputs` the features read, so a head can use the raw gradient or a context
    signal without routing it through the network.
    """

    num_outputs: eqx.AbstractClassVar[int]
    needs_layout: ClassVar[bool] = False

    @abc.abstractmethod
    def deterministic(self, outputs: Float[Array, "k n"], inputs: FeatureInputs) -> Float[Array, " n"]:
        """The update without any noise."""

    @abc.abstractmethod
    def noise(self, outputs: Float[Array, "k n"], inputs: FeatureInputs, *, key: PRNGKeyArray) -> Float[Array, " n"]:
        """The noise added to the update."""

    @abc.abstractmethod
    def noise_std(self, outputs: Float[Array, "k n"], inputs: FeatureInputs) -> Float[Array, " n"]:
        """The standard deviation of the update's noise per parameter."""

    def __call__(self, outputs: Float[Array, "k n"], inputs: FeatureInputs, *, key: PRNGKeyArray) -> Float[Array, " n"]:
        return self.deterministic(outputs, inputs) + self.noise(outputs, inputs, key=key)


class AbstractDeterministicHead(UpdateHead):
    """An `UpdateHead` without noise: subclasses give `num_outputs` and `deterministic`."""

    def noise(self, outputs, inputs, *, key):
        return jnp.zeros(outputs.shape[1:], outputs.dtype)

    def noise_std(self, outputs, inputs):
        return jnp.zeros(outputs.shape[1:], outputs.dtype)


class MagnitudeHead(AbstractDeterministicHead):
    """Metz et al.'s u = α1·m·exp(α2·e) from outputs (m, e)."""

    alpha1: float = eqx.field(static=True, default=1e-3)
    alpha2: float = eqx.field(static=True, default=1e-3)
    num_outputs: ClassVar[int] = 2

    def deterministic(self, outputs, inputs):
        return self.alpha1 * outputs[0] * jnp.exp(self.alpha2 * outputs[1])


class StochasticHead(UpdateHead):
    """OPEN's head: `MagnitudeHead`'s α1·m·exp(α2·e) from outputs (m, e), plus learned noise α3·δ·ε
    from output δ on actor parameters only."""

    magnitude: MagnitudeHead
    alpha3: float = eqx.field(static=True)
    num_outputs: ClassVar[int] = 3
    needs_layout: ClassVar[bool] = True

    def __init__(self, alpha1: float = 1e-3, alpha2: float = 1e-3, alpha3: float = 1e-3):
        self.magnitude = MagnitudeHead(alpha1, alpha2)
        self.alpha3 = alpha3

    @property
    def alpha1(self) -> float:
        return self.magnitude.alpha1

    @property
    def alpha2(self) -> float:
        return self.magnitude.alpha2

    def deterministic(self, outputs, inputs):
        return self.magnitude.deterministic(outputs[:2], inputs)

    def noise(self, outputs, inputs, *, key):
        """α3·δ·ε, zero on critic parameters."""
        eps = standard_normal(key, outputs.shape[1:], outputs.dtype)
        return self.alpha3 * outputs[2] * eps * jnp.asarray(inputs.layout.actor_mask())

    def noise_std(self, outputs, inputs):
        """α3·|δ| on actor parameters, 0 on the critic's."""
        return self.alpha3 * jnp.abs(outputs[2]) * jnp.asarray(inputs.layout.actor_mask())
