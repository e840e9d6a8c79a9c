"""The paper's Section 7 studies: OPEN minus one part (Figure 5) and Deep Sea exploration (Figures 6, 17).

Both meta-train their optimizers (resuming any found in `out_dir`), evaluate them with
`openrl.evaluate` (so stored runs are reused) and write a Markdown table and figures.
Budgets are arguments: the paper's (17 optimizers x 250 generations per ablation; 48
generations for Deep Sea, 128 seeds) are far beyond one CPU, the defaults are minutes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np
from jaxtyping import PRNGKeyArray

from openrl.eval import stats
from openrl.eval.evaluation import evaluate
from openrl.eval.plots import plot_against, plot_interval_bars
from openrl.meta.checkpoint import Checkpointer
from openrl.meta.learners import MetaLearner
from openrl.meta.tasks import EnvTask, MultiTask, Task, make_task
from openrl.meta.train import MetaConfig, meta_train
from openrl.optim.features import BatchProp, Dormancy, Feature, Gradient, LayerProp, Momentum, ParamValue, TrainingProp
from openrl.optim.heads import MagnitudeHead, StochasticHead
from openrl.optim.optimizer import AbstractOptimizer, Optimizer
from openrl.optim.separated import Separated
from openrl.rl.ppo import PPOConfig


def _open_features(without: type[Feature] | None = None) -> list[Feature]:
    features = [ParamValue(), Momentum(), Gradient(), TrainingProp(), LayerProp(), BatchProp(), Dormancy()]
    return [f for f in features if without is None or not isinstance(f, without)]


ABLATIONS: dict[str, Callable[[], Optimizer]] = {
    "OPEN": lambda: Optimizer(_open_features(), StochasticHead()),
    "no training proportion": lambda: Optimizer(_open_features(TrainingProp), StochasticHead()),
    "no batch proportion": lambda: Optimizer(_open_features(BatchProp), StochasticHead()),
    "no dormancy": lambda: Optimizer(_open_features(Dormancy), StochasticHead()),
    "no layer proportion": lambda: Optimizer(_open_features(LayerProp), StochasticHead()),
    "no stochasticity": lambda: Optimizer(_open_features(), MagnitudeHead()),
}
"""OPEN and OPEN minus one feature or minus its learned noise (paper Figure 5), initialised at zero."""


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def meta_train_or_resume(learner: MetaLearner, optimizer: AbstractOptimizer, problem: Task | MultiTask,
                         config: MetaConfig, out_dir: str, progress: bool) -> AbstractOptimizer:
    """The best optimizer of `meta_train`, continuing the run in `out_dir` if one was started there."""
    resume = Checkpointer(os.path.join(out_dir, "checkpoints")).latest() is not None
    return meta_train(learner, optimizer, problem, config, out_dir=out_dir, resume=resume, progress=progress).best


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
                learner, ABLATIONS[name](), task, config, os.path.join(out_dir, _slug(name), str(i)), progress
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


def separated_open(noise: bool, *, key: PRNGKeyArray | None = None) -> Separated:
    """OPEN with separate networks for the actor and the critic; learned noise on the actor if `noise`."""
    return Separated(
        actor=Optimizer(_open_features(), StochasticHead() if noise else MagnitudeHead(), zero_mean=False, key=key),
        critic=Optimizer(_open_features(), MagnitudeHead(), zero_mean=False, key=key),
    )


def deep_sea_config(total_timesteps: int = 32_768) -> PPOConfig:
    """PPO for Deep Sea: MinAtar's values (paper Table 3) with a smaller batch for short runs."""
    return PPOConfig(total_timesteps=total_timesteps, num_envs=32, num_steps=32, num_minibatches=4)


def deep_sea_task(size: int, config: PPOConfig, *, randomize_actions: bool = False) -> EnvTask:
    """Deep Sea of `size` rows; `randomize_actions=False` is the paper-era layout (action 1 always right)."""
    task = make_task("DeepSea-bsuite", config, size=size, randomize_actions=randomize_actions)
    return dataclasses.replace(task, name=f"DeepSea-{size}")


