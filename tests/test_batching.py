"""`unbatched_on_cpu`: vmapping a per-parameter computation gives each member's own result."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import openrl as orl
from openrl.optim import presets
from openrl.optim.batching import MAX_UNROLLED_MEMBERS, unbatched_on_cpu
from openrl.rl.agent import ActorCritic


def test_vmap_equals_each_member_alone_for_shared_and_batched_arguments():
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
