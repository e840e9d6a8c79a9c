"""`unbatched_on_cpu`: vmapping a per-parameter computation gives each member's own result."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import openrl as orl
from openrl.optim import batching, presets
from openrl.optim.batching import MAX_UNROLLED_MEMBERS, unbatched_on_cpu
from openrl.rl.agent import ActorCritic


def test_vmap_equals_each_member_alone_for_shared_and_batched_arguments(monkeypatch):
    monkeypatch.setattr(batching, "MIN_UNBATCHED_SIZE", 0)  # these members are tiny: split them anyway
    calls = []

    @unbatched_on_cpu
    def affine(w, x):
        calls.append(x.shape)
        return {"y": w["a"] * x + w["b"]}

    w = {"a": jnp.arange(3.0), "b": jnp.ones(3)}
    xs = jnp.arange(12.0).reshape(4, 3)
    shared = jax.jit(jax.vmap(affine, in_axes=(None, 0)))(w, xs)
    np.testing.assert_array_equal(shared["y"], np.stack([w["a"] * x + w["b"] for x in xs]))
    assert calls[-1] == (3,), "on CPU each member is traced alone, unbatched"
    ws = {"a": xs, "b": -xs}
    both = jax.vmap(affine)(ws, xs)
    np.testing.assert_array_equal(both["y"], xs * xs - xs)
    nested = jax.vmap(jax.vmap(affine, in_axes=(None, 0)), in_axes=(0, None))(ws, xs)
    assert nested["y"].shape == (4, 4, 3)
    np.testing.assert_array_equal(nested["y"][1, 2], xs[1] * xs[2] - xs[1])
    many = jnp.arange(3.0 * (MAX_UNROLLED_MEMBERS + 2)).reshape(-1, 3)  # past the unrolling cap: a lax.map
    np.testing.assert_array_equal(jax.jit(jax.vmap(affine, in_axes=(None, 0)))(w, many)["y"], w["a"][None] * many + w["b"][None])


def test_members_below_the_size_threshold_batch_as_usual(monkeypatch):
    traced = []

    @unbatched_on_cpu
    def double(x):
        traced.append(x.shape)
        return 2.0 * x

    xs = jnp.arange(8.0).reshape(4, 2)
    runs = {}
    for threshold in (3, 2):  # members of 2 elements: below the threshold, then at it
        monkeypatch.setattr(batching, "MIN_UNBATCHED_SIZE", threshold)
        traced.clear()
        np.testing.assert_array_equal(jax.jit(jax.vmap(double))(xs), 2.0 * xs)
        runs[threshold] = len(traced)
    # custom_vmap traces `double` once unbatched, then the rule: one batched trace, or one copy per member.
    assert runs == {3: 2, 2: 1 + len(xs)}


def test_vmapped_learned_update_matches_single_seeds():
    agent = ActorCritic(5, 2, discrete=True, width=8, key=jax.random.key(0))
    params, layout = eqx.filter(agent, eqx.is_inexact_array), agent.layout()
    optimizer = presets.open_(key=jax.random.key(1))
    stack = lambda trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees)  # noqa: E731
    seeds = []
    for i in range(3):
        _, _, activity = agent(jax.random.normal(jax.random.key(10 + i), (16, 5)))
        grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(20 + i), p.shape), params)
        ctx = orl.Context(iteration=jnp.asarray(i), epoch=jnp.asarray(1), activations=activity, num_iterations=4,
                          num_epochs=2)
        seeds.append((grads, ctx, jax.random.key(30 + i)))

    def update(grads, ctx, key):
        return optimizer.update(grads, optimizer.init(params, layout), params, ctx=ctx, key=key)

    batched = eqx.filter_jit(jax.vmap(update))(*stack(seeds))
    for i, seed in enumerate(seeds):
        for a, b in zip(jax.tree.leaves(update(*seed)), jax.tree.leaves(batched)):
            np.testing.assert_allclose(b[i], a, rtol=1e-5, atol=1e-7)


def test_the_cpu_rule_is_decided_from_the_backend_and_can_be_switched_off():
    batching.set_unbatched_on_cpu(None)
    assert batching.unbatched_on_cpu_enabled() == (jax.default_backend() == "cpu")
    calls = []

    @unbatched_on_cpu
    def double(x):
        calls.append(x.shape)
        return 2 * x

    try:
        batching.set_unbatched_on_cpu(False)
        np.testing.assert_array_equal(jax.vmap(double)(jnp.ones((4, 3))), 2 * np.ones((4, 3)))
        assert len(calls) == 1, "with the rule off, vmap traces fn once and batches it as usual"
    finally:
        batching.set_unbatched_on_cpu(None)
    with pytest.raises(TypeError, match="enabled"):
        batching.set_unbatched_on_cpu("off")


def test_meta_gradients_through_as_optax_with_the_cpu_rule_off():
    """What accelerator users get: reverse-mode meta-gradients of vmapped updates through `as_optax`."""
    agent = ActorCritic(5, 2, discrete=True, width=8, key=jax.random.key(0))
    params, layout = eqx.filter(agent, eqx.is_inexact_array), agent.layout()
    _, _, activity = agent(jax.random.normal(jax.random.key(1), (16, 5)))
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(2), p.shape), params)
    ctx = orl.Context(iteration=jnp.asarray(1), epoch=jnp.asarray(1), activations=activity, num_iterations=4,
                      num_epochs=2)
    meta, static = eqx.partition(presets.open_(key=jax.random.key(3)), eqx.is_inexact_array)
    weights = jax.tree.map(lambda p: jax.random.normal(jax.random.key(4), p.shape), params)

    def objective(meta):
        transform = eqx.combine(meta, static).as_optax(layout)

        def one(key):
            updates, _ = transform.update(grads, transform.init(params), params, ctx=ctx, key=key)
            return sum(jnp.vdot(u, w) for u, w in zip(jax.tree.leaves(updates), jax.tree.leaves(weights)))

        return jax.vmap(one)(jax.random.split(jax.random.key(5), 3)).mean()

    direction = jax.tree.map(lambda m: jax.random.normal(jax.random.key(6), m.shape), meta)
    try:
        batching.set_unbatched_on_cpu(False)
        gradient = jax.jit(jax.grad(objective))(meta)
        _, forward = jax.jit(lambda m, d: jax.jvp(objective, (m,), (d,)))(meta, direction)
    finally:
        batching.set_unbatched_on_cpu(None)
    reverse = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(gradient), jax.tree.leaves(direction)))
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(gradient))
    assert abs(float(forward)) > 0
    np.testing.assert_allclose(float(reverse), float(forward), rtol=1e-4)
