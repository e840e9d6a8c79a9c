"""Appendix F's update analysis: off changes nothing, on gives hand-checkable values."""

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import openrl as orl
from openrl.optim.layout import Context
from openrl.rl.analysis import ANALYSIS_DECAYS, STAT_NAMES, analyse_update, init_momentum
from openrl.rl.ppo import PPOConfig, train

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from probe_envs import OneStepProbe  # noqa: E402

ENV = OneStepProbe("bandit")
CONFIG = dict(total_timesteps=8 * 16 * 4, num_envs=8, num_steps=16, num_minibatches=2, width=8, clip_per_network=False)
run = eqx.filter_jit(train)

# Measured with the code before recording existed (git HEAD 40bc44e): returns per iteration and the
# sums of the first three parameter arrays of the trained agent, for key 0 (gradients clipped together,
# as that code did). The returns were re-measured
# when they became each environment's last finished episode's return (OPEN's fitness), training unchanged.
BEFORE = {
    "adam": ([0.625, 1.0, 1.0, 0.875], [3.3944049160927534, 0.32840119302272797, 2.2127526183612645]),
    "open": ([0.625, 0.75, 0.625, 0.375], [2.3774913791567087, -0.010977555764839053, -0.785617406014353]),
}


def _leaves(result):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(result.agent, eqx.is_array))]


@pytest.mark.parametrize("name", ["adam", "open"])
def test_off_is_unchanged_and_on_does_not_perturb_training(name):
    optimizer = orl.presets.adam() if name == "adam" else orl.presets.open_(key=jax.random.key(1))
    off = run(PPOConfig(**CONFIG), optimizer, ENV, jax.random.key(0))
    returns, sums = BEFORE[name]
    assert off.stats == {}
    assert np.asarray(off.returns).tolist() == returns
    np.testing.assert_allclose([x.astype(np.float64).sum() for x in _leaves(off)[:3]], sums, rtol=1e-5, atol=1e-6)

    on = run(PPOConfig(**CONFIG, record_stats=True), optimizer, ENV, jax.random.key(0))
    np.testing.assert_array_equal(on.returns, off.returns)
    np.testing.assert_array_equal(on.dormancy, off.dormancy)
    for a, b in zip(_leaves(on), _leaves(off)):  # XLA may fuse the update differently: ulps apart
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert set(on.stats) == set(STAT_NAMES)
    assert all(v.shape == (4,) and np.isfinite(v).all() for v in on.stats.values())
    if name == "adam":
        # Adam's update is a positively rescaled gradient: it points along it; it has no noise.
        assert np.all(on.stats["cosine_gradient"] > 0.2)
        assert np.all(on.stats["noise_magnitude"] == 0)
    else:
        assert np.all(on.stats["noise_magnitude"] > 0)
    assert np.all(on.stats["update_magnitude"] > 0)


def test_sgd_update_is_the_gradient_and_its_first_momentum():
    config = PPOConfig(total_timesteps=8 * 16 * 3, num_envs=8, num_steps=16, num_minibatches=1, num_epochs=1,
                       width=8, record_stats=True)
    result = run(config, orl.OptaxOptimizer(optax.sgd, learning_rate=0.1), ENV, jax.random.key(0))
    np.testing.assert_allclose(result.stats["cosine_gradient"], 1.0, rtol=1e-5)
    # One update per iteration: at the first, every momentum is (1 - β)·g, parallel to g.
    for b in ANALYSIS_DECAYS:
        assert float(result.stats[f"cosine_momentum_{b}"][0]) == pytest.approx(1.0, rel=1e-5)
    assert float(result.stats["cosine_momentum_0.9999"][2]) < 1.0


def test_analyse_update_by_hand():
    params = {"a": jnp.array([1.0, -2.0, 0.0]), "b": jnp.array([4.0])}
    grads = {"a": jnp.array([1.0, 0.0, 0.0]), "b": jnp.array([0.0])}
    updates = {"a": jnp.array([-0.1, 0.2, 0.0]), "b": jnp.array([-0.4])}  # optax sign: p + updates = 0.9 p
    stats = {"deterministic": jnp.array([0.1, -0.2, 0.5, 0.4]), "noise_std": jnp.array([0.3, 0.2, 0.0, 1.0])}
    actor_mask = np.array([1.0, 1.0, 1.0, 0.0], np.float32)
    momentum, values = analyse_update(init_momentum(4), grads, params, updates, stats, actor_mask)
    # u = (0.1, -0.2, 0, 0.4): cos(u, g) = 0.1 / |u| with |u| = sqrt(0.21).
    assert float(values["cosine_gradient"]) == pytest.approx(0.1 / np.sqrt(0.21), rel=1e-6)
    # |û/p| over the three non-zero parameters: (0.1 + 0.1 + 0.1) / 3; the zero parameter is left out.
    assert float(values["update_magnitude"]) == pytest.approx(0.1, rel=1e-6)
    # Actor only, non-zero parameters: (0.3/1 + 0.2/2) / 2.
    assert float(values["noise_magnitude"]) == pytest.approx(0.2, rel=1e-6)
    np.testing.assert_allclose(momentum[:, 0], 1.0 - np.asarray(ANALYSIS_DECAYS), rtol=0, atol=1e-7)
    momentum, _ = analyse_update(momentum, grads, params, updates, stats, actor_mask)
    b = np.asarray(ANALYSIS_DECAYS)
    np.testing.assert_allclose(momentum[:, 0], b * (1 - b) + (1 - b), rtol=0, atol=1e-7)


def test_noise_std_is_zero_for_a_magnitude_head_and_actor_only_for_opens():
    agent = orl.ActorCritic(3, 2, discrete=True, width=4, depth=1, key=jax.random.key(0))
    params = eqx.filter(agent, eqx.is_inexact_array)
    layout = agent.layout()
    grads = jax.tree.map(jnp.ones_like, params)
    ctx = Context(iteration=jnp.array(0), epoch=jnp.array(0), num_iterations=2, num_epochs=2,
                  activations=tuple(jnp.ones(w) for w in (4, 2, 4, 1)))
    mask = layout.actor_mask()
    for optimizer, noisy in ((orl.presets.no_features(key=jax.random.key(1)), False),
                             (orl.presets.open_(key=jax.random.key(1)), True)):
        state = optimizer.init(params, layout)
        _, _, stats = eqx.filter_jit(type(optimizer).update_with_stats)(
            optimizer, grads, state, params, ctx=ctx, key=jax.random.key(2)
        )
        std = np.asarray(stats["noise_std"])
        assert np.all(std[mask == 0] == 0)
        assert np.all(std[mask == 1] > 0) if noisy else np.all(std == 0)
    adam = orl.presets.adam()
    updates, _, stats = adam.update_with_stats(grads, adam.init(params), params, ctx=ctx, key=jax.random.key(2))
    np.testing.assert_array_equal(stats["deterministic"], -jax.flatten_util.ravel_pytree(updates)[0])
    assert not np.any(stats["noise_std"])


def test_record_stats_must_be_a_bool():
    with pytest.raises(TypeError, match="record_stats"):
        PPOConfig(record_stats="yes")
