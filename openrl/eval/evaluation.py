"""Run optimizers on tasks over seeds, keep the raw results, and write a report."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from tqdm.auto import tqdm

from openrl.eval import stats
from openrl.meta.tasks import Task
from openrl.optim.optimizer import AbstractOptimizer

RESULTS_VERSION = 3
"""Bumped whenever the stored rows' format or meaning changes; older files are refused, not misread.
(3: returns are each environment's last finished episode's return, as OPEN's code logs them.)"""


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: its optimizer, task, seed, final return and curves per PPO iteration.

    `stats` holds the update-analysis curves of Appendix F (`openrl.rl.analysis.STAT_NAMES`);
    `fingerprint` identifies the optimizer's values, the task's configuration and the base seed.
    """

    optimizer: str
    task: str
    seed: int
    final_return: float
    returns: list[float]
    dormancy: list[float]
    steps_per_iteration: int
    stats: dict[str, list[float]]
    fingerprint: str


@dataclasses.dataclass(frozen=True)
class Report:
    """All runs of an evaluation, with per-optimizer statistics over all tasks (IQM with 95% bootstrap CIs).

    `optimizers` and `tasks` are the names in the order they were given; `reference` is the
    optimizer others are normalised by and compared with (see `openrl.eval.report`).
    """

    runs: list[Run]
    summary: dict[str, dict[str, stats.Interval]]
    optimizers: list[str]
    tasks: list[str]
    reference: str

    def _runs(self, optimizer: str, task: str) -> list[Run]:
        return sorted((r for r in self.runs if r.optimizer == optimizer and r.task == task), key=lambda r: r.seed)

    def scores(self, optimizer: str, task: str) -> np.ndarray:
        """Final returns `[seeds]` of `optimizer` on `task`, by seed."""
        return np.array([r.final_return for r in self._runs(optimizer, task)])

    def curves(self, optimizer: str, task: str, quantity: str) -> np.ndarray:
        """`[seeds, iterations]` curves of `quantity`: "returns", "dormancy" or an analysis stat name."""
        runs = self._runs(optimizer, task)
        if quantity in ("returns", "dormancy"):
            return np.array([getattr(r, quantity) for r in runs])
        return np.array([r.stats[quantity] for r in runs])

    def steps_per_iteration(self, task: str) -> int:
        """Environment steps per curve point on `task`."""
        return next(r.steps_per_iteration for r in self.runs if r.task == task)

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


def _fingerprint(optimizer: AbstractOptimizer, task: Task, seed: int) -> str:
    """A digest of the optimizer's values and structure, the task's name and configuration, and the base seed."""
    digest = hashlib.sha256()
    # tree_pformat, unlike a treedef's str, names functions without their (per-process) addresses.
    description = eqx.tree_pformat(optimizer, short_arrays=True)
    digest.update(f"{description}|{task.name}|{eqx.tree_pformat(task.config)}|{seed}".encode())
    for leaf in jax.tree.leaves(eqx.filter(optimizer, eqx.is_array)):
        digest.update(np.asarray(leaf).tobytes())
    return digest.hexdigest()[:16]


def _recording(task: Task) -> Task:
    """`task` with the update analysis of Appendix F switched on (it does not change the training)."""
    return eqx.tree_at(lambda t: t.config, task, dataclasses.replace(task.config, record_stats=True))


@eqx.filter_jit
def _train_seeds(task: Task, optimizer: AbstractOptimizer, keys: jax.Array):
    """Each seed trains on its own draw of the task (a fixed task is the same environment for all)."""
    results = eqx.filter_vmap(lambda k: task.run_own_draw(optimizer, k))(keys)
    return results.final_return, results.returns, results.dormancy, results.stats


def evaluate(
    optimizers: Mapping[str, AbstractOptimizer],
    tasks: Task | Sequence[Task],
    seeds: int,
    *,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    reference: str | None = None,
    progress: bool = True,
    seeds_per_call: int | None = None,
    analysis: bool = True,
) -> Report:
    """Train every optimizer on every task over `seeds` seeds (vmapped; the same seeds for all).

    With `analysis`, every run also records the update analysis of Appendix F (it costs time,
    not results). `seeds_per_call` vmaps that many seeds per compiled call (default: all),
    storing each call's runs as it ends, so long evaluations lose at most one call's work
    and can pick a batch size that suits the machine. `reference` names the optimizer
    the report normalises by and compares with (default: "Adam" if given, else the first).
    With `out_dir`: `results.jsonl` (one tidy row per run) and the report of
    `openrl.eval.report.write_report` (`summary.md` and PNG figures). Runs already in
    `results.jsonl` are reused, so an interrupted or repeated evaluation only computes what is
    missing; stored runs made with other optimizer values, task settings or base seed are an error.
    """
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: expected a positive int, got {seeds!r}")
    if seeds_per_call is None:
        seeds_per_call = seeds
    if not isinstance(seeds_per_call, int) or seeds_per_call < 1:
        raise ValueError(f"seeds_per_call: expected a positive int or None, got {seeds_per_call!r}")
    if not optimizers:
        raise ValueError("optimizers: expected at least one named optimizer")
    for name, optimizer in optimizers.items():
        if not isinstance(optimizer, AbstractOptimizer):
            raise TypeError(f"optimizers[{name!r}]: expected an openrl optimizer, got {optimizer!r}")
    if reference is None:
        reference = "Adam" if "Adam" in optimizers else next(iter(optimizers))
    elif reference not in optimizers:
        raise ValueError(f"reference: {reference!r} is not one of the optimizers {list(optimizers)}")
    tasks = [_recording(t) if analysis else t for t in _tasks(tasks)]
    path = None if out_dir is None else os.path.join(out_dir, "results.jsonl")
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    runs = _load_runs(path) if path else []
    fingerprints = {(n, t.name): _fingerprint(optimizers[n], t, seed) for t in tasks for n in optimizers}
    for r in runs:
        if fingerprints.get((r.optimizer, r.task), r.fingerprint) != r.fingerprint:
            raise ValueError(
                f"out_dir: {path} holds runs of {r.optimizer!r} on {r.task!r} made with other optimizer values, "
                "task settings or base seed; use another output directory"
            )
    done = {(r.optimizer, r.task, r.seed) for r in runs}
    keys = jax.random.split(jax.random.key(seed), seeds)
    jobs = [
        (n, t, chunk)
        for t in tasks for n in optimizers
        for chunk in (range(s, min(s + seeds_per_call, seeds)) for s in range(0, seeds, seeds_per_call))
        if any((n, t.name, s) not in done for s in chunk)
    ]
    for name, task, chunk in tqdm(jobs, desc="evaluate", disable=not progress or not jobs):
        final, returns, dormancy, curves = jax.tree.map(
            np.asarray, _train_seeds(task, optimizers[name], keys[chunk.start:chunk.stop]))
        new = [
            Run(name, task.name, s, float(final[i]), returns[i].tolist(), dormancy[i].tolist(), task.config.batch_size,
                {k: v[i].tolist() for k, v in curves.items()}, fingerprints[(name, task.name)])
            for i, s in enumerate(chunk) if (name, task.name, s) not in done
        ]
        runs.extend(new)
        if path:
            _append_runs(path, new)
    runs = [r for r in runs if r.seed < seeds and r.optimizer in optimizers and r.task in {t.name for t in tasks}]
    names = [t.name for t in tasks]
    report = Report(runs, _summarise(runs, list(optimizers), names, seeds), list(optimizers), names, reference)
    if out_dir is not None:
        from openrl.eval.report import write_report

        write_report(report, out_dir)
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
