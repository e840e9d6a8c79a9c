"""A plain, self-contained PPO loop in the style of PureJaxRL: the speed reference of `test_throughput.py`.

Nothing from openrl: gymnax's environment vmapped over `num_envs`, separate actor and critic MLPs
(orthogonal init, ReLU), GAE, `num_epochs` shuffled passes of `num_minibatches` minibatches, and
optax's Adam after global-norm clipping, with the learning rate annealed linearly per iteration.
The hyper-parameters are the paper's MinAtar values (Table 3); `train(key)` is pure, so it jits and vmaps.
"""

from __future__ import annotations

from typing import NamedTuple

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax


class Config(NamedTuple):
    env_name: str = "Breakout-MinAtar"
    total_timesteps: int = 131_072
    num_envs: int = 64
    num_steps: int = 128
    num_minibatches: int = 8
    num_epochs: int = 4
    width: int = 64
    learning_rate: float = 0.01
    b1: float = 0.9
    b2: float = 0.99
    eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    max_grad_norm: float = 0.5


def _orthogonal(key, shape: tuple[int, int], scale: float):
    # One key at a time under vmap: a batched LAPACK QR can deadlock XLA:CPU's thread pool.
    init = jax.custom_batching.sequential_vmap(lambda k: jax.nn.initializers.orthogonal(scale)(k, shape, jnp.float32))
    return init(key)


def init_mlp(key, sizes: list[int], out_scale: float) -> list[dict]:
    keys = jax.random.split(key, len(sizes) - 1)
    scales = [np.sqrt(2.0)] * (len(sizes) - 2) + [out_scale]
    return [
        {"w": _orthogonal(k, (a, b), s), "b": jnp.zeros(b)}
        for k, a, b, s in zip(keys, sizes[:-1], sizes[1:], scales, strict=True)
    ]


def mlp(layers: list[dict], x):
    for layer in layers[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    log_prob: jax.Array
    value: jax.Array
    returned: jax.Array


def make_train(config: Config):
    env, env_params = gymnax.make(config.env_name)
    obs_size = int(np.prod(env.observation_space(env_params).shape))
    num_actions = env.action_space(env_params).n
    num_iterations = config.total_timesteps // (config.num_envs * config.num_steps)
    batch_size = config.num_envs * config.num_steps
    minibatch_size = batch_size // config.num_minibatches
    updates_per_iteration = config.num_minibatches * config.num_epochs

    def schedule(count):
        return config.learning_rate * (1.0 - (count // updates_per_iteration) / num_iterations)

    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                     optax.adam(schedule, b1=config.b1, b2=config.b2, eps=config.eps))
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def forward(params, obs):
        x = obs.reshape(obs.shape[0], -1)
        return mlp(params["actor"], x), mlp(params["critic"], x)[:, 0]

    def loss_fn(params, batch: Transition, advantages, targets):
        logits, value = forward(params, batch.obs)
        log_probs = jax.nn.log_softmax(logits)
        log_prob = jnp.take_along_axis(log_probs, batch.action[:, None], axis=1)[:, 0]
        value_clipped = batch.value + jnp.clip(value - batch.value, -config.clip_eps, config.clip_eps)
        value_loss = 0.5 * jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2).mean()
        ratio = jnp.exp(log_prob - batch.log_prob)
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        actor_loss = -jnp.minimum(ratio * advantages,
                                  jnp.clip(ratio, 1 - config.clip_eps, 1 + config.clip_eps) * advantages).mean()
        entropy = -(jnp.exp(log_probs) * log_probs).sum(-1).mean()
        return actor_loss + config.vf_coef * value_loss - config.ent_coef * entropy

    def train(key):
        key, actor_key, critic_key, reset_key = jax.random.split(key, 4)
        params = {"actor": init_mlp(actor_key, [obs_size, config.width, config.width, num_actions], 0.01),
                  "critic": init_mlp(critic_key, [obs_size, config.width, config.width, 1], 1.0)}
        opt_state = tx.init(params)
        obs, env_state = reset(jax.random.split(reset_key, config.num_envs), env_params)
        zeros = jnp.zeros(config.num_envs)
        log = (zeros, zeros)  # running episode return, last finished episode's return

        def env_step(carry, _):
            params, env_state, obs, log, key = carry
            key, action_key, step_key = jax.random.split(key, 3)
            logits, value = forward(params, obs.astype(jnp.float32))
            action = jax.random.categorical(action_key, logits)
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
            next_obs, env_state, reward, terminated, truncated, _ = step(
                jax.random.split(step_key, config.num_envs), env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            running = log[0] + reward
            log = (jnp.where(done, 0.0, running), jnp.where(done, running, log[1]))
            transition = Transition(obs.astype(jnp.float32), action, reward.astype(jnp.float32), done, log_prob,
                                    value, log[1])
            return (params, env_state, next_obs, log, key), transition

        def iteration(carry, _):
            params, opt_state, env_state, obs, log, key = carry
            (params, env_state, obs, log, key), batch = jax.lax.scan(
                env_step, (params, env_state, obs, log, key), length=config.num_steps)
            _, last_value = forward(params, obs.astype(jnp.float32))

            def gae_step(carry, t: Transition):
                advantage, next_value = carry
                not_done = 1.0 - t.done
                delta = t.reward + config.gamma * next_value * not_done - t.value
                advantage = delta + config.gamma * config.gae_lambda * not_done * advantage
                return (advantage, t.value), advantage

            _, advantages = jax.lax.scan(gae_step, (jnp.zeros_like(last_value), last_value), batch, reverse=True)
            targets = advantages + batch.value
            flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), (batch, advantages, targets))

            def epoch(carry, _):
                params, opt_state, key = carry
                key, perm_key = jax.random.split(key)
                permutation = jax.random.permutation(perm_key, batch_size)
                minibatches = jax.tree.map(
                    lambda x: x[permutation].reshape((config.num_minibatches, minibatch_size) + x.shape[1:]), flat)

                def minibatch_update(carry, minibatch):
                    params, opt_state = carry
                    grads = jax.grad(loss_fn)(params, *minibatch)
                    updates, opt_state = tx.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), None

                (params, opt_state), _ = jax.lax.scan(minibatch_update, (params, opt_state), minibatches)
                return (params, opt_state, key), None

            (params, opt_state, key), _ = jax.lax.scan(epoch, (params, opt_state, key), length=config.num_epochs)
            return (params, opt_state, env_state, obs, log, key), batch.returned[-1].mean()

        _, returns = jax.lax.scan(iteration, (params, opt_state, env_state, obs, log, key), length=num_iterations)
        return returns

    return train
