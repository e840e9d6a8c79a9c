"""`ParamNorm`: the size of the tensor a parameter belongs to; `PolicyEntropy`: a signal only a custom loop gives."""

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


class PolicyEntropy(Feature):
    """log(H + eps) of the policy's entropy `H` on the minibatch, the same for every parameter.

    openrl's PPO loop does not compute it: a training loop adds it to the context as
    `Context(..., extras={"entropy": H})`, and declaring `requires = ("entropy",)` makes a
    loop that forgets it a clear error. No change to openrl is needed for either side.
    """

    eps: float = eqx.field(static=True, default=1e-8)
    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ("entropy",)

    def __call__(self, inputs, state):
        entropy = jnp.asarray(inputs.ctx.extras["entropy"], jnp.float32)
        value = jnp.log(jnp.maximum(entropy, 0.0) + self.eps)
        return jnp.broadcast_to(value, (1, inputs.layout.num_params)), state
