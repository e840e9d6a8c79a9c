"""Optim4RL (Lan et al., 2023, "Learning to Optimize for Reinforcement Learning") as openrl parts.

Followed: the paper's gradient processing and Adam-like update structure, and its public code
(`sail-sg/optim4rl`, `components/optim.py`, class `Optim4RL`, 2023 version): the gradient becomes
x = (sign g, log(|g| + 1e-18)); one GRU + ReLU-MLP network reads x and gives the first pseudo-moment
m = sign(g) · 1[o₁ + 1 ≥ 0] · exp(o₂) (the `+1` bias makes the gate open at initialisation; its forward
value is the step function, the straight-through `tanh` only shapes meta-gradients, which ES does not use);
a second one reads log g² = 2·log|g| and gives v = exp(o₃); the update is lr · m / sqrt(v + 1e-18).
Sizes from OPEN's Appendix B.4 (GRU 8, two 16-wide layers, per network; doubled for multi-task), the
learning rate 0.1 x the tuned Adam rate from its Table 4. With all-zero meta-parameters (where the ES
starts) every update is exactly lr · sign(g), Adam's first step: "initialised close to sign(Adam)".
As in Lan et al., the update is not zero-meaned.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from openrl.optim.features import Feature
from openrl.optim.heads import AbstractDeterministicHead
from openrl.optim.network import SMALL, AbstractNetwork, NetworkSize, gru_mlp_layers, gru_step

OPTIM4RL_EPS = 1e-18
"""Optim4RL's ε in log(|g| + ε) and in sqrt(v + ε)."""


class SignLogGradient(Feature):
    """Optim4RL's gradient processing: sign(g) and log(|g| + ε), not normalised."""

    eps: float = eqx.field(static=True, default=OPTIM4RL_EPS)
    num_channels: ClassVar[int] = 2
    normalise: ClassVar[bool] = False

    def __call__(self, inputs, state):
        grad = inputs.grad[None, :]
        return jnp.concatenate([jnp.sign(grad), jnp.log(jnp.abs(grad) + self.eps)], axis=0), state


class MomentNetwork(eqx.Module):
    """GRU -> [Linear -> ReLU] x depth -> Linear, channels-first (parameters on the last axis)."""

    gru: eqx.nn.GRUCell
    hidden_layers: tuple[eqx.nn.Linear, ...]
    output: eqx.nn.Linear

    def __init__(self, in_size: int, out_size: int, size: NetworkSize = SMALL, *, key: PRNGKeyArray | None = None):
        """Equinox's default initialisation with `key`; all zeros without."""
        self.gru, self.hidden_layers, self.output = gru_mlp_layers(in_size, out_size, size, key=key)

    def __call__(
        self, x: Float[Array, "c n"], hidden: Float[Array, "h n"]
    ) -> tuple[Float[Array, "k n"], Float[Array, "h n"]]:
        hidden = gru_step(self.gru, x, hidden)
        y = hidden
        for layer in self.hidden_layers:
            y = jax.nn.relu(layer.weight @ y + layer.bias[:, None])
        return self.output.weight @ y + self.output.bias[:, None], hidden


class Optim4RLNetwork(AbstractNetwork):
    """Optim4RL's two networks over `SignLogGradient`'s channels (sign g, log|g|).

    Outputs `[3, n]`: the m-network's gate and log-magnitude, and the v-network's log v (the head
    reads sign g from the gradient itself). The GRU state stacks both networks' states.
    """

    first_moment: MomentNetwork
    second_moment: MomentNetwork

    def __init__(self, size: NetworkSize = SMALL, *, key: PRNGKeyArray | None = None):
        keys = (None, None) if key is None else tuple(jax.random.split(key))
        self.first_moment = MomentNetwork(2, 2, size, key=keys[0])
        self.second_moment = MomentNetwork(1, 1, size, key=keys[1])

    @property
    def in_size(self) -> int:
        return 2

    @property
    def out_size(self) -> int:
        return 3

    @property
    def hidden_size(self) -> int:
        return self.first_moment.gru.hidden_size + self.second_moment.gru.hidden_size

    def __call__(self, x, hidden):
        h = self.first_moment.gru.hidden_size
        m, hidden_m = self.first_moment(x, hidden[:h])
        v, hidden_v = self.second_moment(2.0 * x[1:2], hidden[h:])
        return jnp.concatenate([m, v], axis=0), jnp.concatenate([hidden_m, hidden_v], axis=0)


class Optim4RLHead(AbstractDeterministicHead):
    """lr · m / sqrt(v + ε) from outputs (gate, log|m|, log v), with m = sign g · 1[gate + bias ≥ 0] · |m|.

    sign g is the gradient's own (the head reads its inputs), so it never passes through the network.
    """

    learning_rate: float = eqx.field(static=True)
    bias: float = eqx.field(static=True, default=1.0)
    eps: float = eqx.field(static=True, default=OPTIM4RL_EPS)
    num_outputs: ClassVar[int] = 3

    def __check_init__(self):
        if not isinstance(self.learning_rate, float) or not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive float, got {self.learning_rate!r}")

    def deterministic(self, outputs, inputs):
        gate, log_m, log_v = outputs
        m = jnp.where(gate + self.bias >= 0.0, jnp.sign(inputs.grad) * jnp.exp(log_m), 0.0)
        return self.learning_rate * m / jnp.sqrt(jnp.exp(log_v) + self.eps)
