"""VeLO (Metz et al., 2022): a per-tensor LSTM hyper-network producing the weights of a per-parameter MLP.

Followed: `learned_optimization/research/general_lopt/hyper_v2.py` (`HyperV2`) with the settings of
the published VeLO checkpoint (`prefab.py`'s default `aug12_continue_on_bigger_2xbs_200kstep_bigproblem_v2_5620`,
whose `config.gin` sets `lstm_hidden_size=512`, `param_inits=256`, `use_bugged_loss_features=False`;
every other setting at its default) and the accumulators of `learned_optimizers/common.py`.

**Weights.** They are not on any package index; download the checkpoint file
`https://storage.googleapis.com/gresearch/learned_optimization/pretrained_lopts/aug12_continue_on_bigger_2xbs_200kstep_bigproblem_v2_5620/params`
(`gs://gresearch/...` for `gsutil`) and pass its path to `load_velo` (or `presets.velo`, `openrl ... velo`).
The file is the published format: flax msgpack (`flax.serialization.to_bytes`) of
`ParameterCheckpoint(params=theta, gen_id, step)`, `theta` holding Haiku parameters
(`lstm_init_state`, `rnn_params`, `ff_mod_stack`; see `theta_shapes`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from openrl.optim.layout import Context, ParamLayout
from openrl.optim.optimizer import AbstractOptimizer

LSTM_HIDDEN_SIZE = 512
PARAM_INITS = 256
"""The published checkpoint's sizes."""

MOMENTUM_DECAYS = (0.9, 0.99, 0.999)
RMS_DECAYS = (0.999,)
ADAFACTOR_DECAYS = (0.9, 0.99, 0.999)
FF_HIDDEN_SIZE = 4
FF_HIDDEN_LAYERS = 2
FF_OUTPUTS = 3
EXP_MULT = 1e-3
STEP_MULT = 1e-3
FF_INPUT_GROUPS = (1, 1, 1, 3, 1, 3, 1, 3, 1, 3, 3, 3, 3, 3)
"""Widths of the per-parameter MLP's input groups: g, clip(g), p, m, rms, m/√rms, 1/√rms, factored g,
g/√rms, then the factored row and column accumulators, their rsqrt, and the factored momentum."""
LSTM_INPUTS = 30
"""Per-tensor features: training fraction (9), loss features (9), mean rms (1), rank (5), var m (3), var rms (3)."""
LOSS_FEATURE_DECAYS = 10
FRACTION_TIMESCALES = (0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1)