@dataclasses.dataclass(frozen=True)
class DeepSeaStudy:
    """IQM final return per evaluation size for each optimizer, and the IQM improvement of learned noise."""

    sizes: list[int]
    iqm: dict[str, list[stats.Interval]]
    improvement: list[stats.Interval]


NOISE, NO_NOISE = "separated, learned noise", "separated, no noise"


def deep_sea_study(
    learner: MetaLearner,
    out_dir: str | os.PathLike,
    *,
    train_sizes: Sequence[int] = (4, 6, 8),
    eval_sizes: Sequence[int] = (4, 8, 12, 16),
    config: PPOConfig = deep_sea_config(),
    meta_config: MetaConfig = MetaConfig(generations=4, eval_every=0),
    seeds: int = 8,
    progress: bool = True,
) -> DeepSeaStudy:
    """Meta-train separated OPEN with and without learned noise on Deep Sea `train_sizes` (mean return
    over sizes as fitness), then evaluate both on `eval_sizes` over `seeds` seeds.

    Writes `deep_sea.md`, `return_vs_size.png` (Figure 17) and `noise_improvement.png` (Figure 6).
    """
    for name, sizes in (("train_sizes", train_sizes), ("eval_sizes", eval_sizes)):
        if not sizes or any(not isinstance(s, int) or s < 2 for s in sizes):
            raise ValueError(f"{name}: expected Deep Sea sizes (ints >= 2), got {list(sizes)}")
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: expected a positive int, got {seeds!r}")
    out_dir = os.fspath(out_dir)
    problem = MultiTask([deep_sea_task(s, config) for s in train_sizes], [1.0] * len(train_sizes))
    trained = {
        name: meta_train_or_resume(learner, separated_open(noise), problem, meta_config,
                                   os.path.join(out_dir, _slug(name)), progress)
        for name, noise in ((NOISE, True), (NO_NOISE, False))
    }
    tasks = [deep_sea_task(s, config) for s in eval_sizes]
    report = evaluate(trained, tasks, seeds, out_dir=os.path.join(out_dir, "eval"), reference=NO_NOISE,
                      progress=progress)
    iqm = {name: [stats.aggregate(report.scores(name, t.name))["iqm"] for t in tasks] for name in trained}
    improvement = [stats.difference(report.scores(NOISE, t.name), report.scores(NO_NOISE, t.name)) for t in tasks]
    study = DeepSeaStudy(list(eval_sizes), iqm, improvement)
    _write_deep_sea(study, train_sizes, config, meta_config, seeds, out_dir)
    return study


def _write_deep_sea(study: DeepSeaStudy, train_sizes: Sequence[int], config: PPOConfig, meta_config: MetaConfig,
                    seeds: int, out_dir: str) -> None:
    cell = lambda i: f"{i.estimate:.3g} [{i.lower:.3g}, {i.upper:.3g}]"  # noqa: E731
    lines = [
        "# Deep Sea exploration (paper Section 7.2, Figures 6 and 17)", "",
        f"Separated OPEN meta-trained on sizes {list(train_sizes)} for {meta_config.generations} generations "
        f"({config.total_timesteps} steps per run), evaluated over {seeds} seeds per size. IQM of final return "
        "with 95% stratified-bootstrap CIs; the optimal return is 0.99.", "",
        "| size | " + " | ".join(study.iqm) + " | IQM improvement of learned noise |",
        "|---" * (len(study.iqm) + 2) + "|",
    ]
    for i, size in enumerate(study.sizes):
        lines.append(f"| {size} | " + " | ".join(cell(v[i]) for v in study.iqm.values())
                     + f" | {cell(study.improvement[i])} |")
    with open(os.path.join(out_dir, "deep_sea.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plot_against(study.sizes, study.iqm, os.path.join(out_dir, "return_vs_size.png"), xlabel="Deep Sea size",
                 ylabel="IQM final return")
    plot_against(study.sizes, {"learned noise − no noise": study.improvement},
                 os.path.join(out_dir, "noise_improvement.png"), xlabel="Deep Sea size",
                 ylabel="IQM improvement", zero_line=True)
