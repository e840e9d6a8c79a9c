"""The paper's ablation study (Section 7.1, Figure 5): OPEN minus one feature or minus its learned noise.

`run_ablations` meta-trains its optimizers (resuming any found in `out_dir`), evaluates them
with `openrl.evaluate` (so stored runs are reused) and writes a Markdown table and a figure.
Budgets are arguments: the paper's (17 optimizers x 250 generations per ablation) is far
beyond one CPU, the defaults are minutes. The Deep Sea study is `openrl.eval.deep_sea`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np

from openrl.eval import stats
from openrl.eval.evaluation import evaluate
from openrl.eval.plots import plot_interval_bars
from openrl.meta.learners import MetaLearner
from openrl.meta.tasks import MultiTask, Task
from openrl.meta.train import MetaConfig, meta_train, resumable
from openrl.optim.features import BatchProp, Dormancy, Feature, Gradient, LayerProp, Momentum, ParamValue, TrainingProp
from openrl.optim.heads import MagnitudeHead, StochasticHead
from openrl.optim.optimizer import AbstractOptimizer, Optimizer


def open_features(without: type[Feature] | None = None) -> list[Feature]:
    """OPEN's seven features in the paper's order, without those of type `without`."""
    features = [ParamValue(), Momentum(), Gradient(), TrainingProp(), LayerProp(), BatchProp(), Dormancy()]
    return [f for f in features if without is None or not isinstance(f, without)]


ABLATIONS: dict[str, Callable[[], Optimizer]] = {
    "OPEN": lambda: Optimizer(open_features(), StochasticHead()),
    "no training proportion": lambda: Optimizer(open_features(TrainingProp), StochasticHead()),
    "no batch proportion": lambda: Optimizer(open_features(BatchProp), StochasticHead()),
    "no dormancy": lambda: Optimizer(open_features(Dormancy), StochasticHead()),
    "no layer proportion": lambda: Optimizer(open_features(LayerProp), StochasticHead()),
    "no stochasticity": lambda: Optimizer(open_features(), MagnitudeHead()),
}
"""OPEN and OPEN minus one feature or minus its learned noise (paper Figure 5), initialised at zero."""


def slug(name: str) -> str:
    """`name` as a directory name: lower case, every non-alphanumeric character an underscore."""
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def meta_train_or_resume(learner: MetaLearner, optimizer: AbstractOptimizer, problem: Task | MultiTask,
                         config: MetaConfig, out_dir: str, progress: bool) -> AbstractOptimizer:
    """The best optimizer of `meta_train`, continuing the run in `out_dir` if one was started there."""
    return meta_train(learner, optimizer, problem, config, out_dir=out_dir, resume=resumable(out_dir),
                      progress=progress).best


@dataclasses.dataclass(frozen=True)
class AblationRow:
    """One ablation: IQM over its trained optimizers of their mean final return, and the mean final
    τ=0 dormancy of the optimizers in that interquartile range; both with 95% bootstrap CIs."""

    name: str
    return_iqm: stats.Interval
    dormancy: stats.Interval
    optimizer_returns: list[float]


def _iqr_members(values: np.ndarray) -> np.ndarray:
    """Indices of the values the IQM keeps: `int(0.25 n)` trimmed from each end, as `stats.iqm`."""
    order = np.argsort(values, kind="stable")
    cut = int(0.25 * len(values))
    return order[cut:len(values) - cut]


def run_ablations(
    task: Task,
    learner: MetaLearner,
    out_dir: str | os.PathLike,
    *,
    ablations: Sequence[str] = tuple(ABLATIONS),
    num_optimizers: int = 1,
    meta_config: MetaConfig = MetaConfig(generations=2, eval_every=0),
    seeds: int = 4,
    progress: bool = True,
) -> list[AblationRow]:
    """Meta-train `num_optimizers` optimizers per ablation on `task` and evaluate each over `seeds` seeds.

    Optimizer `i` of every ablation is meta-trained with seed `meta_config.seed + i`. Writes
    `ablation.md`, `ablation.png` (Figure 5) and the evaluation's report under `out_dir/eval`.
    """
    unknown = [a for a in ablations if a not in ABLATIONS]
    if unknown or not ablations:
        raise ValueError(f"ablations: expected names from {list(ABLATIONS)}, got {list(ablations)}")
    if not isinstance(num_optimizers, int) or num_optimizers < 1:
        raise ValueError(f"num_optimizers: expected a positive int, got {num_optimizers!r}")
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: expected a positive int, got {seeds!r}")
    out_dir = os.fspath(out_dir)
    trained = {}
    for name in ablations:
        for i in range(num_optimizers):
            config = dataclasses.replace(meta_config, seed=meta_config.seed + i)
            trained[f"{name} #{i}"] = meta_train_or_resume(
                learner, ABLATIONS[name](), task, config, os.path.join(out_dir, slug(name), str(i)), progress
            )
    report = evaluate(trained, task, seeds, out_dir=os.path.join(out_dir, "eval"), reference=f"{ablations[0]} #0",
                      progress=progress)
    rows = []
    for name in ablations:
        labels = [f"{name} #{i}" for i in range(num_optimizers)]
        returns = np.array([report.scores(label, task.name).mean() for label in labels])
        dormancy = np.array([report.curves(label, task.name, "dormancy")[:, -1].mean() for label in labels])
        iqm = stats.aggregate(returns)["iqm"]
        estimate, lower, upper = stats.stratified_bootstrap_ci(dormancy[_iqr_members(returns)], stats.mean)
        rows.append(AblationRow(name, iqm, stats.Interval(estimate, lower, upper), returns.tolist()))
    _write_ablation(rows, task, num_optimizers, seeds, out_dir)
    return rows


def _write_ablation(rows: list[AblationRow], task: Task, num_optimizers: int, seeds: int, out_dir: str) -> None:
    lines = [
        "# Ablations (paper Section 7.1, Figure 5)", "",
        f"{num_optimizers} meta-trained optimizer(s) per ablation on {task.name} "
        f"({task.config.total_timesteps} steps per run), each evaluated over {seeds} seeds. Return: IQM over "
        "optimizers of their mean final return. Dormancy: mean final τ=0 dormant fraction of the optimizers "
        "in that interquartile range. 95% bootstrap CIs over optimizers.", "",
        "| ablation | return IQM [95% CI] | τ=0 dormancy [95% CI] | mean return of each optimizer |",
        "|---|---|---|---|",
    ]
    for row in rows:
        cells = [f"{i.estimate:.3g} [{i.lower:.3g}, {i.upper:.3g}]" for i in (row.return_iqm, row.dormancy)]
        each = ", ".join(f"{r:.3g}" for r in row.optimizer_returns)
        lines.append(f"| {row.name} | " + " | ".join(cells) + f" | {each} |")
    with open(os.path.join(out_dir, "ablation.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plot_interval_bars(
        {"final return (IQM)": {r.name: r.return_iqm for r in rows},
         "τ=0 dormancy": {r.name: r.dormancy for r in rows}},
        os.path.join(out_dir, "ablation.png"), xlabel="value",
    )
