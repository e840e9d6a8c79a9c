"""ParamNorm, PolicyEntropy and ClippedHead: values, bad configuration, use inside openrl.Optimizer
(PolicyEntropy from a custom loop's context extras), and registration."""

import importlib.metadata

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import openrl as orl
from openrl import plugins
from openrl.optim.features import FeatureInputs
from openrl_example_plugin import ClippedHead, ParamNorm, PolicyEntropy


def test_param_norm_is_the_log_rms_of_each_tensor():
    layout = orl.ParamLayout(((2,), (3,)))
    param = jnp.asarray([3.0, 4.0, 0.0, 0.0, 0.0])
    inputs = FeatureInputs(jnp.zeros(5), param, orl.Context(), layout)
    x, state = ParamNorm()(inputs, ParamNorm().init(layout))
    assert x.shape == (ParamNorm.num_channels, 5) and state is None
    expected = np.log([np.sqrt(12.5) + 1e-8] * 2 + [1e-8] * 3)
    np.testing.assert_allclose(x[0], expected, rtol=1e-6)


def test_clipped_head_clips_only_large_steps():
    head = ClippedHead(alpha1=1.0, alpha2=0.0, max_step=0.5)
    outputs = jnp.asarray([[0.1, 3.0], [-0.2, 0.0], [2.0, 0.0], [-7.0, 1.0]]).T  # [m, e] x parameters
    inputs = FeatureInputs(jnp.zeros(4), jnp.zeros(4), orl.Context(), orl.ParamLayout(((4,),)))
    np.testing.assert_allclose(head(outputs, inputs, key=jax.random.key(0)), [0.1, -0.2, 0.5, -0.5])
    np.testing.assert_allclose(ClippedHead(max_step=1e9).deterministic(outputs, inputs),
                               orl.MagnitudeHead().deterministic(outputs, inputs))


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="max_step must be positive, got 0"):
        ClippedHead(max_step=0.0)
    with pytest.raises(ValueError, match="eps must be positive"):
        ParamNorm(eps=-1.0)


def test_inside_an_optimizer():
    params = {"w": jax.random.normal(jax.random.key(0), (4, 3)), "b": jnp.zeros(3)}
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(p.size), p.shape), params)
    max_step = 1e-4
    optimizer = orl.Optimizer([ParamNorm(), orl.Momentum(), orl.Gradient()], ClippedHead(max_step=max_step),
                              zero_mean=False, key=jax.random.key(1))
    traces = []

    @eqx.filter_jit
    def step(state, key):
        traces.append(1)
        return optimizer.update(grads, state, params, ctx=orl.Context(), key=key)

    state = optimizer.init(params)
    updates, state = step(state, jax.random.key(2))
    updates, state = step(state, jax.random.key(3))
    assert len(traces) == 1, "the second step recompiled"
    flat = jnp.concatenate([u.ravel() for u in jax.tree.leaves(updates)])
    assert bool(jnp.all(jnp.isfinite(flat)))
    assert 0 < float(jnp.abs(flat).max()) <= max_step * (1 + 1e-6)


def test_policy_entropy_from_a_custom_loops_context_extras():
    """A hand-written optax loop adds the policy's entropy to the context; openrl itself is unchanged."""
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    optimizer = orl.Optimizer([PolicyEntropy(), orl.Gradient()], orl.MagnitudeHead(), zero_mean=False,
                              key=jax.random.key(0))
    tx = optimizer.as_optax()
    state = tx.init(params)

    @jax.jit
    def step(params, state, entropy, key):
        grads = jax.tree.map(lambda p: 0.1 * jnp.ones_like(p), params)
        ctx = orl.Context(extras={"entropy": entropy})
        updates, state = tx.update(grads, state, params, ctx=ctx, key=key)
        return optax.apply_updates(params, updates), state

    low, _ = step(params, state, jnp.asarray(0.1), jax.random.key(1))
    high, _ = step(params, state, jnp.asarray(2.0), jax.random.key(1))
    assert not eqx.tree_equal(low, high), "the entropy extra did not reach the optimizer"
    layout = orl.ParamLayout(((2,), (3,)))
    inputs = FeatureInputs(jnp.zeros(5), jnp.zeros(5), orl.Context(extras={"entropy": jnp.asarray(2.0)}), layout)
    np.testing.assert_allclose(PolicyEntropy()(inputs, None)[0], np.full((1, 5), np.log(2.0 + 1e-8)), rtol=1e-6)
    with pytest.raises(ValueError, match=r"PolicyEntropy needs Context extras \['entropy'\].*extras=\{'entropy': ...\}"):
        optimizer.update(jax.tree.map(jnp.ones_like, params), state, params, ctx=orl.Context(), key=jax.random.key(1))


def test_registered_through_entry_points():
    try:
        importlib.metadata.distribution("openrl-example-plugin")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("not installed: run `pip install -e plugins/openrl-example-plugin` to test its entry points")
    assert plugins.load("openrl.features", "ParamNorm") is ParamNorm
    assert plugins.load("openrl.features", "PolicyEntropy") is PolicyEntropy
    assert plugins.load("openrl.heads", "ClippedHead") is ClippedHead
