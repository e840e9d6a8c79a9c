"""Run optimizers on tasks over seeds, keep the raw results, and write a report."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from tqdm.auto import tqdm

from openrl.eval import stats
from openrl.eval.plots import plot_curves
from openrl.meta.tasks import Task
from openrl.optim.optimizer import AbstractOptimizer

RESULTS_VERSION = 1
"""Bumped whenever the stored row format changes; older files are refused, not misread."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: its optimizer, task, seed, final return and curves per PPO iteration."""

    optimizer: str
    task: str
    seed: int
    final_return: float
    returns: list[float]
    dormancy: list[float]
    steps_per_iteration: int


@dataclasses.dataclass(frozen=True)
class Report:
    """All runs of an evaluation, with per-optimizer statistics (IQM with 95% bootstrap CIs)."""

    runs: list[Run]
    summary: dict[str, dict[str, stats.Interval]]

    def scores(self, optimizer: str, task: str) -> np.ndarray:
        """Final returns `[seeds]` of `optimizer` on `task`, by seed."""
        runs = sorted((r for r in self.runs if r.optimizer == optimizer and r.task == task), key=lambda r: r.seed)
        return np.array([r.final_return for r in runs])

    def table(self) -> str:
        """A Markdown table of final-return IQM, mean and median with their 95% CIs."""
        lines = ["| optimizer | IQM [95% CI] | mean [95% CI] | median [95% CI] |", "|---|---|---|---|"]
        for name, intervals in self.summary.items():
            cells = [f"{i.estimate:.2f} [{i.lower:.2f}, {i.upper:.2f}]" for i in
                     (intervals["iqm"], intervals["mean"], intervals["median"])]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _tasks(tasks: Task | Sequence[Task]) -> list[Task]:
    tasks = [tasks] if isinstance(tasks, Task) else list(tasks)
    for i, task in enumerate(tasks):
        if not isinstance(task, Task):
            raise TypeError(f"tasks[{i}]: expected an openrl Task, got {task!r}")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks: names must be unique, got {names}")
    return tasks


def _load_runs(path: str) -> list[Run]:
    if not os.path.exists(path):
        return []
    runs = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            row = json.loads(line)
            if row.get("version") != RESULTS_VERSION:
                raise ValueError(
                    f"{path}:{number}: results of format version {row.get('version')!r}, expected {RESULTS_VERSION}; "
                    "use another output directory"
                )
            row.pop("version")
            runs.append(Run(**row))
    return runs


def _append_runs(path: str, runs: list[Run]) -> None:
    with open(path, "a") as f:
        for run in runs:
            f.write(json.dumps({"version": RESULTS_VERSION, **dataclasses.asdict(run)}) + "\n")
        f.flush()
        os.fsync(f.fileno())


@eqx.filter_jit
def _train_seeds(task: Task, optimizer: AbstractOptimizer, keys: jax.Array):
    env = task.sample(keys[0])
    results = eqx.filter_vmap(lambda k: task.run(optimizer, env, k))(keys)
    return results.final_return, results.returns, results.dormancy


def evaluate(
    optimizers: Mapping[str, AbstractOptimizer],
    tasks: Task | Sequence[Task],
    seeds: int,
    *,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Report:
    """Train every optimizer on every task over `seeds` seeds (vmapped; the same seeds for all).

    With `out_dir`: `results.jsonl` (one tidy row per run), `summary.md`, `returns.png` and
    `dormancy.png`. Runs already in `results.jsonl` are reused, so an interrupted or repeated
    evaluation only computes what is missing.
    """
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: expected a positive int, got {seeds!r}")
    if not optimizers:
        raise ValueError("optimizers: expected at least one named optimizer")
    for name, optimizer in optimizers.items():
        if not isinstance(optimizer, AbstractOptimizer):
            raise TypeError(f"optimizers[{name!r}]: expected an openrl optimizer, got {optimizer!r}")
    tasks = _tasks(tasks)
    path = None if out_dir is None else os.path.join(out_dir, "results.jsonl")
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    runs = _load_runs(path) if path else []
    done = {(r.optimizer, r.task, r.seed) for r in runs}
    keys = jax.random.split(jax.random.key(seed), seeds)
    jobs = [(n, t) for t in tasks for n in optimizers if any((n, t.name, s) not in done for s in range(seeds))]
    for name, task in tqdm(jobs, desc="evaluate", disable=not progress or not jobs):
        final, returns, dormancy = (np.asarray(x) for x in _train_seeds(task, optimizers[name], keys))
        new = [
            Run(name, task.name, s, float(final[s]), returns[s].tolist(), dormancy[s].tolist(), task.config.batch_size)
            for s in range(seeds) if (name, task.name, s) not in done
        ]
        runs.extend(new)
        if path:
            _append_runs(path, new)
    runs = [r for r in runs if r.seed < seeds and r.optimizer in optimizers and r.task in {t.name for t in tasks}]
    report = Report(runs, _summarise(runs, list(optimizers), [t.name for t in tasks], seeds))
    if out_dir is not None:
        _write_report(report, out_dir, list(optimizers), tasks)
    return report


def _summarise(runs: list[Run], optimizers: list[str], tasks: list[str], seeds: int) -> dict[str, dict[str, Any]]:
    summary = {}
    for name in optimizers:
        scores = np.zeros((seeds, len(tasks)))
        for r in runs:
            if r.optimizer == name:
                scores[r.seed, tasks.index(r.task)] = r.final_return
        summary[name] = stats.aggregate(scores)
    return summary


def _write_report(report: Report, out_dir: str | os.PathLike, optimizers: list[str], tasks: list[Task]) -> None:
    lines = ["# Evaluation", "", f"Final return over {len({r.seed for r in report.runs})} seeds per optimizer"
             f" on {', '.join(t.name for t in tasks)}; IQM, mean and median with 95% stratified-bootstrap CIs.",
             "", report.table(), ""]
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write("\n".join(lines))
    for field, ylabel in (("returns", "mean episode return"), ("dormancy", "τ=0 dormant fraction")):
        for task in tasks:
            curves = {
                name: np.array([getattr(r, field) for r in sorted(report.runs, key=lambda r: r.seed)
                                if r.optimizer == name and r.task == task.name])
                for name in optimizers
            }
            suffix = "" if len(tasks) == 1 else f"_{task.name}"
            plot_curves(curves, os.path.join(out_dir, f"{field}{suffix}.png"), ylabel=ylabel,
                        steps_per_point=task.config.batch_size)