def theta_shapes(
    lstm_hidden_size: int = LSTM_HIDDEN_SIZE, param_inits: int = PARAM_INITS
) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Every array of a VeLO checkpoint's `theta`, by key path, with its shape.

    Haiku names: `linear` is built but unused by the published forward pass (its output is
    overwritten), kept so checkpoints round-trip; `rnn/~/linear` is the LSTM's gate matrix.
    """
    h, k = lstm_hidden_size, param_inits
    shapes: dict[tuple[str, ...], tuple[int, ...]] = {
        ("lstm_init_state", "hidden"): (1, h),
        ("lstm_init_state", "cell"): (1, h),
    }
    for name, (fan_in, fan_out) in {
        "linear": (LSTM_INPUTS, h), "linear_1": (LSTM_INPUTS, h), "linear_2": (LSTM_INPUTS, h),
        "rnn/~/linear": (2 * h, 4 * h), "rnn_to_controls": (h, k), "step_size": (h, 1),
    }.items():
        shapes[("rnn_params", name, "w")] = (fan_in, fan_out)
        shapes[("rnn_params", name, "b")] = (fan_out,)
    for i, width in enumerate(FF_INPUT_GROUPS):
        shapes[("ff_mod_stack", "~", f"w0__{i}")] = (k, width, FF_HIDDEN_SIZE)
    widths = [FF_HIDDEN_SIZE] * FF_HIDDEN_LAYERS + [FF_OUTPUTS]
    for i, width in enumerate(widths):
        if i:
            shapes[("ff_mod_stack", "~", f"w{i}")] = (k, widths[i - 1], width)
        shapes[("ff_mod_stack", "~", f"b{i}")] = (k, width)
    return shapes


def _flatten(tree: Mapping, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    flat = {}
    for name, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix + (name,)))
        else:
            flat[prefix + (name,)] = value
    return flat


def _unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = value
    return tree


def _check_theta(theta: Mapping) -> dict[tuple[str, ...], Any]:
    """`theta` flattened, after checking it has exactly the arrays of `theta_shapes` for its sizes."""
    flat = _flatten(theta)
    controls = flat.get(("rnn_params", "rnn_to_controls", "w"))
    if controls is None or np.ndim(controls) != 2:
        raise ValueError(
            "theta: expected VeLO's Haiku parameters with a 2-D rnn_params/rnn_to_controls/w "
            f"[lstm_hidden_size, param_inits], got {None if controls is None else np.shape(controls)}"
        )
    expected = theta_shapes(*np.shape(controls))
    missing = sorted("/".join(p) for p in expected.keys() - flat.keys())
    extra = sorted("/".join(p) for p in flat.keys() - expected.keys())
    wrong = sorted(
        f"{'/'.join(p)}: got {np.shape(flat[p])}, expected {shape}"
        for p, shape in expected.items() if p in flat and np.shape(flat[p]) != shape
    )
    if missing or extra or wrong:
        raise ValueError(
            f"theta: not a VeLO checkpoint of lstm_hidden_size={np.shape(controls)[0]}, "
            f"param_inits={np.shape(controls)[1]}: missing {missing}, unexpected {extra}, wrong shapes {wrong}"
        )
    return flat


@functools.partial(jax.jit, static_argnames=("lstm_hidden_size", "param_inits"))
def init_theta(
    key: PRNGKeyArray, *, lstm_hidden_size: int = LSTM_HIDDEN_SIZE, param_inits: int = PARAM_INITS
) -> dict:
    """Fresh meta-parameters as `HyperV2.init` draws them: truncated normal (±2σ, σ = 1/√fan-in), zero
    biases and LSTM state; for a checkpoint to meta-train from, or to test with. (One compiled call.)"""
    for name, value in (("lstm_hidden_size", lstm_hidden_size), ("param_inits", param_inits)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    shapes = theta_shapes(lstm_hidden_size, param_inits)
    keys = jax.random.split(key, len(shapes))
    flat = {}
    for (path, shape), k in zip(shapes.items(), keys):
        if path[-1].startswith("w"):
            fan_in = sum(FF_INPUT_GROUPS) if path[-1].startswith("w0__") else shape[-2]
            flat[path] = jax.random.truncated_normal(k, -2.0, 2.0, shape, jnp.float32) / np.sqrt(fan_in)
        else:
            flat[path] = jnp.zeros(shape, jnp.float32)
    return _unflatten(flat)


class VeLOState(eqx.Module):
    """VeLO's state: per-tensor accumulators (in `jax.tree.leaves` order), LSTM state, loss buffer, step."""

    momentum: tuple[Float[Array, "..."], ...]
    rms: tuple[Float[Array, "..."], ...]
    factored: tuple[tuple[Float[Array, "..."], ...], ...]
    lstm_hidden: Float[Array, "t h"]
    lstm_cell: Float[Array, "t h"]
    loss_means: Float[Array, " d"]
    loss_min: Float[Array, " d"]
    iteration: Int[Array, ""]


