"""The meta-training loop: evaluate a population of optimizers, tell the meta-learner, repeat."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Float, PRNGKeyArray, PyTree
from tqdm.auto import tqdm

from openrl import distributed
from openrl.meta.checkpoint import Checkpointer
from openrl.meta.learners import MetaLearner
from openrl.meta.tasks import MultiTask, Task
from openrl.optim.optimizer import AbstractOptimizer
from openrl.optim.saving import save
from openrl.tracking import JsonlLogger, Logger

VALIDATION_STREAM = 2**31 - 1
"""Validation keys are folded from a stream disjoint from the generations' (0, 1, ...)."""
INIT_STREAM = 2**31 - 2
CHECKPOINTS = "checkpoints"
"""Subdirectory of `out_dir` holding a run's checkpoints (see `resumable`)."""


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """How long and how carefully to meta-train.

    - `generations`: ES generations in total (a resumed run continues up to it).
    - `seed`: seed of the whole meta-training run (population noise, tasks, validation).
    - `num_rollouts`: training runs per member, averaged into its fitness.
    - `eval_every`, `eval_seeds`: validate the mean on held-out seeds every so many
      generations; the best validated generation is the result (`0` turns it off).
    - `checkpoint_every`: generations between checkpoints when an output directory is given.
    """

    generations: int = 20
    seed: int = 0
    num_rollouts: int = 1
    eval_every: int = 5
    eval_seeds: int = 4
    checkpoint_every: int = 5

    def __post_init__(self):
        for name in ("generations", "num_rollouts", "eval_seeds", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"MetaConfig.{name}: expected a positive int, got {getattr(self, name)!r}")
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ValueError(f"MetaConfig.eval_every: expected an int >= 0, got {self.eval_every!r}")


class MetaTrainResult(NamedTuple):
    """`best`: the best validated optimizer (the final mean when validation is off); `history`: per generation."""

    best: AbstractOptimizer
    final: AbstractOptimizer
    history: list[dict[str, Any]]


