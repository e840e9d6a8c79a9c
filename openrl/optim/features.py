"""Inputs of a learned optimizer, computed per parameter from gradients, state and context."""

from __future__ import annotations

import abc
import dataclasses
import itertools
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from openrl import plugins
from openrl.optim.layout import Context, ParamLayout

LOG_EPS = 1e-13
NORM_EPS = 1e-5
MOMENTUM_DECAYS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)


class FeatureInputs(eqx.Module):
    """Everything a feature may read: flat gradient and parameters, layout and context."""

    grad: Float[Array, " n"]
    param: Float[Array, " n"]
    ctx: Context
    layout: ParamLayout = eqx.field(static=True)


class Feature(eqx.Module):
    """One group of optimizer inputs (abstract: subclasses implement `__call__`).

    Subclasses declare, as class variables, `num_channels` (an int; a property where the count
    depends on the feature's settings) and whether their channels take the per-tensor
    second-moment normalisation (`normalise`); optionally which `Context` fields or `extras`
    they read (`requires`) and whether they need the agent's layout (`needs_layout`).
    `FeatureSet` checks these declarations when an optimizer is built, and each feature's
    output shape when it is first traced, naming the feature's class and package.
    """

    num_channels: ClassVar[int]
    normalise: ClassVar[bool]
    requires: ClassVar[tuple[str, ...]] = ()
    needs_layout: ClassVar[bool] = False

    def init(self, layout: ParamLayout) -> PyTree:
        """The feature's state for a run over parameters described by `layout` (None: stateless)."""
        return None

    @abc.abstractmethod
    def __call__(self, inputs: FeatureInputs, state: PyTree) -> tuple[Float[Array, "c n"], PyTree]:
        """Channels `[num_channels, n]` (parameters on the last, contiguous axis) and the new state."""


def _sign_log(x: Float[Array, "k n"]) -> Float[Array, "2*k n"]:
    return jnp.concatenate([jnp.sign(x), jnp.log(jnp.abs(x) + LOG_EPS)], axis=0)


def _broadcast(value: Float[Array, ""], n: int) -> Float[Array, "1 n"]:
    return jnp.broadcast_to(jnp.asarray(value, jnp.float32), (1, n))


class ParamValue(Feature):
    """The parameter's current value."""

    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = True

    def __call__(self, inputs, state):
        return inputs.param[None, :], state


class Gradient(Feature):
    """sign(g) and log(|g| + 1e-13)."""

    num_channels: ClassVar[int] = 2
    normalise: ClassVar[bool] = True

    def __call__(self, inputs, state):
        return _sign_log(inputs.grad[None, :]), state


class Momentum(Feature):
    """Momentum m_b = b·m_b + (1 - b)·g at several timescales: all signs, then all logs."""

    decays: tuple[float, ...] = eqx.field(static=True, default=MOMENTUM_DECAYS)
    normalise: ClassVar[bool] = True

    def __check_init__(self):
        if not self.decays or not all(0.0 <= b < 1.0 for b in self.decays):
            raise ValueError(f"Momentum: decays must be a non-empty tuple in [0, 1), got {self.decays}")

    @property
    def num_channels(self) -> int:
        return 2 * len(self.decays)

    def init(self, layout):
        return jnp.zeros((len(self.decays), layout.num_params), jnp.float32)

    def __call__(self, inputs, state):
        decays = jnp.asarray(self.decays, jnp.float32)[:, None]
        momentum = decays * state + (1.0 - decays) * inputs.grad[None, :]
        return _sign_log(momentum), momentum


class TrainingProp(Feature):
    """How far training is through its batches: iteration / (num_iterations - 1)."""

    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ("iteration", "num_iterations")

    def __call__(self, inputs, state):
        ctx = inputs.ctx
        value = ctx.iteration / max(ctx.num_iterations - 1, 1)
        return _broadcast(value, inputs.layout.num_params), state


class BatchProp(Feature):
    """How far the update is through its passes over one batch: epoch / (num_epochs - 1)."""

    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ("epoch", "num_epochs")

    def __call__(self, inputs, state):
        ctx = inputs.ctx
        value = ctx.epoch / max(ctx.num_epochs - 1, 1)
        return _broadcast(value, inputs.layout.num_params), state


class LayerProp(Feature):
    """The parameter's layer index / (layers - 1) within its network."""

    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = False
    needs_layout: ClassVar[bool] = True

    def __call__(self, inputs, state):
        return jnp.asarray(inputs.layout.layer_proportion())[None, :], state


def neuron_scores(activations: tuple[Float[Array, " _width"], ...]) -> Float[Array, " neurons"]:
    """Dormancy score s_i = a_i / mean(a) of every neuron, layer by layer (0 in an all-zero layer)."""
    scores = []
    for act in activations:
        layer_mean = act.mean()
        scores.append(jnp.where(layer_mean > 0, act / jnp.where(layer_mean > 0, layer_mean, 1.0), 0.0))
    return jnp.concatenate(scores)


class Dormancy(Feature):
    """Dormancy score of the neuron downstream of the parameter (paper eq. 6); 1 for a parameter
    that feeds no neuron (`LeafInfo.neuron_layer=None`)."""

    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ("activations",)
    needs_layout: ClassVar[bool] = True

    def __call__(self, inputs, state):
        activations = inputs.ctx.activations
        index = inputs.layout.neuron_index(tuple(a.shape[0] for a in activations))
        scores = jnp.concatenate([neuron_scores(activations), jnp.ones(1)])
        return scores[index][None, :], state


