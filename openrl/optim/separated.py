"""One optimizer for the actor and another for the critic: the 'separated' OPEN of paper Section 7.2."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import PyTree

from openrl.optim.layout import ParamLayout
from openrl.optim.optimizer import AbstractOptimizer


class SeparatedState(eqx.Module):
    """The states of the actor's and the critic's optimizers, and the agent's layout."""

    actor: PyTree
    critic: PyTree
    layout: ParamLayout = eqx.field(static=True)


class Separated(AbstractOptimizer):
    """Actor parameters take `actor`'s update, critic parameters `critic`'s.

    Both optimizers see the whole agent (so layer and dormancy features keep their meaning) and
    each parameter takes the update of its network's optimizer. Give them `zero_mean=False`:
    with `zero_mean` (default) the combined update has its mean subtracted, as OPEN's does.
    Its meta-parameters are both optimizers' array fields.
    """

    actor: AbstractOptimizer
    critic: AbstractOptimizer
    zero_mean: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        for name in ("actor", "critic"):
            if not isinstance(getattr(self, name), AbstractOptimizer):
                raise TypeError(f"{name}: expected an openrl optimizer, got {getattr(self, name)!r}")

    def init(self, params, layout=None):
        if layout is None:
            raise ValueError("layout: Separated needs to know which parameters are the actor's; pass agent.layout()")
        layout.require_infos("Separated")
        return SeparatedState(self.actor.init(params, layout), self.critic.init(params, layout), layout)

    def update(self, grads, state, params, *, ctx, key):
        updates, state, _ = self.update_with_stats(grads, state, params, ctx=ctx, key=key)
        return updates, state

    def update_with_stats(self, grads, state: SeparatedState, params, *, ctx, key):
        actor_key, critic_key = jax.random.split(key)
        actor_updates, actor_state, actor_stats = self.actor.update_with_stats(
            grads, state.actor, params, ctx=ctx, key=actor_key
        )
        critic_updates, critic_state, critic_stats = self.critic.update_with_stats(
            grads, state.critic, params, ctx=ctx, key=critic_key
        )
        is_actor = jnp.asarray(state.layout.actor_mask()) > 0
        flat_actor, unravel = ravel_pytree(actor_updates)
        flat_critic, _ = ravel_pytree(critic_updates)
        flat = jnp.where(is_actor, flat_actor, flat_critic)
        if self.zero_mean:
            flat = flat - flat.mean()
        stats = {name: jnp.where(is_actor, actor_stats[name], critic_stats[name]) for name in actor_stats}
        return unravel(flat), SeparatedState(actor_state, critic_state, state.layout), stats