def factored_dims(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """The two largest axes (second largest, largest) of a tensor of rank >= 2, else None."""
    if len(shape) < 2:
        return None
    order = np.argsort(shape)
    return int(order[-2]), int(order[-1])


def _at_least_1d(x: Float[Array, "..."]) -> Float[Array, "..."]:
    """Scalars run as 1-element vectors, as published (the statistics VeLO computes are the same)."""
    return x.reshape(1) if x.ndim == 0 else x


def _clip_log_abs(v: Float[Array, "..."], scale: float) -> Float[Array, "..."]:
    return jnp.clip(jnp.log(1e-8 + jnp.abs(v * scale)), -5.0, 5.0) * 0.5


def _safe_rsqrt(x: Float[Array, "..."]) -> Float[Array, "..."]:
    return jax.lax.rsqrt(jnp.maximum(x, 1e-9))


def _loss_decays(num_updates: int) -> np.ndarray:
    return np.exp(-1.0 / np.logspace(1, np.log10(num_updates), LOSS_FEATURE_DECAYS)).astype(np.float32)


def _update_loss_buffer(
    state: VeLOState, loss: Float[Array, ""], decays: np.ndarray
) -> tuple[Float[Array, " d"], Float[Array, " d"], Float[Array, " f"]]:
    """The rolling loss means and minima after `loss`, and VeLO's loss features from them."""
    t = state.iteration.astype(jnp.float32)
    correction = 1.0 - decays ** (t + 1.0)
    approx_max = jnp.where(state.iteration == 0, loss, jnp.max(state.loss_means / correction))
    loss = jnp.minimum(jnp.abs(approx_max) * 2.0, loss)
    means = state.loss_means * decays + loss * (1.0 - decays)
    running_min = jnp.minimum(state.loss_min, means / correction)
    corrected = means / correction
    spread = jnp.maximum(1e-8, corrected[1:] - running_min[:-1])
    features = jnp.clip((corrected[:-1] - running_min[:-1]) / spread - 1.0, -1.0, 1.0)
    return means, running_min, jnp.where(state.iteration + 1 <= 2, 0.0 * features, features)


def _tensor_features(
    p: Float[Array, "..."], m: Float[Array, "..."], rms: Float[Array, "..."],
    fraction: Float[Array, ""], loss_features: Float[Array, " f"],
) -> Float[Array, " 30"]:
    """The LSTM's inputs for one tensor, in the published (sorted-name) order."""
    norm = jax.lax.rsqrt(jnp.maximum(1e-9, jnp.mean(p**2)))
    m, rms = m * norm, rms * norm
    axes = tuple(range(p.ndim))
    mean_m = jnp.mean(m, axis=axes, keepdims=True)
    timescales = jnp.asarray(FRACTION_TIMESCALES, jnp.float32)
    features = [
        jnp.tanh((fraction - timescales) * 10.0),
        loss_features,
        _clip_log_abs(jnp.mean(rms, axis=axes).reshape(1), 10.0),
        jax.nn.one_hot(sum(d > 1 for d in p.shape), 5, dtype=jnp.float32),
        _clip_log_abs(jnp.mean((m - mean_m) ** 2, axis=axes), 10.0),
        # The published code centres rms on the momentum's mean here; kept for the released weights.
        _clip_log_abs(jnp.mean((rms - mean_m) ** 2, axis=axes), 10.0),
    ]
    return jnp.concatenate(features)


def _factored_update(
    accumulators: tuple[Float[Array, "..."], ...], g: Float[Array, "..."]
) -> tuple[tuple[Float[Array, "..."], ...], Float[Array, "..."]]:
    """Adafactor-style accumulators (row/column for rank >= 2, full otherwise) and the factored gradient."""
    decays = jnp.asarray(ADAFACTOR_DECAYS, jnp.float32)
    grad_sqr = (g * g + 1e-30)[..., None]
    dims = factored_dims(g.shape)
    if dims is None:
        (v,) = accumulators
        d = _last_axis(decays, v)
        v = d * v + (1.0 - d) * grad_sqr
        return (v,), g[..., None] * _safe_rsqrt(v + 1e-9)
    d1, d0 = dims
    v_row, v_col = accumulators
    d = _last_axis(decays, v_row)
    v_row = d * v_row + (1.0 - d) * jnp.mean(grad_sqr, axis=d0)
    v_col = d * v_col + (1.0 - d) * jnp.mean(grad_sqr, axis=d1)
    return (v_row, v_col), g[..., None] * _row_col_factor(v_row, v_col, dims)


def _row_col_factor(
    v_row: Float[Array, "..."], v_col: Float[Array, "..."], dims: tuple[int, int]
) -> Float[Array, "..."]:
    d1, d0 = dims
    reduced_d1 = d1 - 1 if d1 > d0 else d1
    row_factor = _safe_rsqrt(v_row / (jnp.mean(v_row, axis=reduced_d1, keepdims=True) + 1e-9))
    return jnp.expand_dims(row_factor, d0) * jnp.expand_dims(_safe_rsqrt(v_col), d1)


def _last_axis(v: Float[Array, " c"], like: Float[Array, "..."]) -> Float[Array, "..."]:
    """`v` shaped to broadcast along the last axis of `like` (explicitly: rank promotion may be off)."""
    return v.reshape((1,) * (like.ndim - 1) + (-1,))


def _normalise(x: Float[Array, "... c"]) -> Float[Array, "... c"]:
    axes = tuple(range(x.ndim - 1))
    return x * jax.lax.rsqrt(1e-5 + jnp.mean(x * x, axis=axes, keepdims=True))


class VeLO(AbstractOptimizer):
    """VeLO behind openrl's interface; `theta` is the published Haiku parameter tree (its arrays are
    the meta-parameters). Needs `Context(loss=..., num_updates=...)`, which `openrl.rl.ppo.train` gives.

    Load the released weights with `load_velo(path)`; see the module docstring for where to get them.
    """

    theta: dict[str, Any]

    def __init__(self, theta: Mapping):
        flat = _check_theta(theta)
        self.theta = _unflatten({p: jnp.asarray(v, jnp.float32) for p, v in flat.items()})

    @property
    def lstm_hidden_size(self) -> int:
        return self.theta["rnn_params"]["rnn_to_controls"]["w"].shape[0]

    @property
    def param_inits(self) -> int:
        return self.theta["rnn_params"]["rnn_to_controls"]["w"].shape[1]

    def init(self, params: PyTree, layout: ParamLayout | None = None) -> VeLOState:
        leaves = [_at_least_1d(jnp.asarray(p, jnp.float32)) for p in jax.tree.leaves(params)]
        factored = []
        for p in leaves:
            dims = factored_dims(p.shape)
            if dims is None:
                factored.append((jnp.zeros(p.shape + (len(ADAFACTOR_DECAYS),), jnp.float32),))
            else:
                d1, d0 = dims
                factored.append(tuple(
                    jnp.zeros(tuple(np.delete(p.shape, d)) + (len(ADAFACTOR_DECAYS),), jnp.float32) for d in (d0, d1)
                ))
        lstm = self.theta["lstm_init_state"]
        return VeLOState(
            momentum=tuple(jnp.zeros(p.shape + (len(MOMENTUM_DECAYS),), jnp.float32) for p in leaves),
            rms=tuple(jnp.zeros(p.shape + (len(RMS_DECAYS),), jnp.float32) for p in leaves),
            factored=tuple(factored),
            lstm_hidden=jnp.tile(lstm["hidden"], (len(leaves), 1)),
            lstm_cell=jnp.tile(lstm["cell"], (len(leaves), 1)),
            loss_means=jnp.zeros((LOSS_FEATURE_DECAYS,), jnp.float32),
            loss_min=jnp.full((LOSS_FEATURE_DECAYS,), 999999999999.0, jnp.float32),
            iteration=jnp.zeros((), jnp.int32),
        )

    def _lstm(
        self, x: Float[Array, "t 30"], hidden: Float[Array, "t h"], cell: Float[Array, "t h"]
    ) -> tuple[Float[Array, "t k"], Float[Array, " t"], Float[Array, "t h"], Float[Array, "t h"]]:
        """The per-tensor LSTM (with a max-pool over tensors mixed in): controls, step multipliers, state."""
        rnn = self.theta["rnn_params"]
        dense = lambda name, y: y @ rnn[name]["w"] + rnn[name]["b"][None, :]  # noqa: E731
        mixed = jnp.max(jax.nn.relu(dense("linear_1", x)), axis=0, keepdims=True)
        x = dense("linear_2", x) + mixed
        i, g, f, o = jnp.split(dense("rnn/~/linear", jnp.concatenate([x, hidden], axis=1)), 4, axis=1)
        cell = jax.nn.sigmoid(f + 1.0) * cell + jax.nn.sigmoid(i) * jnp.tanh(g)
        hidden = jax.nn.sigmoid(o) * jnp.tanh(cell)
        return dense("rnn_to_controls", hidden), dense("step_size", hidden)[:, 0], hidden, cell

    def _step(
        self, control: Float[Array, " k"], step_mult: Float[Array, ""], p: Float[Array, "..."], g: Float[Array, "..."],
        m: Float[Array, "..."], rms: Float[Array, "..."], fac_g: Float[Array, "..."],
        factored: tuple[Float[Array, "..."], ...],
    ) -> Float[Array, "..."]:
        """The per-parameter MLP, its weights interpolated by `control`, for one tensor: the step p -> p - step."""
        ff = {name: 100.0 * jnp.tensordot(control, w, axes=1) / control.shape[0]
              for name, w in self.theta["ff_mod_stack"]["~"].items()}
        col = lambda x: x[..., None]  # noqa: E731
        rsqrt = jax.lax.rsqrt(rms + 1e-6)
        inputs = [col(g), col(jnp.clip(g, -0.1, 0.1)), col(p), m, rms, m * rsqrt, rsqrt, fac_g, col(g) * rsqrt]
        dims = factored_dims(p.shape)
        if dims is None:
            (v,) = factored
            inputs += [v, v, jax.lax.rsqrt(v + 1e-8), jax.lax.rsqrt(v + 1e-8), m * v**-0.5]
        else:
            d1, d0 = dims
            rows = jnp.broadcast_to(jnp.expand_dims(factored[0], d0), m.shape)
            cols = jnp.broadcast_to(jnp.expand_dims(factored[1], d1), m.shape)
            inputs += [rows, cols, jax.lax.rsqrt(rows + 1e-8), jax.lax.rsqrt(cols + 1e-8),
                       m * _row_col_factor(factored[0], factored[1], dims)]
        x = jnp.concatenate([_normalise(i) for i in inputs], axis=-1)
        w0 = jnp.concatenate([ff[f"w0__{i}"] for i in range(len(FF_INPUT_GROUPS))], axis=0)
        y = jax.nn.relu(x @ w0 + _last_axis(ff["b0"], x))
        for i in range(1, FF_HIDDEN_LAYERS):
            y = jax.nn.relu(y @ ff[f"w{i}"] + _last_axis(ff[f"b{i}"], y))
        out = y @ ff[f"w{FF_HIDDEN_LAYERS}"] + _last_axis(ff[f"b{FF_HIDDEN_LAYERS}"], y)
        param_scale = jnp.sqrt(jnp.mean(p**2) + 1e-9)
        return out[..., 0] * param_scale * jnp.exp(out[..., 1] * EXP_MULT) * STEP_MULT * step_mult

    def update(self, grads, state: VeLOState, params, *, ctx: Context, key):
        if ctx.loss is None or ctx.num_updates is None:
            raise ValueError(
                "ctx: VeLO needs the minibatch loss and the run's number of updates: pass "
                "`ctx=Context(loss=..., num_updates=...)` (openrl.rl.ppo.train does)"
            )
        leaves, treedef = jax.tree.flatten(grads)
        grad_leaves = [_at_least_1d(jnp.clip(g, -1000.0, 1000.0)) for g in leaves]
        param_leaves = [_at_least_1d(p) for p in jax.tree.leaves(params)]
        loss_means, loss_min, loss_features = _update_loss_buffer(
            state, jnp.asarray(ctx.loss, jnp.float32), _loss_decays(ctx.num_updates)
        )
        fraction = state.iteration.astype(jnp.float32) / ctx.num_updates
        lstm_inputs = jnp.stack([
            _tensor_features(p, m, r, fraction, loss_features)
            for p, m, r in zip(param_leaves, state.momentum, state.rms)
        ])
        controls, step_mults, hidden, cell = self._lstm(lstm_inputs, state.lstm_hidden, state.lstm_cell)
        mom_decays = jnp.asarray(MOMENTUM_DECAYS, jnp.float32)
        rms_decays = jnp.asarray(RMS_DECAYS, jnp.float32)
        momentum, rms, factored, updates = [], [], [], []
        for i, (p, g) in enumerate(zip(param_leaves, grad_leaves)):
            d = _last_axis(mom_decays, state.momentum[i])
            m = d * state.momentum[i] + (1.0 - d) * g[..., None]
            d = _last_axis(rms_decays, state.rms[i])
            r = d * state.rms[i] + (1.0 - d) * (g * g)[..., None]
            fac, fac_g = _factored_update(state.factored[i], g)
            step = self._step(controls[i], step_mults[i], p, g, m, r, fac_g, fac)
            momentum.append(m)
            rms.append(r)
            factored.append(fac)
            updates.append((-step).reshape(leaves[i].shape).astype(leaves[i].dtype))
        new_state = VeLOState(tuple(momentum), tuple(rms), tuple(factored), hidden, cell, loss_means, loss_min,
                              state.iteration + 1)
        return jax.tree.unflatten(treedef, updates), new_state


def _restore_lstm_state(state: Mapping) -> Mapping:
    """An `LSTMState` as flax serialised it: `{hidden, cell}`, or the pre-2022 `{name, fields, values}`."""
    if set(state) == {"name", "fields", "values"}:
        return {state["fields"][str(i)]: state["values"][str(i)] for i in range(len(state["fields"]))}
    return state


def load_velo(path: str | os.PathLike) -> VeLO:
    """VeLO with the weights of a checkpoint file in the published format (see the module docstring)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"path: no VeLO checkpoint at {os.fspath(path)!r}; download the published one from "
            "https://storage.googleapis.com/gresearch/learned_optimization/pretrained_lopts/"
            "aug12_continue_on_bigger_2xbs_200kstep_bigproblem_v2_5620/params"
        )
    from flax import serialization  # imported on first use: `import openrl` stays light

    with open(path, "rb") as f:
        data = f.read()
    try:
        checkpoint = serialization.msgpack_restore(data)
    except Exception as error:
        raise ValueError(f"path: {os.fspath(path)} is not a flax msgpack checkpoint ({error})") from error
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("params"), Mapping):
        raise ValueError(
            f"path: {os.fspath(path)} is not a VeLO ParameterCheckpoint: expected a mapping with 'params', "
            f"got {type(checkpoint).__name__} with keys {sorted(checkpoint) if isinstance(checkpoint, Mapping) else []}"
        )
    theta = dict(checkpoint["params"])
    if isinstance(theta.get("lstm_init_state"), Mapping):
        theta["lstm_init_state"] = _restore_lstm_state(theta["lstm_init_state"])
    try:
        return VeLO(theta)
    except ValueError as error:
        raise ValueError(f"{os.fspath(path)}: {error}") from error


def save_velo(velo: VeLO, path: str | os.PathLike, *, gen_id: str = "", step: int = 0) -> None:
    """Write `velo` in the published checkpoint format (flax msgpack of a `ParameterCheckpoint`)."""
    from flax import serialization

    theta = jax.tree.map(np.asarray, velo.theta)
    with open(path, "wb") as f:
        f.write(serialization.msgpack_serialize({"params": theta, "gen_id": gen_id, "step": step}))
