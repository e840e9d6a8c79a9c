"""Actor and critic MLPs that also report per-neuron activity for the dormancy feature."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from openrl.optim.layout import LeafInfo, ParamLayout

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {"relu": jax.nn.relu, "tanh": jnp.tanh}


def _orthogonal(key: PRNGKeyArray, in_size: int, out_size: int, scale: float) -> Float[Array, "o i"]:
    """Orthogonal init, computed one key at a time under `vmap`.

    A batched QR (LAPACK's ParallelBatchMap) deadlocks jaxlib 0.10's CPU thread pool
    when several run at once, e.g. for seeds vmapped over a whole training run.
    """

    @jax.custom_batching.sequential_vmap
    def init(k):
        return jax.nn.initializers.orthogonal(scale)(k, (in_size, out_size), jnp.float32).T

    return init(key)


def _orthogonal_linear(in_size: int, out_size: int, scale: float, key: PRNGKeyArray) -> eqx.nn.Linear:
    layer = eqx.nn.Linear(in_size, out_size, key=key)
    weight = _orthogonal(key, in_size, out_size, scale)
    return eqx.tree_at(lambda l: (l.weight, l.bias), layer, (weight, jnp.zeros(out_size)))


class MLP(eqx.Module):
    """A batched MLP: orthogonal init (gain √2 on hidden layers), zero biases."""

    layers: tuple[eqx.nn.Linear, ...]
    activation: str = eqx.field(static=True)

    def __init__(
        self, in_size: int, out_size: int, width: int, depth: int, activation: str, out_scale: float,
        *, key: PRNGKeyArray,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
        sizes = [in_size] + [width] * depth + [out_size]
        scales = [np.sqrt(2.0)] * depth + [out_scale]
        keys = jax.random.split(key, depth + 1)
        self.layers = tuple(
            _orthogonal_linear(a, b, s, k) for a, b, s, k in zip(sizes[:-1], sizes[1:], scales, keys)
        )
        self.activation = activation

    def __call__(self, x: Float[Array, "b d"]) -> tuple[Float[Array, "b o"], tuple[Float[Array, " _width"], ...]]:
        """Outputs, and per layer (output layer included) the mean |activation| of each neuron."""
        activity = []
        for i, layer in enumerate(self.layers):
            x = x @ layer.weight.T + layer.bias[None, :]
            if i < len(self.layers) - 1:
                x = ACTIVATIONS[self.activation](x)
            activity.append(jnp.abs(x).mean(axis=0))
        return x, tuple(activity)

    def leaf_infos(self, network: str, first_neuron_layer: int, num_layers: int | None = None) -> MLP:
        """This MLP with each parameter array replaced by its `LeafInfo` (`num_layers`: of its network,
        default its own layer count)."""
        n = len(self.layers) if num_layers is None else num_layers
        infos = [
            (LeafInfo(network, i, n, first_neuron_layer + i, 0), LeafInfo(network, i, n, first_neuron_layer + i, 0))
            for i in range(len(self.layers))
        ]
        return eqx.tree_at(
            lambda m: [x for layer in m.layers for x in (layer.weight, layer.bias)],
            self,
            [x for pair in infos for x in pair],
        )


class ActorCritic(eqx.Module):
    """Separate actor and critic MLPs; categorical or diagonal-Gaussian (state-independent std) policy."""

    actor: MLP
    critic: MLP
    log_std: Float[Array, " a"] | None

    def __init__(
        self, obs_size: int, action_size: int, *, discrete: bool, width: int = 64, depth: int = 2,
        activation: str = "relu", key: PRNGKeyArray,
    ):
        actor_key, critic_key = jax.random.split(key)
        self.actor = MLP(obs_size, action_size, width, depth, activation, 0.01, key=actor_key)
        self.critic = MLP(obs_size, 1, width, depth, activation, 1.0, key=critic_key)
        self.log_std = None if discrete else jnp.zeros(action_size)

    @property
    def discrete(self) -> bool:
        return self.log_std is None

    def __call__(
        self, obs: Float[Array, "b ..."]
    ) -> tuple[Float[Array, "b a"], Float[Array, " b"], tuple[Float[Array, " _width"], ...]]:
        """Policy outputs (logits or means), values, and per-layer neuron activity (actor, then critic)."""
        x = obs.reshape(obs.shape[0], -1)
        policy, actor_activity = self.actor(x)
        value, critic_activity = self.critic(x)
        return policy, value[:, 0], actor_activity + critic_activity

    def layout(self) -> ParamLayout:
        """Network, layer and downstream neuron of every parameter, for the learned optimizers.

        As in OPEN's code, a Gaussian policy's log-std counts as the actor's last layer (so its
        dense layers' proportions are i / depth+1) and feeds no neuron (dormancy score 1).
        """
        actor_layers = len(self.actor.layers)
        num_actor_layers = actor_layers + (not self.discrete)
        infos = eqx.tree_at(
            lambda a: (a.actor, a.critic),
            self,
            (self.actor.leaf_infos("actor", 0, num_actor_layers), self.critic.leaf_infos("critic", actor_layers)),
        )
        if not self.discrete:
            log_std = LeafInfo("actor", actor_layers, num_actor_layers)
            infos = eqx.tree_at(lambda a: a.log_std, infos, log_std)
        return ParamLayout.from_tree(eqx.filter(self, eqx.is_inexact_array), infos)

    def sample(
        self, key: PRNGKeyArray, policy: Float[Array, "b a"]
    ) -> tuple[Int[Array, " b"] | Float[Array, "b a"], Float[Array, " b"]]:
        """An action per row and its log-probability."""
        if self.discrete:
            action = jax.random.categorical(key, policy)
        else:
            action = policy + jnp.exp(self.log_std)[None, :] * jax.random.normal(key, policy.shape)
        return action, self.log_prob(policy, action)

    def log_prob(self, policy: Float[Array, "b a"], action: Array) -> Float[Array, " b"]:
        if self.discrete:
            logp = jax.nn.log_softmax(policy)
            return jnp.take_along_axis(logp, action[:, None].astype(jnp.int32), axis=1)[:, 0]
        z = (action - policy) * jnp.exp(-self.log_std)[None, :]
        return jnp.sum(-0.5 * z**2 - self.log_std[None, :] - 0.5 * jnp.log(2 * jnp.pi), axis=-1)

    def entropy(self, policy: Float[Array, "b a"]) -> Float[Array, " b"]:
        if self.discrete:
            logp = jax.nn.log_softmax(policy)
            return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
        return jnp.broadcast_to(jnp.sum(self.log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e)), policy.shape[:1])
