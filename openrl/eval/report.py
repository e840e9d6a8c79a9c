"""An evaluation's report directory: a Markdown summary and the paper's figures.

`write_report(report, out_dir)` writes

- `summary.md`: final-return IQM with 95% CIs per task (the numbers of Figure 2); IQM, mean,
  median and optimality gap over all tasks of raw and of reference-normalised returns (Figure 3);
  the probability that each optimizer improves on the reference; the machines and openrl versions
  that trained the runs, with how many each and when; and the list of figures;
- `final_return_iqm.png` (Figure 2), `normalised_aggregate.png` (Figure 3),
  `returns[_task].png` (Figure 9), `dormancy[_task].png` (Figure 10),
  `cosine_similarity.png` (Figure 11), `update_magnitude.png` (Figure 12) and
  `noise_magnitude.png` (Figure 13).

Normalised scores divide each task's returns by the reference optimizer's mean final return on
that task (the paper normalises by Adam); a task where that mean is 0 cannot be normalised, and
the summary says so instead of plotting it.
"""

from __future__ import annotations

import os

import numpy as np

from openrl.eval import stats
from openrl.eval.results import Report
from openrl.eval.plots import plot_curve_grid, plot_curves, plot_interval_bars
from openrl.rl.analysis import ANALYSIS_DECAYS

ANALYSIS_FIGURES = ("cosine_similarity.png", "update_magnitude.png", "noise_magnitude.png")
"""Written only when every run recorded the update analysis (`evaluate(..., analysis=True)`)."""

FIGURES = {
    "final_return_iqm.png": "IQM of final return per task, 95% CIs (paper Figure 2)",
    "normalised_aggregate.png": "aggregate reference-normalised IQM, mean and optimality gap (Figure 3)",
    "returns*.png": "mean return over training with standard error (Figure 9)",
    "dormancy*.png": "τ=0 dormant fraction over training with standard error (Figure 10)",
    "cosine_similarity.png": "cosine similarity of the update with the gradient and each momentum (Figure 11)",
    "update_magnitude.png": "|update before noise / parameter| over training (Figure 12)",
    "noise_magnitude.png": "|actor-noise std / parameter| over training (Figure 13)",
}

COSINE_ROWS = {"cos(u, g)": "cosine_gradient", **{f"cos(u, m β={b})": f"cosine_momentum_{b}" for b in ANALYSIS_DECAYS}}


def _cell(interval: stats.Interval) -> str:
    return f"{interval.estimate:.3g} [{interval.lower:.3g}, {interval.upper:.3g}]"


def score_matrix(report: Report, optimizer: str) -> np.ndarray:
    """Final returns `[seeds, tasks]` of `optimizer`, tasks in the report's order."""
    return np.stack([report.scores(optimizer, task) for task in report.tasks], axis=1)


def per_task_iqm(report: Report) -> dict[str, dict[str, stats.Interval]]:
    """`{task: {optimizer: IQM of final return with its 95% CI}}`."""
    return {
        task: {name: stats.aggregate(report.scores(name, task))["iqm"] for name in report.optimizers}
        for task in report.tasks
    }


def normalised_aggregates(report: Report) -> tuple[dict[str, dict[str, stats.Interval]], list[str]]:
    """Aggregates of returns divided by the reference's mean return per task, and the tasks left out.

    Returns `{optimizer: {"iqm" | "mean" | "median" | "optimality_gap": Interval}}` over the tasks
    whose reference mean is non-zero, and the names of those where it is zero.
    """
    reference = score_matrix(report, report.reference).mean(axis=0)
    kept = [i for i, value in enumerate(reference) if value != 0]
    skipped = [report.tasks[i] for i, value in enumerate(reference) if value == 0]
    if not kept:
        return {}, skipped
    return {
        name: stats.aggregate(stats.normalise(score_matrix(report, name)[:, kept], reference[kept]))
        for name in report.optimizers
    }, skipped


def improvement_over_reference(report: Report) -> dict[str, stats.Interval]:
    """P(optimizer > reference) on a random task and seed, with its 95% CI, for every other optimizer."""
    reference = score_matrix(report, report.reference)
    return {
        name: stats.probability_of_improvement(score_matrix(report, name), reference)
        for name in report.optimizers if name != report.reference
    }


def _has_analysis(report: Report) -> bool:
    return all(r.stats for r in report.runs)


