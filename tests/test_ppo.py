"""PPO on probe problems with known answers, the optimizer's context, determinism and bad config."""

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optax.tree import norm as tree_norm

import openrl as orl
from openrl.optim import presets
from openrl.rl.agent import ActorCritic
from openrl.rl.ppo import PPOConfig, clip_gradients, train

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from probe_envs import OneStepProbe  # noqa: E402

CONFIG = PPOConfig(total_timesteps=8 * 16 * 30, num_envs=8, num_steps=16, num_minibatches=4, width=16)
run = eqx.filter_jit(train)


def test_critic_fits_a_constant_reward():
    result = run(CONFIG, presets.adam(), OneStepProbe("constant"), jax.random.key(0))
    _, value, _ = result.agent(jnp.ones((1, 3)))
    assert float(value[0]) == pytest.approx(1.0, abs=0.05)


def test_actor_solves_a_two_armed_bandit():
    result = run(CONFIG, presets.adam(), OneStepProbe("bandit"), jax.random.key(0))
    assert float(result.final_return) > 0.9
    assert float(result.returns[0]) < 0.75


def test_gaussian_policy_finds_the_best_action():
    result = run(CONFIG, presets.adam(), OneStepProbe("continuous"), jax.random.key(0))
    policy, _, _ = result.agent(jnp.ones((1, 3)))
    assert float(policy[0, 0]) == pytest.approx(0.5, abs=0.1)
    assert float(result.final_return) > float(result.returns[0]) + 0.3


class CountingOptimizer(orl.AbstractOptimizer):
    """Counts the (iteration, epoch) pairs it sees and records the activation widths; never moves."""

    def init(self, params, layout=None):
        return jnp.zeros((3, 2), jnp.int32)

    def update(self, grads, state, params, *, ctx, key):
        assert tuple(a.shape[0] for a in ctx.activations) == (16, 16, 2, 16, 16, 1)
        assert (ctx.num_iterations, ctx.num_epochs) == (3, 2)
        return jax.tree.map(jnp.zeros_like, grads), state.at[ctx.iteration, ctx.epoch].add(1)


@pytest.mark.parametrize("discrete", [True, False])
def test_gradients_are_clipped_per_network_or_together(discrete):
    agent = ActorCritic(3, 2, discrete=discrete, width=4, key=jax.random.key(0))
    grads = eqx.filter(agent, eqx.is_inexact_array)

    def norm(tree):
        return float(tree_norm(tree))

    actor_norm, critic_norm = norm((grads.actor, grads.log_std)), norm(grads.critic)
    grads = eqx.tree_at(lambda g: g.critic, grads, jax.tree.map(lambda x: x * 4 * actor_norm / critic_norm,
                                                                   grads.critic))  # critic norm = 4 x actor norm
    per_network = clip_gradients(PPOConfig(max_grad_norm=0.5 * actor_norm), grads)
    assert norm((per_network.actor, per_network.log_std)) == pytest.approx(0.5 * actor_norm, rel=1e-5)
    assert norm(per_network.critic) == pytest.approx(0.5 * actor_norm, rel=1e-5)
    together = clip_gradients(PPOConfig(max_grad_norm=0.5 * actor_norm, clip_per_network=False), grads)
    assert norm(together) == pytest.approx(0.5 * actor_norm, rel=1e-5)
    assert norm(together.critic) == pytest.approx(4 * norm((together.actor, together.log_std)), rel=1e-5)
    unclipped = clip_gradients(PPOConfig(max_grad_norm=100 * actor_norm), grads)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(unclipped), jax.tree.leaves(grads)))


def test_loop_gives_the_optimizer_its_step_counters():
    config = PPOConfig(total_timesteps=8 * 16 * 3, num_envs=8, num_steps=16, num_minibatches=4, num_epochs=2, width=16)
    result = run(config, CountingOptimizer(), OneStepProbe("bandit"), jax.random.key(0))
    assert np.array_equal(result.opt_state, np.full((3, 2), 4))


def test_same_key_same_run_and_vmapped_seeds_match_single_runs():
    env = OneStepProbe("bandit")
    a = run(CONFIG, presets.open_(key=jax.random.key(1)), env, jax.random.key(3))
    b = run(CONFIG, presets.open_(key=jax.random.key(1)), env, jax.random.key(3))
    assert np.array_equal(a.returns, b.returns) and np.array_equal(a.dormancy, b.dormancy)
    keys = jax.random.split(jax.random.key(7), 3)
    batched = eqx.filter_jit(eqx.filter_vmap(lambda k: train(CONFIG, presets.adam(), env, k)))(keys)
    for i in range(3):
        single = run(CONFIG, presets.adam(), env, keys[i])
        np.testing.assert_allclose(batched.returns[i], single.returns, atol=0.1)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(num_minibatches=3), "num_minibatches: 3 does not divide the batch num_envs x num_steps = 128"),
        (dict(total_timesteps=0), "total_timesteps: expected a positive int, got 0"),
        (dict(total_timesteps=100), "total_timesteps: 100 is less than one batch"),
        (dict(activation="gelu"), "activation: expected one of"),
    ],
)
def test_bad_config_is_named(overrides, message):
    values = dict(total_timesteps=1280, num_envs=8, num_steps=16, num_minibatches=4) | overrides
    with pytest.raises(ValueError, match=message):
        PPOConfig(**values)
