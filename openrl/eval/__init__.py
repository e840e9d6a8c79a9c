"""Evaluation: statistics, runs over seeds and tasks, and figures."""

from openrl.eval import stats
from openrl.eval.evaluation import Report, Run, evaluate
from openrl.eval.ablation import ABLATIONS, AblationRow, DeepSeaStudy, deep_sea_study, run_ablations, separated_open
from openrl.eval.plots import plot_against, plot_curve_grid, plot_curves, plot_fitness, plot_interval_bars
from openrl.eval.report import write_report
from openrl.eval.sweep import SPACES, SearchSpace, best_preset, run_sweep, write_preset

__all__ = ["Report", "Run", "evaluate", "plot_curves", "plot_fitness", "stats",
           "SPACES", "SearchSpace", "best_preset", "run_sweep", "write_preset",
           "ABLATIONS", "AblationRow", "DeepSeaStudy", "deep_sea_study", "plot_against", "plot_curve_grid",
           "plot_interval_bars", "run_ablations", "separated_open", "write_report"]
