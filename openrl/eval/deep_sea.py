"""The paper's Deep Sea exploration study (Section 7.2, Figures 6 and 17): does learned noise help exploration?

`deep_sea_study` meta-trains separated OPEN (one network for the actor, one for the critic)
with and without learned actor noise on small Deep Sea sizes, resuming any run found in
`out_dir`, evaluates both on larger sizes with `openrl.evaluate` (so stored runs are reused)
and writes a Markdown table and figures. The paper's budget (48 generations, 128 seeds) is far
beyond one CPU; the defaults are minutes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from jaxtyping import PRNGKeyArray

from openrl.eval import stats
from openrl.eval.ablation import meta_train_or_resume, open_features, slug
from openrl.eval.evaluation import evaluate
from openrl.eval.plots import plot_against
from openrl.meta.learners import MetaLearner
from openrl.meta.tasks import EnvTask, MultiTask, make_task
from openrl.meta.train import MetaConfig
from openrl.optim.heads import MagnitudeHead, StochasticHead
from openrl.optim.optimizer import Optimizer
from openrl.optim.separated import Separated
from openrl.rl.ppo import PPOConfig


def separated_open(noise: bool, *, key: PRNGKeyArray | None = None) -> Separated:
    """OPEN with separate networks for the actor and the critic; learned noise on the actor if `noise`."""
    return Separated(
        actor=Optimizer(open_features(), StochasticHead() if noise else MagnitudeHead(), zero_mean=False, key=key),
        critic=Optimizer(open_features(), MagnitudeHead(), zero_mean=False, key=key),
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
                                   os.path.join(out_dir, slug(name)), progress)
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
