"""Named optimizers: the paper's learned presets and its tuned handcrafted baselines (Tables 4-6)."""

from __future__ import annotations

import optax
from jaxtyping import PRNGKeyArray

from openrl.optim.features import BatchProp, Dormancy, Gradient, LayerProp, Momentum, ParamValue, TrainingProp
from openrl.optim.heads import MagnitudeHead, StochasticHead
from openrl.optim.network import SMALL, NetworkSize
from openrl.optim.optimizer import OptaxOptimizer, Optimizer

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