def population_mesh(population_size: int, devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """A 1-D mesh over `devices` (default: every device, all hosts after `jax.distributed.initialize()`)."""
    devices = list(jax.devices() if devices is None else devices)
    if population_size % len(devices):
        raise ValueError(
            f"population_size: {population_size} members cannot be split evenly over {len(devices)} devices; "
            f"use a multiple of {len(devices)}"
        )
    return distributed.mesh_over(devices, "population")


def _sample_envs(task: Task, key: PRNGKeyArray, size: int, paired: bool) -> PyTree:
    """One environment per member; with `paired`, members i and i + size/2 share one."""
    if not jax.tree.leaves(eqx.filter(task.sample(key), eqx.is_array)):
        return task.sample(key)
    envs = eqx.filter_vmap(task.sample)(jax.random.split(key, size // 2 if paired else size))
    return jax.tree.map(lambda x: jnp.concatenate([x, x]), envs) if paired else envs


def task_fitness(task: Task, static: AbstractOptimizer, population: PyTree, key: PRNGKeyArray,
                 num_rollouts: int, paired: bool, mesh: Mesh | None = None) -> Float[Array, " pop"]:
    """Mean final return of each member over `num_rollouts` runs; antithetic pairs share keys.

    With `mesh`, each device trains its own members (`distributed.map_shards`)."""
    size = jax.tree.leaves(population)[0].shape[0]
    env_key, run_key = jax.random.split(key)
    envs = _sample_envs(task, env_key, size, paired)
    half = jax.random.split(run_key, size // 2)
    keys = jnp.concatenate([half, half])

    def member(theta, env, member_key):
        optimizer = eqx.combine(theta, static)
        runs = jax.vmap(lambda k: task.run(optimizer, env, k).final_return)(jax.random.split(member_key, num_rollouts))
        return runs.mean()

    members = eqx.filter_vmap(member)
    return (members if mesh is None else distributed.map_shards(members, mesh))(population, envs, keys)


def fitness(problem: Task | MultiTask, static: AbstractOptimizer, population: PyTree, key: PRNGKeyArray,
            num_rollouts: int, paired: bool, mesh: Mesh | None = None) -> Float[Array, " pop"]:
    """A task's fitness, or for a `MultiTask` the mean over tasks of returns divided by the normalisers."""
    if isinstance(problem, MultiTask):
        keys = jax.random.split(key, len(problem.tasks))
        scores = [task_fitness(t, static, population, k, num_rollouts, paired, mesh)
                  for t, k in zip(problem.tasks, keys)]
        return (jnp.stack(scores, axis=1) / problem.normalisers[None, :]).mean(axis=1)
    return task_fitness(problem, static, population, key, num_rollouts, paired, mesh)


@eqx.filter_jit
def _generation(learner: MetaLearner, problem, static, template, state, key, mesh, num_rollouts):
    ask_key, eval_key, tell_key = jax.random.split(key, 3)
    population, state = learner.ask(ask_key, state, template)
    if mesh.size > 1:
        sharding = NamedSharding(mesh, PartitionSpec("population"))
        population = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), population)
    scores = fitness(problem, static, population, eval_key, num_rollouts, learner.pairs_share_tasks, mesh)
    state, metrics = learner.tell(tell_key, state, population, scores, template)
    return state, scores, metrics


@eqx.filter_jit
def _validate(problem, optimizer, key, seeds: int):
    """Mean final return of `optimizer` over `seeds` held-out runs of each task (normalised for a `MultiTask`)."""
    tasks = problem.tasks if isinstance(problem, MultiTask) else (problem,)
    scores = []
    for i, task in enumerate(tasks):
        env_key, run_key = jax.random.split(jax.random.fold_in(key, i))
        envs = _sample_envs(task, env_key, seeds, paired=False)
        runs = eqx.filter_vmap(lambda env, k: task.run(optimizer, env, k).final_return)(
            envs, jax.random.split(run_key, seeds)
        )
        scores.append(runs.mean())
    scores = jnp.stack(scores)
    if isinstance(problem, MultiTask):
        scores = scores / problem.normalisers
    return scores.mean()


def _searched_arrays(optimizer: AbstractOptimizer, meta_parameters: Callable[[AbstractOptimizer], Any] | None) -> PyTree:
    """A filter spec of `optimizer` (`eqx.partition`'s): True at the floating-point arrays inside
    `meta_parameters(optimizer)` (every one when it is None), False elsewhere."""
    spec = jax.tree.map(eqx.is_inexact_array, optimizer)
    if meta_parameters is None:
        return spec
    try:
        chosen = jax.tree.map(eqx.is_inexact_array, meta_parameters(optimizer))
        spec = eqx.tree_at(meta_parameters, jax.tree.map(lambda _: False, spec), chosen)
    except (AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"meta_parameters: could not select arrays of {type(optimizer).__name__}: {error}") from error
    if not any(jax.tree.leaves(chosen)):
        raise ValueError(f"meta_parameters: selects no floating-point array of {type(optimizer).__name__}")
    return spec


def _fingerprint(learner: MetaLearner, problem, template: PyTree, config: MetaConfig) -> dict[str, Any]:
    settings = dataclasses.asdict(config)
    settings.pop("generations")
    return {
        "learner": repr(learner),
        "task": problem.name,
        "meta_parameters": str(jax.tree.structure(template)),
        "initial_mean": float(sum(jnp.sum(x) for x in jax.tree.leaves(template))),
        "config": json.dumps(settings, sort_keys=True),
    }


@distributed.peer_errors
def meta_train(
    learner: MetaLearner,
    optimizer: AbstractOptimizer,
    problem: Task | MultiTask,
    config: MetaConfig = MetaConfig(),
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    devices: Sequence[jax.Device] | None = None,
    loggers: Sequence[Logger] = (),
    meta_parameters: Callable[[AbstractOptimizer], Any] | None = None,
) -> MetaTrainResult:
    """Meta-train `optimizer`'s array fields with `learner` to maximise final return on `problem`.

    With `out_dir`: checkpoints (atomic, every `config.checkpoint_every` generations),
    `metrics.jsonl` (one line per generation) and `best.eqx` with its spec `best.eqx.json`
    (`openrl.load(os.path.join(out_dir, "best.eqx"))` reads it back); the fitness figure is the
    caller's to draw (`openrl.eval.plot_fitness(result.history, path)`). Every generation's
    record also goes to each of `loggers` (e.g. `openrl.tracking.TensorBoardLogger`), at step
    `generation`; they are not closed here.
    `resume=True` continues from the last checkpoint and gives exactly the numbers of
    an uninterrupted run; an unusable checkpoint is an error, never a silent restart.
    The population is sharded over `devices` (default: all).
    `meta_parameters(optimizer)` picks the arrays to search over (e.g. `lambda o: o.network.output`:
    only the output layer, the rest kept as given); default: every floating-point array.
    """
    if not isinstance(learner, MetaLearner):
        raise TypeError(f"learner: expected an openrl MetaLearner, got {learner!r}")
    if not isinstance(optimizer, AbstractOptimizer):
        raise TypeError(f"optimizer: expected an openrl optimizer, got {optimizer!r}")
    if not isinstance(problem, (Task, MultiTask)):
        raise TypeError(f"problem: expected a Task or MultiTask, got {problem!r}")
    if resume and out_dir is None:
        raise ValueError("resume: needs out_dir, the directory of the run to continue")
    mesh = population_mesh(learner.population_size, devices)
    template, static = eqx.partition(optimizer, _searched_arrays(optimizer, meta_parameters))
    base_key = jax.random.key(config.seed)
    state = learner.init(jax.random.fold_in(base_key, INIT_STREAM), template)
    best, best_score, history, start = template, -jnp.inf, [], 0

    checkpointer = None
    fingerprint = _fingerprint(learner, problem, template, config)
    # Every array a generation reads lives on the population's devices, in every process.
    state, best, template, static, problem = distributed.replicate((state, best, template, static, problem), mesh)
    if out_dir is not None:
        if distributed.is_main():
            os.makedirs(out_dir, exist_ok=True)
        checkpointer = Checkpointer(os.path.join(out_dir, CHECKPOINTS))
        if checkpointer.latest() is not None and not resume:
            raise FileExistsError(
                f"out_dir: {out_dir} already holds a run; pass resume=True (--resume) to continue it, or another directory"
            )
        if resume:
            start, restored, meta = checkpointer.restore(_snapshot(state, best, best_score), fingerprint)
            state, best = distributed.replicate((restored["state"], restored["best"]), mesh)
            best_score = float(restored["best_score"])
            history = meta["history"]
        if distributed.is_main():
            loggers = [JsonlLogger(os.path.join(out_dir, "metrics.jsonl"), step_key="generation", history=history),
                       *loggers]
    loggers = loggers if distributed.is_main() else ()

    bar = tqdm(range(start, config.generations), initial=start, total=config.generations, disable=not progress,
               desc="meta-train", unit="gen")
    for generation in bar:
        tic = time.perf_counter()
        key = distributed.replicate(jax.random.fold_in(base_key, generation), mesh)
        state, scores, metrics = _generation(learner, problem, static, template, state, key, mesh,
                                             config.num_rollouts)
        scores, metrics = distributed.to_host((scores, metrics))
        finite = scores[np.isfinite(scores)]
        record = {
            "generation": generation + 1,
            "fitness_mean": float(finite.mean()) if finite.size else float("nan"),
            "fitness_max": float(finite.max()) if finite.size else float("nan"),
            "non_finite": int(metrics["non_finite"]),
            "sigma": float(metrics["sigma"]),
        }
        if config.eval_every and ((generation + 1) % config.eval_every == 0 or generation + 1 == config.generations):
            mean = learner.mean(state, template)
            key = distributed.replicate(jax.random.fold_in(base_key, VALIDATION_STREAM), mesh)
            score = float(distributed.to_host(_validate(problem, eqx.combine(mean, static), key, config.eval_seeds)))
            record["validation"] = score
            if score > best_score:
                best, best_score = mean, score
        record["seconds"] = time.perf_counter() - tic
        history.append(record)
        bar.set_postfix(fit_mean=f"{record['fitness_mean']:.3g}", fit_max=f"{record['fitness_max']:.3g}",
                        sigma=f"{record['sigma']:.3g}", s_per_gen=f"{record['seconds']:.1f}")
        for logger in loggers:
            logger.log({k: v for k, v in record.items() if k != "generation"}, step=generation + 1)
        if out_dir is not None:
            if (generation + 1) % config.checkpoint_every == 0 or generation + 1 == config.generations:
                checkpointer.save(
                    generation + 1,
                    _snapshot(state, best, best_score),
                    {"fingerprint": fingerprint, "history": history},
                )
    bar.close()

    final = distributed.to_local(eqx.combine(learner.mean(state, template), static))
    best_optimizer = distributed.to_local(eqx.combine(best, static)) if config.eval_every else final
    if out_dir is not None and distributed.is_main():
        save(best_optimizer, os.path.join(out_dir, "best.eqx"))  # with its spec: `openrl.load` reads it back
    return MetaTrainResult(best_optimizer, final, history)


def _snapshot(state: PyTree, best: PyTree, best_score: float) -> dict[str, Any]:
    """What a checkpoint holds, as host arrays: process 0 alone writes them, every process reads them back."""
    return distributed.to_host({"state": state, "best": best, "best_score": np.asarray(best_score, np.float32)})


def resumable(out_dir: str | os.PathLike) -> bool:
    """Whether `out_dir` holds a checkpointed run that `meta_train(..., resume=True)` can try to continue."""
    directory = os.path.join(out_dir, CHECKPOINTS)
    return os.path.isdir(directory) and Checkpointer(directory).latest() is not None

