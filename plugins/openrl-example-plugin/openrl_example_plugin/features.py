"""`ParamNorm`: the size of the tensor a parameter belongs to."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from openrl.optim.features import Feature


class ParamNorm(Feature):
    """log(RMS + eps) of the parameter's tensor, the same for every element of it.

    Growing parameter norms go with loss of plasticity in RL, so this tells the
    optimizer how far each tensor has drifted. Being constant within a tensor, it
    skips the per-tensor normalisation (which would turn it into a constant 1).
    """

    eps: float = eqx.field(static=True, default=1e-8)
    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = False

    def __check_init__(self):
        if not self.eps > 0:
            raise ValueError(f"ParamNorm: eps must be positive, got {self.eps}")

    def __call__(self, inputs, state):
        mean_square = inputs.layout.segment_means(jnp.square(inputs.param)[None, :])
        return jnp.log(jnp.sqrt(mean_square) + self.eps), state
