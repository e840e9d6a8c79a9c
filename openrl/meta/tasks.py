"""What one fitness evaluation trains on: a task, or a distribution of tasks."""

import abc
import dataclasses
import importlib.resources
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from openrl.optim import presets
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


SWEPT_ADAM = {"CartPole-v1": "adam-CartPole-v1.json"}
"""`openrl sweep` presets shipped in `openrl/sweeps/` (the quickstart's task), by environment."""


def shipped_sweep(env: str) -> dict[str, Any]:
    """The `openrl sweep` preset shipped for Adam on `env` (see `SWEPT_ADAM`)."""
    if env not in SWEPT_ADAM:
        raise ValueError(f"env: no shipped Adam sweep for {env!r}; shipped: {sorted(SWEPT_ADAM)}")
    return json.loads(importlib.resources.files("openrl").joinpath("sweeps", SWEPT_ADAM[env]).read_text())


def _ppo_settings(config: PPOConfig) -> dict[str, Any]:
    """The PPO settings as an `openrl sweep` preset records them (plain JSON values)."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return {k: v.item() if isinstance(v, (np.ndarray, jax.Array)) else v for k, v in values.items()}


def _paper_game(env: str) -> str | None:
    """The paper's name (`presets.TUNED`) of a MinAtar game, Ant or the gridworlds, else None."""
    names = {"SpaceInvaders-MinAtar": "space_invaders", "ant": "ant"}
    game = names.get(env, env.removesuffix("-MinAtar").lower() if env.endswith("-MinAtar") else None)
    if game is None and "gridworld" in env.lower():
        game = "gridworld"
    return game if game in presets.TUNED["adam"] else None


def tuned_adam(task: Task, preset: str | os.PathLike | None = None) -> tuple[str, AbstractOptimizer]:
    """The Adam to compare `task`'s optimizers with, and its label.

    `preset`: a file `openrl sweep` wrote, which must have been swept on exactly `task` (its
    environment and every PPO setting, budget included). Without it: the shipped sweep for the
    environment ("Adam (tuned)" if swept at `task`'s settings), else the paper's tuned values for the
    environment (Tables 4-6); a label says when the values were not tuned at this budget. Other
    environments are an error that says how to sweep.
    """
    sweep_command = (f"openrl sweep --optimizer adam --env {task.name} --total-timesteps "
                     f"{task.config.total_timesteps} --preset adam.json")
    if preset is not None:
        with open(preset) as f:
            found = json.load(f).get("sweep", {})
        mine = _ppo_settings(task.config)
        if found.get("task") != task.name or found.get("ppo") != mine:
            theirs = found.get("ppo") or {}
            differing = ["env"] if found.get("task") != task.name else []
            differing += sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
            raise ValueError(f"adam: {os.fspath(preset)} was swept on {found.get('task')!r} with other settings "
                             f"(differs in {differing}); sweep this task: {sweep_command}")
        return "Adam (tuned)", presets.from_sweep(preset)
    if task.name in SWEPT_ADAM:
        shipped = shipped_sweep(task.name)
        values = {k: float(v) for k, v in shipped["hyperparams"].items()}
        adam = presets.handcrafted("adam", anneal=bool(shipped["anneal"]), **values)
        if shipped["sweep"]["ppo"] == _ppo_settings(task.config):
            return "Adam (tuned)", adam
        return f"Adam (swept at {shipped['sweep']['ppo']['total_timesteps']} steps, not tuned at this budget)", adam
    game = _paper_game(task.name)
    if game is None:
        raise ValueError(f"env: no tuned Adam for {task.name} at {task.config.total_timesteps} steps; run "
                         f"`{sweep_command}` and pass the preset it writes")
    return f"Adam (paper's values for {game}, not tuned at this budget)", presets.adam(game)


NORMALISERS = "normalisers.json"
"""Where `adam_normalisers` keeps a run's normalisers, in its output directory."""


def adam_normalisers(tasks: Sequence[Task], given: Mapping[str, float], out_dir: str | os.PathLike | None, *,
                     seeds: int = 8, key: PRNGKeyArray | None = None) -> list[float]:
    """Each task's normaliser for `MultiTask` fitness (paper Section 5.2): `given[task.name]`, else the
    value stored in `out_dir/normalisers.json` by an earlier call, else measured once as tuned Adam's
    mean final return over `seeds` runs (`tuned_adam`) and stored there with how it was measured."""
    names = [t.name for t in tasks]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"normalisers: {unknown} are not among the tasks {names}")
    path = None if out_dir is None else os.path.join(out_dir, NORMALISERS)
    stored = {}
    if path is not None and os.path.exists(path):
        with open(path) as f:
            stored = json.load(f)["normalisers"]
    missing = [t for t in tasks if t.name not in given and t.name not in stored]
    if missing:
        key = jax.random.key(0) if key is None else key
        adams = {t.name: tuned_adam(t) for t in missing}
        measured = reference_returns(missing, lambda t: adams[t.name][1], seeds, key)
        stored = {**stored, **{t.name: {"value": v, "optimizer": adams[t.name][0], "seeds": seeds}
                               for t, v in zip(missing, measured)}}
    values = [float(given[n]) if n in given else float(stored[n]["value"]) for n in names]
    if path is not None:
        os.makedirs(out_dir, exist_ok=True)
        record = {"normalisers": {n: stored.get(n, {}) if n not in given else {"value": float(given[n]),
                                                                               "optimizer": "given"} for n in names}}
        with open(path + ".tmp", "w") as f:
            json.dump(record, f, indent=2)
        os.replace(path + ".tmp", path)
    return values
