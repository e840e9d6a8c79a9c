"""`mlp_layout` / `mlp_activity`: learned optimizers on models made of `eqx.nn.MLP`s in an optax loop, and
the errors a user of `as_optax` meets (naming `as_optax`; too few activations is not an IndexError)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import openrl as orl
from openrl.optim import mlp_activity, mlp_layout, mlp_names
from openrl.rl.agent import MLP


def pair(activation=jax.nn.relu):
    k1, k2 = jax.random.split(jax.random.key(0))
    return {"actor": eqx.nn.MLP(4, 2, 8, 2, activation=activation, key=k1),
            "critic": eqx.nn.MLP(4, 1, 8, 2, activation=activation, key=k2)}


def test_layout_matches_openrl_agent_convention():
    """An eqx.nn.MLP pair gets the LeafInfos openrl's own ActorCritic gives the same architecture."""
    model = pair()
    layout = mlp_layout(model)
    assert mlp_names(model) == ("actor", "critic")
    agent = orl.ActorCritic(4, 2, discrete=True, width=8, depth=2, key=jax.random.key(0))
    assert layout.shapes == agent.layout().shapes
    assert layout.infos == agent.layout().infos
    bare = mlp_layout(model["critic"], network="critic")
    assert {i.network for i in bare.infos} == {"critic"} and bare.num_params == 4 * 8 + 8 + 8 * 8 + 8 + 8 + 1


def test_activity_is_the_forward_pass_and_openrl_mlp_activity():
    model = pair(jnp.tanh)
    x = jax.random.normal(jax.random.key(1), (16, 4))
    y, activity = mlp_activity(model["actor"], x)
    np.testing.assert_allclose(y, jax.vmap(model["actor"])(x), rtol=1e-6)
    ours = MLP(4, 2, 8, 2, "tanh", 1.0, key=jax.random.key(2))
    ours = eqx.tree_at(lambda m: m.layers, ours, tuple(model["actor"].layers))
    expected_y, expected_activity = ours(x)
    np.testing.assert_allclose(y, expected_y, rtol=1e-6)
    for got, want in zip(activity, expected_activity, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_open_trains_an_mlp_pair_through_optax():
    model = pair()
    params, static = eqx.partition(model, eqx.is_inexact_array)
    tx = orl.load_pretrained("breakout").as_optax(mlp_layout(model))
    state = tx.init(params)
    x = jnp.ones((8, 4))
    grads = jax.tree.map(jnp.ones_like, params)
    activity = mlp_activity(model["actor"], x)[1] + mlp_activity(model["critic"], x)[1]
    ctx = orl.Context(iteration=jnp.asarray(0), epoch=jnp.asarray(0), activations=activity, num_iterations=10,
                      num_epochs=1)
    updates, state = tx.update(grads, state, params, ctx=ctx, key=jax.random.key(0))
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    assert all(bool(jnp.all(jnp.isfinite(u))) and bool(jnp.any(u != 0)) for u in jax.tree.leaves(updates))

    with pytest.raises(ValueError, match="ctx.activations has 3; give one activity array per layer"):
        tx.update(grads, state, params, ctx=eqx.tree_at(lambda c: c.activations, ctx, activity[:3]),
                  key=jax.random.key(0))
    del static


def test_errors_name_as_optax_and_the_model():
    with pytest.raises(ValueError, match=r"as_optax: LayerProp, Dormancy, StochasticHead need\(s\).*mlp_layout"):
        orl.load_pretrained("breakout").as_optax()
    with pytest.raises(ValueError, match=r"as_optax: LayerProp, Dormancy, StochasticHead"):
        orl.presets.open_().as_optax(orl.ParamLayout.from_tree(eqx.filter(pair(), eqx.is_inexact_array)))
    orl.presets.no_features().as_optax()  # needs no layout
    with pytest.raises(ValueError, match=r"model\['log_std'\] is not inside an eqx.nn.MLP"):
        mlp_layout({**pair(), "log_std": jnp.zeros(2)})
    with pytest.raises(ValueError, match="found none"):
        mlp_layout({"w": 3})
    with pytest.raises(ValueError, match=r"scan=True"):
        mlp_layout({"actor": eqx.nn.MLP(2, 2, 4, 3, scan=True, key=jax.random.key(0))})
