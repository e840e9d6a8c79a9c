"""`openrl quickstart`: meta-train OPEN from scratch on a small task, then compare it with tuned Adam.

The comparison is honest by construction: the Adam it compares against is the best trial of an
`openrl sweep` study at exactly the quickstart's task and budget (shipped as
`openrl/sweeps/adam-CartPole-v1.json`; the command that made it is on docs/benchmarks.md), the
evaluation seeds are disjoint from every seed meta-training and validation use
(`tests/test_quickstart.py`), and the Adam in the printed table is the object that ran.

Why these settings and not the paper's (`OpenES()` defaults, Table 7): see
docs/benchmarks.md, "Meta-learning". In short, the paper's ES runs for hundreds of generations
on a GPU; here the whole job has 15 minutes on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import os
import time

import equinox as eqx
import jax
import jax.numpy as jnp

from openrl.meta import MetaConfig, OpenES, make_task, meta_train
from openrl.meta.tasks import Task, tuned_adam
from openrl.optim import presets
from openrl.optim.optimizer import AbstractOptimizer, Optimizer
from openrl.rl.ppo import PPOConfig

ENV = "CartPole-v1"
TOTAL_TIMESTEPS = 32_768
"""The quickstart's task: CartPole-v1 under `PPOConfig.cartpole()` (16 PPO iterations)."""

LEARNER = OpenES(population_size=32, sigma_init=0.1, learning_rate=0.3, lr_decay=0.97)
"""The quickstart's ES, the best setting of docs/benchmarks.md's "Meta-learning" study. The paper's
σ = lr = 0.03 (`OpenES()`'s defaults) are for hundreds of generations; in 16, lr 0.1 stalled at a
held-out IQM of 198 where lr 0.3 reached 304 (a faster decay, 0.9, and 20 generations: 238)."""

META = MetaConfig(generations=16, num_rollouts=1, eval_every=4, eval_seeds=8, checkpoint_every=4)
"""Generations, rollouts per member and validation cadence of the quickstart's meta-training
(about 10 CPU-minutes with the evaluation: 7.4 min of wall time on an idle 2-core CPU)."""

EVAL_SEED = 12_345
"""Base seed of the held-out evaluation: `evaluate` trains on `split(key(EVAL_SEED), seeds)`, a stream
disjoint from meta-training's `key(META.seed)` (checked by tests/test_quickstart.py)."""

INIT_SEED = 0
"""Seed of the initial optimizer's random hidden layers (see `initial_optimizer`)."""

def initial_optimizer(key: jax.Array | None = None) -> Optimizer:
    """OPEN with equinox's random initialisation in its GRU and hidden layers and a zero output layer.

    Like the paper's all-zero start it makes no update at all (every network output is zero),
    but the ES gradient is not: with all-zero meta-parameters every hidden activation is zero,
    only the output bias acts and zero-meaning removes the update it makes, so the first
    generations see only high-order effects and the mean random-walks (docs/benchmarks.md).
    With random hidden layers the output layer is a linear read-out of features of each
    parameter's gradient history, and its first ES step already has signal.
    """
    optimizer = presets.open_(key=jax.random.key(INIT_SEED) if key is None else key)
    return eqx.tree_at(lambda o: (o.network.output.weight, o.network.output.bias), optimizer,
                       replace_fn=jnp.zeros_like)


def quickstart_task(env: str = ENV, total_timesteps: int | None = None) -> Task:
    """The quickstart's task: `env` with its PPO preset (CartPole: `PPOConfig.cartpole()`) at `total_timesteps`."""
    from openrl.shell import ppo_preset_for

    if env == ENV and total_timesteps is None:
        total_timesteps = TOTAL_TIMESTEPS
    overrides = {} if total_timesteps is None else {"total_timesteps": total_timesteps}
    return make_task(env, getattr(PPOConfig, ppo_preset_for(env))(**overrides))


def meta_learn_and_compare(task: Task, reference: tuple[str, AbstractOptimizer], seeds: int, out_dir: str, *,
                           learner: OpenES = LEARNER, meta: MetaConfig = META, initial: Optimizer | None = None,
                           resume: bool = False, progress: bool = True):
    """Meta-train `initial` on `task`, then evaluate the best validated optimizer and `reference` on
    `seeds` held-out seeds (base seed `EVAL_SEED`); returns `(report, meta-training result)`."""
    from openrl.eval.evaluation import evaluate
    from openrl.eval.plots import plot_fitness

    initial = initial_optimizer() if initial is None else initial
    result = meta_train(learner, initial, task, meta, out_dir=os.path.join(out_dir, "meta"), resume=resume,
                        progress=progress)
    plot_fitness(result.history, os.path.join(out_dir, "meta", "fitness.png"))
    label, adam = reference
    report = evaluate({"OPEN (learned)": result.best, label: adam}, task, seeds, seed=EVAL_SEED,
                      out_dir=os.path.join(out_dir, "eval"), reference=label, progress=progress, analysis=False)
    return report, result


def comparison_lines(report, reference: str) -> list[str]:
    """IQM table and P(learned > reference) with its 95% CI."""
    from openrl.eval import stats

    learned, adam = report.scores("OPEN (learned)", report.tasks[0]), report.scores(reference, report.tasks[0])
    p = stats.probability_of_improvement(learned[:, None], adam[:, None])
    return [report.table(), "", f"P(OPEN (learned) > {reference}) = {p.estimate:.2f} [{p.lower:.2f}, {p.upper:.2f}] "
            f"(95% CI) over {len(learned)} held-out seeds"]


def run_quickstart(out_dir: str, *, env: str = ENV, total_timesteps: int | None = None,
                   generations: int | None = None, population: int | None = None, seeds: int | None = None,
                   adam: str | os.PathLike | None = None, resume: bool = False) -> str:
    """Meta-train, evaluate on held-out seeds, print the table; returns the summary's path."""
    seeds = 16 if seeds is None else seeds
    task = quickstart_task(env, total_timesteps)
    reference = tuned_adam(task, adam)
    learner = LEARNER if population is None else dataclasses.replace(LEARNER, population_size=population)
    meta = META if generations is None else dataclasses.replace(META, generations=generations)
    start = time.perf_counter()
    print(f"Meta-training OPEN from scratch on {task.name} ({task.config.total_timesteps} steps per run), "
          f"population {learner.population_size}, {meta.generations} generations")
    print(f"Comparing with {reference[0]}: {_describe(reference[1])}")
    from openrl.shell import print_budget

    steps = task.config.total_timesteps
    print_budget("meta-training", [("generations", meta.generations), ("members", learner.population_size),
                                   ("rollouts", meta.num_rollouts)], steps)
    print_budget("evaluation", [("optimizers", 2), ("seeds", seeds)], steps)
    report, _ = meta_learn_and_compare(task, reference, seeds, out_dir, learner=learner, meta=meta, resume=resume)
    print("\n".join(comparison_lines(report, reference[0])))
    print(f"\nwall time {time.perf_counter() - start:.0f} s; report: {out_dir}/eval/summary.md, returns.png; "
          f"meta-training curve: {out_dir}/meta/fitness.png")
    return os.path.join(out_dir, "eval", "summary.md")


def _describe(optimizer: AbstractOptimizer) -> str:
    values = ", ".join(f"{k}={float(v):.4g}" for k, v in getattr(optimizer, "hyperparams", {}).items())
    return f"{values}, anneal={getattr(optimizer, 'anneal', None)}"
