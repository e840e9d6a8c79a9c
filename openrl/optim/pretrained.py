"""Load and save the paper's released OPEN weights (flat Flax parameter vectors)."""

from __future__ import annotations

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from openrl.optim.network import LARGE, SMALL, NetworkSize, PerParameterNetwork
from openrl.optim.optimizer import Optimizer
from openrl.optim.presets import open_

SIZES = {1211: SMALL, 3571: LARGE}
"""Released vector length -> network size."""


def _flax_tree(net: PerParameterNetwork) -> dict:
    """The network's parameters in the released Flax layout (kernels are x @ kernel)."""
    h = net.hidden_size
    w_ih, w_hh, b = net.gru.weight_ih.T, net.gru.weight_hh.T, net.gru.bias
    gru = {
        "ir": {"bias": b[:h], "kernel": w_ih[:, :h]},
        "iz": {"bias": b[h : 2 * h], "kernel": w_ih[:, h : 2 * h]},
        "in": {"bias": b[2 * h :], "kernel": w_ih[:, 2 * h :]},
        "hr": {"kernel": w_hh[:, :h]},
        "hz": {"kernel": w_hh[:, h : 2 * h]},
        "hn": {"bias": net.gru.bias_n, "kernel": w_hh[:, 2 * h :]},
    }
    mlp = {}
    for i, (layer, norm) in enumerate(zip(net.hidden_layers, net.norms)):
        mlp[f"layers_{3 * i}"] = {"bias": layer.bias, "kernel": layer.weight.T}
        mlp[f"layers_{3 * i + 1}"] = {"bias": norm.bias, "scale": norm.weight}
    mlp[f"layers_{3 * len(net.norms)}"] = {"bias": net.output.bias, "kernel": net.output.weight.T}
    return {"gru_params": {"params": gru}, "params": {"params": mlp}}


def _from_flax_tree(net: PerParameterNetwork, tree: dict) -> PerParameterNetwork:
    gru, mlp = tree["gru_params"]["params"], tree["params"]["params"]
    cat = lambda *xs: jnp.concatenate(xs, axis=-1)  # noqa: E731
    n = len(net.norms)
    where = lambda m: (  # noqa: E731
        m.gru.weight_ih, m.gru.weight_hh, m.gru.bias, m.gru.bias_n, m.output.weight, m.output.bias,
        *(layer.weight for layer in m.hidden_layers), *(layer.bias for layer in m.hidden_layers),
        *(norm.weight for norm in m.norms), *(norm.bias for norm in m.norms),
    )
    dense = [mlp[f"layers_{3 * i}"] for i in range(n)]
    norms = [mlp[f"layers_{3 * i + 1}"] for i in range(n)]
    values = (
        cat(gru["ir"]["kernel"], gru["iz"]["kernel"], gru["in"]["kernel"]).T,
        cat(gru["hr"]["kernel"], gru["hz"]["kernel"], gru["hn"]["kernel"]).T,
        cat(gru["ir"]["bias"], gru["iz"]["bias"], gru["in"]["bias"]),
        gru["hn"]["bias"],
        mlp[f"layers_{3 * n}"]["kernel"].T,
        mlp[f"layers_{3 * n}"]["bias"],
        *(d["kernel"].T for d in dense), *(d["bias"] for d in dense),
        *(x["scale"] for x in norms), *(x["bias"] for x in norms),
    )
    return eqx.tree_at(where, net, values)


def to_vector(optimizer: Optimizer) -> np.ndarray:
    """The optimizer's network as the released flat float32 vector."""
    flat, _ = ravel_pytree(_flax_tree(optimizer.network))
    return np.asarray(flat, np.float32)


def from_vector(vector: np.ndarray, optimizer: Optimizer) -> Optimizer:
    """`optimizer` with its network parameters replaced by a released flat vector."""
    template = _flax_tree(optimizer.network)
    _, unravel = ravel_pytree(template)
    expected = sum(np.size(x) for x in jax.tree.leaves(template))
    if vector.shape != (expected,):
        raise ValueError(f"vector: expected shape ({expected},) for this optimizer, got {vector.shape}")
    network = _from_flax_tree(optimizer.network, unravel(jnp.asarray(vector)))
    return eqx.tree_at(lambda o: o.network, optimizer, network)


def load_pretrained(path: str | os.PathLike) -> Optimizer:
    """OPEN with the released weights in `path` (a `.npy` flat float32 vector of 1211 or 3571 numbers)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no pretrained weights file at {os.fspath(path)!r}")
    vector = np.load(path, allow_pickle=False)
    if vector.dtype != np.float32 or vector.ndim != 1 or vector.shape[0] not in SIZES:
        raise ValueError(
            f"{os.fspath(path)}: expected a flat float32 vector of length {' or '.join(map(str, SIZES))} "
            f"(small or large OPEN), got dtype {vector.dtype} and shape {vector.shape}"
        )
    size: NetworkSize = SIZES[vector.shape[0]]
    return from_vector(vector, open_(size))


def save_pretrained(optimizer: Optimizer, path: str | os.PathLike) -> None:
    """Write the optimizer's network in the released format."""
    np.save(path, to_vector(optimizer), allow_pickle=False)
