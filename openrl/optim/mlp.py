"""Layouts and activation capture for models made of `eqx.nn.MLP`s, for learned optimizers in optax loops.

A learned optimizer such as OPEN needs to know which network and layer each parameter array belongs
to (`mlp_layout`) and, for its dormancy input, each layer's mean |activation| per neuron
(`mlp_activity`). For an actor/critic pair kept in a module, tuple or dict:

    model = {"actor": eqx.nn.MLP(4, 2, 64, 2, key=k1), "critic": eqx.nn.MLP(4, 1, 64, 2, key=k2)}
    tx = orl.load_pretrained("breakout").as_optax(mlp_layout(model))
    ...
    logits, actor_activity = mlp_activity(model["actor"], obs)
    values, critic_activity = mlp_activity(model["critic"], obs)
    ctx = orl.Context(..., activations=actor_activity + critic_activity)

Each MLP's network name is its name in the model (a field or dict key; `network` for a bare MLP or
one in a tuple),
so the one called "actor" gets OPEN's learned exploration noise. Activities go in the order the
MLPs appear in the model's leaves (`mlp_names(model)`), one array per layer, output layer included.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from openrl.optim.layout import LeafInfo, ParamLayout


def _is_mlp(x) -> bool:
    return isinstance(x, eqx.nn.MLP)


def _check_mlp(mlp: eqx.nn.MLP, where: str) -> None:
    if mlp.scan:
        raise ValueError(f"{where}: eqx.nn.MLP(scan=True) stacks its hidden layers; build it with scan=False")
    if mlp.in_size == "scalar" or mlp.out_size == "scalar":
        raise ValueError(f"{where}: an eqx.nn.MLP with in_size or out_size 'scalar' is not supported; use size 1")


def _named_mlps(model: PyTree, network: str) -> list[tuple[str, eqx.nn.MLP]]:
    """Every MLP of `model` in leaf order, with its name: the first key of its path, or `network`."""
    found = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(model, is_leaf=_is_mlp):
        if _is_mlp(leaf):
            key = path[0] if path else None
            name = key.name if isinstance(key, jax.tree_util.GetAttrKey) else (
                key.key if isinstance(key, jax.tree_util.DictKey) and isinstance(key.key, str) else network)
            _check_mlp(leaf, f"model{jax.tree_util.keystr(path)}")
            found.append((name, leaf))
        elif eqx.is_inexact_array(leaf):
            raise ValueError(
                f"mlp_layout: the parameter model{jax.tree_util.keystr(path)} is not inside an eqx.nn.MLP; "
                "describe it with a LeafInfo yourself (`ParamLayout.from_tree(params, infos)`)"
            )
    if not found:
        raise ValueError(f"mlp_layout: expected a model holding eqx.nn.MLPs, found none in {type(model).__name__}")
    return found


def mlp_names(model: PyTree, network: str = "critic") -> tuple[str, ...]:
    """The network name of each MLP of `model`, in the order `mlp_layout` counts their layers."""
    return tuple(name for name, _ in _named_mlps(model, network))


def mlp_layout(model: PyTree, network: str = "critic") -> ParamLayout:
    """The layout of `eqx.filter(model, eqx.is_inexact_array)` for a model made of `eqx.nn.MLP`s.

    Layer i of an MLP named N (its field or key in `model`; `network` for a bare MLP) is
    `LeafInfo(N, i, layers, neuron_layer=k)`, k counting the layers of all MLPs in leaf order,
    so `ctx.activations` is their `mlp_activity` outputs concatenated in that order.
    """
    infos, first = [], 0
    for name, mlp in _named_mlps(model, network):
        n = len(mlp.layers)
        for i, layer in enumerate(mlp.layers):
            info = LeafInfo(name, i, n, neuron_layer=first + i, neuron_axis=0)
            infos += [info] * (1 + (layer.bias is not None))
        first += n
    return ParamLayout.from_tree(eqx.filter(model, eqx.is_inexact_array), infos)


def mlp_activity(
    mlp: eqx.nn.MLP, x: Float[Array, "batch in"]
) -> tuple[Float[Array, "batch out"], tuple[Float[Array, " _width"], ...]]:
    """`jax.vmap(mlp)(x)`, and per layer the mean |activation| of each neuron over the batch (after the
    layer's activation; the output layer's after `final_activation`), as OPEN's dormancy reads it."""
    _check_mlp(mlp, "mlp_activity")

    def one(row):
        activity = []
        for i, layer in enumerate(mlp.layers):
            row = layer(row)
            last = i == len(mlp.layers) - 1
            act = mlp.final_activation if last else jax.tree.map(
                lambda a, i=i: a[i] if eqx.is_array(a) else a, mlp.activation)
            row = eqx.filter_vmap(lambda f, v: f(v))(act, row)
            activity.append(row)
        return row, tuple(activity)

    y, activity = jax.vmap(one)(x)
    return y, tuple(jnp.abs(a).mean(axis=0) for a in activity)
