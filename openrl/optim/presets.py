"""Named optimizers: the paper's learned presets and its tuned handcrafted baselines (Tables 4-6)."""

from __future__ import annotations

import inspect
import json
import os

import optax
from jaxtyping import PRNGKeyArray

from openrl.optim.features import BatchProp, Dormancy, Gradient, LayerProp, Momentum, ParamValue, TrainingProp
from openrl.optim.heads import MagnitudeHead, StochasticHead
from openrl.optim.network import SMALL, NetworkSize
from openrl.optim.optim4rl import Optim4RLHead, Optim4RLNetwork, SignLogGradient
from openrl.optim.optimizer import OptaxOptimizer, Optimizer
from openrl.optim.velo import VeLO, load_velo

ADAM_EPS = 1e-5
"""PureJaxRL's Adam epsilon, which the paper's PPO code inherits."""


def open_(size: NetworkSize = SMALL, *, key: PRNGKeyArray | None = None) -> Optimizer:
    """OPEN: all 19 inputs in the released weights' order, and learned actor noise."""
    features = [ParamValue(), Momentum(), Gradient(), TrainingProp(), LayerProp(), BatchProp(), Dormancy()]
    return Optimizer(features, StochasticHead(), size=size, key=key)


def no_features(size: NetworkSize = SMALL, *, key: PRNGKeyArray | None = None) -> Optimizer:
    """The paper's *No Features* baseline: gradient and momentum only (14 inputs), no noise."""
    return Optimizer([Momentum(), Gradient()], MagnitudeHead(), size=size, key=key)


TUNED = {
    "adam": {
        "asterix": dict(learning_rate=0.003, b1=0.9, b2=0.999, anneal=True),
        "freeway": dict(learning_rate=0.001, b1=0.9, b2=0.99, anneal=True),
        "breakout": dict(learning_rate=0.01, b1=0.9, b2=0.99, anneal=True),
        "space_invaders": dict(learning_rate=0.007, b1=0.9, b2=0.99, anneal=True),
        "ant": dict(learning_rate=0.0003, b1=0.99, b2=0.99, anneal=True),
        "gridworld": dict(learning_rate=0.0001, b1=0.99, b2=0.99, anneal=True),
    },
    "rmsprop": {
        "asterix": dict(learning_rate=0.002, decay=0.99, anneal=True),
        "freeway": dict(learning_rate=0.001, decay=0.999, anneal=True),
        "breakout": dict(learning_rate=0.002, decay=0.99, anneal=False),
        "space_invaders": dict(learning_rate=0.009, decay=0.99, anneal=True),
        "ant": dict(learning_rate=0.0008, decay=0.99, anneal=False),
    },
    "lion": {
        "asterix": dict(learning_rate=0.0003, b1=0.99, b2=0.9, anneal=True),
        "freeway": dict(learning_rate=0.0003, b1=0.9, b2=0.9, anneal=True),
        "breakout": dict(learning_rate=0.0008, b1=0.9, b2=0.9, anneal=False),
        "space_invaders": dict(learning_rate=0.0008, b1=0.9, b2=0.99, anneal=True),
        "ant": dict(learning_rate=0.00015, b1=0.9, b2=0.9, anneal=True),
    },
}
"""The paper's tuned hyper-parameters (Tables 4-6), by optimizer and environment."""


def _tuned(optimizer: str, env: str) -> dict:
    table = TUNED[optimizer]
    if env not in table:
        raise ValueError(f"env: no tuned {optimizer} values for {env!r}; expected one of {sorted(table)}")
    return dict(table[env])


def adam(env: str = "breakout") -> OptaxOptimizer:
    """Adam with the paper's tuned values for `env`."""
    return OptaxOptimizer(optax.adam, eps=ADAM_EPS, **_tuned("adam", env))


def rmsprop(env: str = "breakout") -> OptaxOptimizer:
    """RMSprop with the paper's tuned values for `env`."""
    return OptaxOptimizer(optax.rmsprop, **_tuned("rmsprop", env))


def lion(env: str = "breakout") -> OptaxOptimizer:
    """Lion with the paper's tuned values for `env`."""
    return OptaxOptimizer(optax.lion, **_tuned("lion", env))


OPTIM4RL_LR_SCALE = 0.1
"""Optim4RL's learning rate as a multiple of the tuned Adam rate (paper Section 6 and Table 4)."""


def optim4rl(env: str = "breakout", size: NetworkSize = SMALL, *, key: PRNGKeyArray | None = None) -> Optimizer:
    """Optim4RL (Lan et al., 2023) at 0.1 x the tuned Adam learning rate for `env`; `LARGE` for multi-task."""
    learning_rate = OPTIM4RL_LR_SCALE * _tuned("adam", env)["learning_rate"]
    return Optimizer([SignLogGradient()], Optim4RLHead(learning_rate), network=Optim4RLNetwork(size, key=key),
                     zero_mean=False)


def velo(path: str | os.PathLike) -> VeLO:
    """VeLO with the weights of the checkpoint file at `path` (where to get it: `openrl.optim.velo`)."""
    return load_velo(path)


HANDCRAFTED = {"adam": (optax.adam, {"eps": ADAM_EPS}), "rmsprop": (optax.rmsprop, {}), "lion": (optax.lion, {})}
"""Handcrafted optimizers by name: optax constructor and fixed hyper-parameters (Adam's PureJaxRL epsilon)."""

SWEEP_PRESET_VERSION = 1
"""Format version of the preset files `openrl sweep` writes; `from_sweep` refuses others."""


def handcrafted(name: str, *, anneal: bool = False, **hyperparams: float) -> OptaxOptimizer:
    """Adam, RMSprop or Lion (`name` in `HANDCRAFTED`) with the given optax hyper-parameters."""
    if name not in HANDCRAFTED:
        raise ValueError(f"name: expected one of {sorted(HANDCRAFTED)}, got {name!r}")
    factory, fixed = HANDCRAFTED[name]
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(hyperparams) - set(accepted))
    if unknown:
        raise ValueError(f"hyperparams: optax.{factory.__name__} takes no {unknown}; it takes {sorted(accepted)}")
    return OptaxOptimizer(factory, anneal=anneal, **{**fixed, **hyperparams})


def from_sweep(path: str | os.PathLike) -> OptaxOptimizer:
    """The best optimizer an `openrl sweep` found, from the preset file it wrote.

    The file is JSON: `{"version": 1, "optimizer": "adam", "anneal": true, "hyperparams":
    {"learning_rate": ..., "b1": ..., "b2": ...}, "sweep": {...}}`, where `sweep` records the study,
    trial and mean final return the values come from.
    """
    with open(path) as f:
        try:
            preset = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"path: {os.fspath(path)} is not a sweep preset (invalid JSON: {error})") from error
    version = preset.get("version") if isinstance(preset, dict) else None
    if version != SWEEP_PRESET_VERSION:
        raise ValueError(
            f"path: {os.fspath(path)} is not a version-{SWEEP_PRESET_VERSION} sweep preset written by `openrl sweep` "
            f"(found version {version!r})"
        )
    missing = [k for k in ("optimizer", "anneal", "hyperparams") if k not in preset]
    if missing:
        raise ValueError(f"path: sweep preset {os.fspath(path)} lacks {missing}")
    hyperparams = {name: float(value) for name, value in preset["hyperparams"].items()}
    return handcrafted(preset["optimizer"], anneal=bool(preset["anneal"]), **hyperparams)
