"""`ClippedHead`: Metz et al.'s update head with a bounded step."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from openrl.optim.heads import AbstractDeterministicHead


class ClippedHead(AbstractDeterministicHead):
    """clip(α1·m·exp(α2·e), -max_step, max_step) from outputs (m, e).

    The bound keeps one bad step from wrecking the policy, which early in
    meta-training, while the exponent is still untrained, is common. It holds
    before the optimizer's zero-mean stabilisation; pass `zero_mean=False` to
    `openrl.Optimizer` for a hard bound.
    """

    alpha1: float = eqx.field(static=True, default=1e-3)
    alpha2: float = eqx.field(static=True, default=1e-3)
    max_step: float = eqx.field(static=True, default=1e-2)
    num_outputs: ClassVar[int] = 2

    def __check_init__(self):
        if not self.max_step > 0:
            raise ValueError(f"ClippedHead: max_step must be positive, got {self.max_step}")

    def deterministic(self, outputs, inputs):
        step = self.alpha1 * outputs[0] * jnp.exp(self.alpha2 * outputs[1])
        return jnp.clip(step, -self.max_step, self.max_step)
