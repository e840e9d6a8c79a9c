"""PPO as one pure, jittable function of a key: `train(config, optimizer, env, key)`."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from openrl.optim.layout import Context
from openrl.optim.optimizer import AbstractOptimizer
from openrl.rl.agent import ACTIVATIONS, ActorCritic
from openrl.rl.analysis import analyse_update, init_momentum


class PPOConfig(eqx.Module):
    """PPO hyper-parameters: numbers are PyTree leaves (vmappable), sizes are static.

    Presets: `PPOConfig.minatar()`, `PPOConfig.ant()`, `PPOConfig.gridworld()` (paper Table 3).
    `record_stats=True` makes `train` record the update analysis of Appendix F in
    `TrainResult.stats` (see `openrl.rl.analysis`); off, the run compiles without it.
    `clip_per_network` clips the actor's and the critic's gradients to `max_grad_norm` each, as
    OPEN's released training loop does; `False` clips one global norm over both (PureJaxRL).

    - `gamma`: discount factor
    - `gae_lambda`: GAE's lambda
    - `clip_eps`: PPO's ratio clipping epsilon
    - `vf_coef`: value-loss coefficient
    - `ent_coef`: entropy-bonus coefficient
    - `max_grad_norm`: gradient-norm clipping threshold
    - `total_timesteps`: environment steps per run (at least two batches)
    - `num_envs`: parallel environments
    - `num_steps`: steps per environment per PPO iteration (batch = num_envs x num_steps)
    - `num_minibatches`: minibatches per epoch (must divide the batch)
    - `num_epochs`: passes over each batch
    - `width`: hidden units per layer of actor and critic
    - `depth`: hidden layers of actor and critic
    - `activation`: hidden activation of actor and critic
    - `record_stats`: record Appendix F's update analysis
    - `clip_per_network`: clip actor and critic gradients separately (OPEN's loop)
    """

    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    max_grad_norm: float = 0.5
    total_timesteps: int = eqx.field(static=True, default=1_000_000)
    num_envs: int = eqx.field(static=True, default=64)
    num_steps: int = eqx.field(static=True, default=128)
    num_minibatches: int = eqx.field(static=True, default=8)
    num_epochs: int = eqx.field(static=True, default=4)
    width: int = eqx.field(static=True, default=64)
    depth: int = eqx.field(static=True, default=2)
    activation: str = eqx.field(static=True, default="relu")
    record_stats: bool = eqx.field(static=True, default=False)
    clip_per_network: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        for name in ("record_stats", "clip_per_network"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"PPOConfig.{name}: expected a bool, got {getattr(self, name)!r}")
        for name in ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "num_epochs", "width", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PPOConfig.{name}: expected a positive int, got {value!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"PPOConfig.activation: expected one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"PPOConfig.num_minibatches: {self.num_minibatches} does not divide the batch "
                f"num_envs x num_steps = {self.batch_size}"
            )
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"PPOConfig.total_timesteps: {self.total_timesteps} is less than one batch "
                f"(num_envs x num_steps = {self.batch_size})"
            )

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // self.batch_size

    @classmethod
    def minatar(cls, **overrides: Any) -> PPOConfig:
        return cls(**{"total_timesteps": 10_000_000, **overrides})

    @classmethod
    def ant(cls, **overrides: Any) -> PPOConfig:
        values = dict(total_timesteps=50_000_000, num_envs=2048, num_steps=10, num_minibatches=32,
                      ent_coef=0.0, activation="tanh")
        return cls(**{**values, **overrides})

    @classmethod
    def cartpole(cls, **overrides: Any) -> PPOConfig:
        """A small CartPole-v1 budget (32k steps) for quickstarts and tests on a CPU."""
        values = dict(total_timesteps=32_768, num_envs=16, num_steps=128, num_minibatches=4, activation="tanh")
        return cls(**{**values, **overrides})

    @classmethod
    def gridworld(cls, **overrides: Any) -> PPOConfig:
        values = dict(total_timesteps=30_000_000, num_envs=1024, num_steps=20, num_minibatches=16,
                      num_epochs=2, width=16, activation="tanh")
        return cls(**{**values, **overrides})


class Transition(NamedTuple):
    obs: Array
    action: Array
    reward: Float[Array, " e"]
    done: Bool[Array, " e"]
    log_prob: Float[Array, " e"]
    value: Float[Array, " e"]
    episode_return: Float[Array, " e"]


class TrainResult(eqx.Module):
    """Curves over PPO iterations, the final return (the meta-training fitness), the trained agent
    and the optimizer's final state; `stats` holds the Appendix F curves when recorded, else `{}`.

    `returns[i]` is `episode_return` after iteration `i`: each environment's last finished
    episode's return, averaged over environments, as OPEN's and PureJaxRL's loops log it.
    """

    agent: ActorCritic
    opt_state: PyTree
    returns: Float[Array, " iterations"]
    dormancy: Float[Array, " iterations"]
    final_return: Float[Array, ""]
    stats: dict[str, Float[Array, " iterations"]]


class _RunState(NamedTuple):
    params: PyTree
    opt_state: PyTree
    env_state: PyTree
    obs: Array
    key: PRNGKeyArray
    momentum: Float[Array, "k n"] | None = None


def make_agent(config: PPOConfig, env: Any, key: PRNGKeyArray) -> ActorCritic:
    """The actor-critic sized for `env` and `config`."""
    obs_size = math.prod(env.observation_shape)
    action_size = env.action_space.n if env.is_discrete else math.prod(env.action_space.shape)
    return ActorCritic(obs_size, action_size, discrete=env.is_discrete, width=config.width, depth=config.depth,
                       activation=config.activation, key=key)


def rollout(static: ActorCritic, env: Any, config: PPOConfig, run: _RunState) -> tuple[_RunState, Transition]:
    """Collect `num_steps` transitions from every environment."""
    agent = eqx.combine(run.params, static)

    def step(carry, _):
        env_state, obs, key = carry
        key, action_key, step_key = jax.random.split(key, 3)
        policy, value, _ = agent(obs)
        action, log_prob = agent.sample(action_key, policy)
        next_obs, env_state, reward, done, info = env.step(step_key, env_state, action)
        transition = Transition(obs, action, reward, done, log_prob, value, info["returned_episode_returns"])
        return (env_state, next_obs, key), transition

    (env_state, obs, key), batch = jax.lax.scan(step, (run.env_state, run.obs, run.key), length=config.num_steps)
    return run._replace(env_state=env_state, obs=obs, key=key), batch


def episode_return(batch: Transition) -> Float[Array, ""]:
    """Each environment's last finished episode's return (0 before its first) at the batch's last step,
    averaged over environments: PureJaxRL's `returned_episode_returns[-1].mean()`, OPEN's fitness."""
    return batch.episode_return[-1].mean()


def gae(config: PPOConfig, batch: Transition, last_value: Float[Array, " e"]):
    """Generalised advantage estimates and value targets, `[steps, envs]` each."""

    def backward(carry, t: Transition):
        advantage, next_value = carry
        not_done = 1.0 - t.done
        delta = t.reward + config.gamma * next_value * not_done - t.value
        advantage = delta + config.gamma * config.gae_lambda * not_done * advantage
        return (advantage, t.value), advantage

    _, advantages = jax.lax.scan(backward, (jnp.zeros_like(last_value), last_value), batch, reverse=True)
    return advantages, advantages + batch.value


def ppo_loss(params: PyTree, static: ActorCritic, config: PPOConfig, minibatch: Transition,
             advantages: Float[Array, " b"], targets: Float[Array, " b"]):
    """Clipped PPO loss; auxiliary output is the per-layer neuron activity of this forward pass."""
    agent = eqx.combine(params, static)
    policy, value, activity = agent(minibatch.obs)
    value_clipped = minibatch.value + jnp.clip(value - minibatch.value, -config.clip_eps, config.clip_eps)
    value_loss = 0.5 * jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2).mean()
    ratio = jnp.exp(agent.log_prob(policy, minibatch.action) - minibatch.log_prob)
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    actor_loss = -jnp.minimum(
        ratio * advantages, jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps) * advantages
    ).mean()
    entropy = agent.entropy(policy).mean()
    loss = actor_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    return loss, jax.lax.stop_gradient(activity)


def clip_gradients(config: PPOConfig, grads: PyTree) -> PyTree:
    """Scale gradients to global norm at most `max_grad_norm`: the actor's (with its log-std) and the
    critic's separately if `config.clip_per_network`, else all together."""
    clip = lambda tree: optax.clip_by_global_norm(config.max_grad_norm).update(tree, optax.EmptyState())[0]  # noqa: E731
    if not config.clip_per_network:
        return clip(grads)
    actor, log_std = clip((grads.actor, grads.log_std))
    grads = eqx.tree_at(lambda g: (g.actor, g.critic), grads, (actor, clip(grads.critic)))
    return grads if log_std is None else eqx.tree_at(lambda g: g.log_std, grads, log_std)


def dormant_fraction(activity: tuple[Float[Array, " _width"], ...]) -> Float[Array, ""]:
    """Fraction of hidden neurons that are τ=0 dormant (never active on the minibatch)."""
    hidden = jnp.concatenate(activity)
    return jnp.mean(hidden <= 0.0)


def update_epochs(static: ActorCritic, config: PPOConfig, optimizer: AbstractOptimizer, iteration: Int[Array, ""],
                  run: _RunState, batch: Transition, advantages, targets):
    """`num_epochs` passes of minibatch updates over one batch; also the mean analysis stats if recorded."""
    flat = lambda x: x.reshape((config.batch_size,) + x.shape[2:])  # noqa: E731
    data = (jax.tree.map(flat, batch), flat(advantages), flat(targets))
    hidden_layers = [i for i in range(2 * (config.depth + 1)) if i % (config.depth + 1) != config.depth]
    actor_mask = eqx.combine(run.params, static).layout().actor_mask() if config.record_stats else None

    def minibatch_update(carry, minibatch):
        params, opt_state, key, epoch, momentum = carry
        key, opt_key = jax.random.split(key)
        (loss, activity), grads = jax.value_and_grad(ppo_loss, has_aux=True)(params, static, config, *minibatch)
        grads = clip_gradients(config, grads)
        ctx = Context(iteration=iteration, epoch=epoch, activations=activity, loss=loss,
                      num_iterations=config.num_iterations, num_epochs=config.num_epochs,
                      num_updates=config.num_iterations * config.num_epochs * config.num_minibatches)
        if config.record_stats:
            updates, opt_state, stats = optimizer.update_with_stats(grads, opt_state, params, ctx=ctx, key=opt_key)
            momentum, stats = analyse_update(momentum, grads, params, updates, stats, actor_mask)
        else:
            updates, opt_state = optimizer.update(grads, opt_state, params, ctx=ctx, key=opt_key)
            stats = {}
        params = optax.apply_updates(params, updates)
        dormant = dormant_fraction(tuple(activity[i] for i in hidden_layers))
        return (params, opt_state, key, epoch, momentum), (dormant, stats)

    def epoch_update(carry, epoch):
        params, opt_state, key, momentum = carry
        key, perm_key = jax.random.split(key)
        permutation = jax.random.permutation(perm_key, config.batch_size)
        shuffled = jax.tree.map(
            lambda x: x[permutation].reshape((config.num_minibatches, config.minibatch_size) + x.shape[1:]), data
        )
        (params, opt_state, key, _, momentum), out = jax.lax.scan(
            minibatch_update, (params, opt_state, key, epoch, momentum), shuffled
        )
        return (params, opt_state, key, momentum), out

    (params, opt_state, key, momentum), (dormant, stats) = jax.lax.scan(
        epoch_update, (run.params, run.opt_state, run.key, run.momentum), jnp.arange(config.num_epochs)
    )
    stats = {name: value.mean() for name, value in stats.items()}
    return run._replace(params=params, opt_state=opt_state, key=key, momentum=momentum), dormant[-1, -1], stats


def train(config: PPOConfig, optimizer: AbstractOptimizer, env: Any, key: PRNGKeyArray) -> TrainResult:
    """Train a fresh agent on `env` with `optimizer`; pure, so it jits and vmaps over keys and optimizers."""
    agent_key, reset_key, run_key = jax.random.split(key, 3)
    agent = make_agent(config, env, agent_key)
    params, static = eqx.partition(agent, eqx.is_inexact_array)
    obs, env_state = env.reset(reset_key)
    layout = agent.layout()
    momentum = init_momentum(layout.num_params) if config.record_stats else None
    run = _RunState(params, optimizer.init(params, layout), env_state, obs, run_key, momentum)

    def iteration(run: _RunState, i: Int[Array, ""]):
        run, batch = rollout(static, env, config, run)
        _, last_value, _ = eqx.combine(run.params, static)(run.obs)
        advantages, targets = gae(config, batch, last_value)
        run, dormant, stats = update_epochs(static, config, optimizer, i, run, batch, advantages, targets)
        return run, (episode_return(batch), dormant, stats)

    run, (returns, dormancy, stats) = jax.lax.scan(iteration, run, jnp.arange(config.num_iterations))
    agent = eqx.combine(run.params, static)
    return TrainResult(agent=agent, opt_state=run.opt_state, returns=returns, dormancy=dormancy, final_return=returns[-1],
                       stats=stats)