def summary_markdown(report: Report) -> str:
    """The Markdown summary: per-task IQMs, aggregates, probability of improvement and the figures."""
    seeds = len({r.seed for r in report.runs})
    lines = [
        "# Evaluation", "",
        f"{len(report.optimizers)} optimizers on {', '.join(report.tasks)}, {seeds} seeds each; final return "
        "(each environment's last finished episode's return at the end of training, averaged over "
        "environments), with 95% stratified-bootstrap confidence intervals.", "",
        "## IQM of final return per task", "",
        "| optimizer | " + " | ".join(report.tasks) + " |", "|---" * (len(report.tasks) + 1) + "|",
    ]
    iqms = per_task_iqm(report)
    for name in report.optimizers:
        lines.append(f"| {name} | " + " | ".join(_cell(iqms[task][name]) for task in report.tasks) + " |")
    lines += ["", "## Over all tasks (raw returns)", "", report.table(), ""]
    normalised, skipped = normalised_aggregates(report)
    lines += [f"## Normalised by {report.reference}'s mean return per task", ""]
    if normalised:
        lines += ["| optimizer | IQM | mean | median | optimality gap (γ=1) |", "|---|---|---|---|---|"]
        for name, intervals in normalised.items():
            cells = [_cell(intervals[k]) for k in ("iqm", "mean", "median", "optimality_gap")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if skipped:
        lines.append(f"Not normalised (the reference's mean return is 0): {', '.join(skipped)}.")
    improvements = improvement_over_reference(report)
    if improvements:
        lines += ["", f"## Probability of improvement over {report.reference}", "",
                  "P(X > Y): the chance that a run of X beats a run of Y on the same task (ties count 1/2), "
                  "averaged over tasks.", "", f"| X | P(X > {report.reference}) [95% CI] |", "|---|---|"]
        lines += [f"| {name} | {_cell(interval)} |" for name, interval in improvements.items()]
    lines += ["", "## Where the runs were trained", ""] + _machines(report)
    written = {n: t for n, t in FIGURES.items() if _has_analysis(report) or n not in ANALYSIS_FIGURES}
    lines += ["", "## Figures", ""] + [f"- `{name}`: {text}" for name, text in written.items()] + [""]
    return "\n".join(lines)


def _machines(report: Report) -> list[str]:
    """One line per machine and openrl version named by the runs: how many runs they trained and the days
    their calls ended."""
    by_origin: dict[tuple[str, str], list[str]] = {}
    for run in report.runs:
        by_origin.setdefault((run.machine, run.code), []).append(run.finished[:10])
    lines = []
    for (machine, code), days in sorted(by_origin.items()):
        if not machine:
            lines.append(f"- not recorded (stored before runs named their machine): {len(days)} runs")
            continue
        where = f"{machine}; {code}" if code else f"{machine}; openrl version not recorded"
        when = min(days) if min(days) == max(days) else f"{min(days)} to {max(days)}"
        lines.append(f"- {where}: {len(days)} runs, {when}")
    return lines


def write_report(report: Report, out_dir: str | os.PathLike) -> None:
    """Write `summary.md` and every figure of `FIGURES` into `out_dir` (Appendix F's only if every run has them)."""
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(summary_markdown(report))
    plot_interval_bars(per_task_iqm(report), os.path.join(out_dir, "final_return_iqm.png"), xlabel="IQM final return")
    normalised, _ = normalised_aggregates(report)
    panels = {
        f"{title} (÷ {report.reference})": {name: normalised[name][key] for name in normalised}
        for title, key in (("IQM", "iqm"), ("mean", "mean"), ("optimality gap", "optimality_gap"))
    } if normalised else {f"no task normalisable by {report.reference}": {}}
    plot_interval_bars(panels, os.path.join(out_dir, "normalised_aggregate.png"), xlabel="normalised score")
    steps = {task: report.steps_per_iteration(task) for task in report.tasks}
    for quantity, ylabel in (("returns", "mean episode return"), ("dormancy", "τ=0 dormant fraction")):
        for task in report.tasks:
            suffix = "" if len(report.tasks) == 1 else f"_{task}"
            curves = {name: report.curves(name, task, quantity) for name in report.optimizers}
            plot_curves(curves, os.path.join(out_dir, f"{quantity}{suffix}.png"), ylabel=ylabel,
                        steps_per_point=steps[task])

    if not _has_analysis(report):
        return

    def grid(rows: dict[str, str]) -> dict:
        return {label: {task: {name: report.curves(name, task, stat) for name in report.optimizers}
                        for task in report.tasks} for label, stat in rows.items()}

    plot_curve_grid(grid(COSINE_ROWS), os.path.join(out_dir, "cosine_similarity.png"), steps_per_point=steps)
    plot_curve_grid(grid({"|û / p|": "update_magnitude"}), os.path.join(out_dir, "update_magnitude.png"),
                    steps_per_point=steps, log_y=True)
    plot_curve_grid(grid({"|σ_actor / p|": "noise_magnitude"}), os.path.join(out_dir, "noise_magnitude.png"),
                    steps_per_point=steps)