def normalise_per_tensor(x: Float[Array, "c n"], layout: ParamLayout) -> Float[Array, "c n"]:
    """`x * rsqrt(1e-5 + mean(x**2))`, the mean taken per channel over each parameter tensor.

    One slice per tensor, each scaled by its own statistics and written straight into the result:
    XLA fuses the slices into the concatenation, where broadcasting the means back to `[c, n]` and
    multiplying afterwards (or gathering them) ran ~8x slower on CPU.
    """
    bounds = np.cumsum((0,) + layout.sizes)
    parts = [x[:, start:stop] for start, stop in itertools.pairwise(bounds)]
    return jnp.concatenate(
        [part * jax.lax.rsqrt(NORM_EPS + jnp.mean(jnp.square(part), axis=1, keepdims=True)) for part in parts], axis=1
    )


def _check_declarations(feature: Feature, where: str) -> None:
    """The class variables `feature`'s class must declare, each of the right type."""
    who = f"{where}: {plugins.origin(feature)}"
    normalise = getattr(type(feature), "normalise", None)
    if not isinstance(normalise, bool):
        raise TypeError(
            f"{who} declares no `normalise` class variable (got {normalise!r}); add `normalise: ClassVar[bool] = True` "
            "to normalise its channels per tensor, or `= False` (e.g. for values that are constant within a tensor)"
        )
    channels = getattr(feature, "num_channels", None)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise TypeError(
            f"{who} declares `num_channels` = {channels!r}; expected a positive int, the number of rows it returns "
            "(`num_channels: ClassVar[int] = 1`)"
        )
    requires = getattr(type(feature), "requires", None)
    if not isinstance(requires, tuple) or not all(isinstance(name, str) for name in requires):
        raise TypeError(f"{who} declares `requires` = {requires!r}; expected a tuple of Context field or extras names")
    if not isinstance(getattr(type(feature), "needs_layout", None), bool):
        raise TypeError(f"{who} declares `needs_layout` = {type(feature).needs_layout!r}; expected a bool")


def _check_output(feature: Feature, x: Any, n: int) -> None:
    """`x` is `feature`'s output of shape `[num_channels, n]` (checked while tracing, so it costs nothing)."""
    expected = (feature.num_channels, n)
    if getattr(x, "shape", None) != expected:
        hint = " (return `x[None, :]` for a single channel)" if getattr(x, "shape", None) == (n,) else ""
        raise ValueError(
            f"{plugins.origin(feature)} returned channels of shape {getattr(x, 'shape', type(x).__name__)}; expected "
            f"{expected}: `num_channels` = {feature.num_channels} rows, one column per parameter{hint}"
        )


_CONTEXT_FIELDS = frozenset(field.name for field in dataclasses.fields(Context)) - {"extras"}


class FeatureSet(eqx.Module):
    """Features stacked in the given order, normalised where they ask for it.

    A class may appear several times with different settings (e.g. two `Momentum`s with other decays).
    """

    features: tuple[Feature, ...]

    def __init__(self, features: list[Feature] | tuple[Feature, ...]):
        features = tuple(features)
        if not features:
            raise ValueError("features: expected at least one Feature, got an empty list")
        for i, feature in enumerate(features):
            if not isinstance(feature, Feature):
                raise TypeError(f"features[{i}]: expected an openrl Feature instance, got {feature!r}")
            _check_declarations(feature, f"features[{i}]")
            for j in range(i):
                if features[j] == feature:
                    raise ValueError(
                        f"features[{i}]: {feature!r} repeats features[{j}] with the same settings, which would give "
                        "the same channels twice; drop one, or give it other settings"
                    )
        self.features = features

    @property
    def num_channels(self) -> int:
        return sum(f.num_channels for f in self.features)

    @property
    def needs_layout(self) -> bool:
        return any(f.needs_layout for f in self.features)

    def check_context(self, ctx: Context) -> None:
        """Raise if `ctx` lacks a field or extra some feature reads (at trace time, before compiling)."""
        for feature in self.features:
            missing = [name for name in feature.requires if name in _CONTEXT_FIELDS and getattr(ctx, name) is None]
            if missing:
                raise ValueError(
                    f"ctx: {type(feature).__name__} needs Context fields {missing}, which are None; "
                    f"pass e.g. `ctx=Context({', '.join(f'{m}=...' for m in missing)})`"
                )
            extras = [name for name in feature.requires if name not in _CONTEXT_FIELDS and name not in ctx.extras]
            if extras:
                raise ValueError(
                    f"ctx: {type(feature).__name__} needs Context extras {extras}, which the training loop did not add; "
                    f"pass e.g. `ctx=Context(..., extras={{{', '.join(f'{e!r}: ...' for e in extras)}}})`"
                )

    def init(self, layout: ParamLayout) -> tuple[Any, ...]:
        if self.needs_layout:
            layout.require_infos(", ".join(type(f).__name__ for f in self.features if f.needs_layout))
        return tuple(f.init(layout) for f in self.features)

    def __call__(self, inputs: FeatureInputs, states: tuple[Any, ...]) -> tuple[Float[Array, "c n"], tuple]:
        outputs = [feature(inputs, state) for feature, state in zip(self.features, states)]
        for feature, (x, _) in zip(self.features, outputs):
            _check_output(feature, x, inputs.layout.num_params)
        normalised = [x for (x, _), f in zip(outputs, self.features) if f.normalise]
        if normalised:
            # One per-tensor pass over every channel that asks for it, then back into feature order.
            stacked = jnp.concatenate(normalised, axis=0)
            stacked = normalise_per_tensor(stacked, inputs.layout)
            normalised = iter(jnp.split(stacked, np.cumsum([x.shape[0] for x in normalised])[:-1], axis=0))
        columns = [next(normalised) if f.normalise else x for (x, _), f in zip(outputs, self.features)]
        return jnp.concatenate(columns, axis=0), tuple(state for _, state in outputs)
