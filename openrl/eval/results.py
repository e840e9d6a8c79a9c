"""The stored form of an evaluation: one `Run` per training run, and the `Report` over them."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from openrl.eval import stats

RESULTS_VERSION = 4
"""Bumped whenever the stored rows' format or meaning changes; older files are refused, not misread.
(3: returns are each environment's last finished episode's return, as OPEN's code logs them.
4: rows record `seeds_per_call`; a distribution's task is drawn from a key no run uses, and the
fingerprint leaves out whether the update analysis was recorded. Later version-4 rows add `machine`
and `finished`, and later still `code`; earlier ones load with them empty.)"""


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: its optimizer, task, seed, final return and curves per PPO iteration.

    `stats` holds the update-analysis curves of Appendix F (`openrl.rl.analysis.STAT_NAMES`),
    empty when they were not recorded; `fingerprint` identifies the optimizer's values, the task's
    configuration and the base seed; `seeds_per_call` is how many seeds were vmapped in the call that
    trained it (the batch shape changes the float reduction order, so the numbers depend on it).
    `machine` names where it was trained (JAX backend, devices, host CPU, jax version) and `finished`
    when its call ended (UTC, ISO 8601); `code` names the openrl that trained it (version, and the git
    commit when known). All three are empty in rows stored before they were recorded. None is in the
    fingerprint, so stored runs are reused on any machine and any later version: XLA compiles for the
    host, so a run is exact on one machine and may end elsewhere with other numbers of the same
    distribution, and a change to the code may change the float path in the same way. `machine` and
    `code` tell which runs can be rebuilt exactly together.
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
    seeds_per_call: int
    machine: str = ""
    finished: str = ""
    code: str = ""


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


def load_runs(path: str) -> list[Run]:
    """The runs stored in `path` (none if it does not exist); rows of another format version are an error.

    A later row for the same optimizer, task and seed replaces an earlier one (a run recomputed
    to record the update analysis).
    """
    if not os.path.exists(path):
        return []
    runs = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            row = json.loads(line)
            if row.get("version") != RESULTS_VERSION:
                raise ValueError(
                    f"{path}:{number}: results of format version {row.get('version')!r}, expected {RESULTS_VERSION}; "
                    "use another output directory"
                )
            row.pop("version")
            run = Run(**row)
            runs[(run.optimizer, run.task, run.seed)] = run
    return list(runs.values())


def append_runs(path: str, runs: list[Run]) -> None:
    """Append `runs` to `path`, one JSON row each, synced to disk."""
    with open(path, "a") as f:
        for run in runs:
            f.write(json.dumps({"version": RESULTS_VERSION, **dataclasses.asdict(run)}) + "\n")
        f.flush()
        os.fsync(f.fileno())
