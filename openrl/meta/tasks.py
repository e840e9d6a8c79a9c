"""What one fitness evaluation trains on: a task, or a distribution of tasks."""

import abc
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from openrl.optim.optimizer import AbstractOptimizer
from openrl.rl.ppo import PPOConfig, TrainResult, train

DRAW_STREAM = 2**31 - 1
"""`run_own_draw` draws the task from `fold_in(key, DRAW_STREAM)`. Under jax's partitionable threefry
`split(key, n)[i] == fold_in(key, i)`, so a small constant would equal a key the run itself uses
(`fold_in(key, 1)` is `train`'s environment-reset key); no split of a run key reaches this index."""


class Task(eqx.Module):
    """A PPO training problem.

    `sample(key)` draws an environment (a fixed task returns its own); `run` trains
    on it. Environments are PyTrees: sampled parameters are array leaves, so a
    population can be vmapped over sampled environments.
    """

    name: eqx.AbstractVar[str]
    config: eqx.AbstractVar[PPOConfig]

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray) -> PyTree:
        """An environment drawn with `key` (a fixed task returns its own, whatever the key)."""

    def run(self, optimizer: AbstractOptimizer, env: PyTree, key: PRNGKeyArray) -> TrainResult:
        """Train a fresh agent with `optimizer` on `env`."""
        return train(self.config, optimizer, env, key)

    def run_own_draw(self, optimizer: AbstractOptimizer, key: PRNGKeyArray) -> TrainResult:
        """Train on an environment drawn from `key` itself, so seeds of a distribution see different tasks."""
        return self.run(optimizer, self.sample(jax.random.fold_in(key, DRAW_STREAM)), key)


class EnvTask(Task):
    """A single environment with a PPO configuration."""

    env: Any
    config: PPOConfig
    name: str = eqx.field(static=True)

    def sample(self, key):
        return self.env


class DistributionTask(Task):
    """Environments drawn from a distribution by `sampler(key)` (e.g. gridworld parameters)."""

    sampler: Callable[[PRNGKeyArray], Any] = eqx.field(static=True)
    config: PPOConfig
    name: str = eqx.field(static=True)

    def sample(self, key):
        return self.sampler(key)


def make_task(env_name: str, config: PPOConfig, **env_options: Any) -> EnvTask:
    """A task on a registered environment (see `openrl.rl.envs`)."""
    from openrl.rl import envs

    return EnvTask(name=env_name, config=config, env=envs.make(env_name, num_envs=config.num_envs, **env_options))


class MultiTask(eqx.Module):
    """Every member is trained on every task; returns are divided by each task's reference
    return (the paper uses Adam's) and averaged before ranking (paper Section 5.2)."""

    tasks: tuple[Task, ...]
    normalisers: Float[Array, " tasks"]

    def __init__(self, tasks: Sequence[Task], normalisers: Sequence[float]):
        if len(tasks) < 1:
            raise ValueError("tasks: expected at least one Task")
        if len(normalisers) != len(tasks):
            raise ValueError(f"normalisers: expected one per task ({len(tasks)}), got {len(normalisers)}")
        if any(not float(n) > 0 for n in normalisers):
            raise ValueError(f"normalisers: expected positive reference returns, got {list(normalisers)}")
        self.tasks = tuple(tasks)
        self.normalisers = jnp.asarray(normalisers, jnp.float32)

    @property
    def name(self) -> str:
        return "+".join(t.name for t in self.tasks)


def reference_returns(tasks: Sequence[Task], optimizer_for: Callable[[Task], AbstractOptimizer], seeds: int,
                      key: PRNGKeyArray) -> list[float]:
    """Mean final return of a reference optimizer (e.g. tuned Adam) on each task, for `MultiTask`;
    each seed of a distribution trains on its own draw."""
    out = []
    for task in tasks:
        keys = jax.random.split(key, seeds)
        results = eqx.filter_jit(eqx.filter_vmap(lambda k: task.run_own_draw(optimizer_for(task), k)))(keys)
        out.append(float(results.final_return.mean()))
    return out
