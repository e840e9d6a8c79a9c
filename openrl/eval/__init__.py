"""Evaluation: statistics, runs over seeds and tasks, and figures."""

from openrl.eval import stats
from openrl.eval.evaluation import Report, Run, evaluate
from openrl.eval.plots import plot_curves, plot_fitness

__all__ = ["Report", "Run", "evaluate", "plot_curves", "plot_fitness", "stats"]
