"""Evaluation: statistics, runs over seeds and tasks, and figures."""

from typing import TYPE_CHECKING

from openrl.eval import stats
from openrl.eval.evaluation import evaluate
from openrl.eval.results import Report, Run
from openrl.eval.ablation import ABLATIONS, AblationRow, run_ablations
from openrl.eval.deep_sea import DeepSeaStudy, deep_sea_study, separated_open
from openrl.eval.plots import plot_against, plot_curve_grid, plot_curves, plot_fitness, plot_interval_bars
from openrl.eval.report import write_report

if TYPE_CHECKING:  # imported on first use by `__getattr__`: optuna and sqlalchemy are slow to import
    from openrl.eval.sweep import SPACES, SearchSpace, best_preset, run_sweep, write_preset

__all__ = ["Report", "Run", "evaluate", "plot_curves", "plot_fitness", "stats",
           "SPACES", "SearchSpace", "best_preset", "run_sweep", "write_preset",
           "ABLATIONS", "AblationRow", "DeepSeaStudy", "deep_sea_study", "plot_against", "plot_curve_grid",
           "plot_interval_bars", "run_ablations", "separated_open", "write_report"]

_SWEEP = ("SPACES", "SearchSpace", "best_preset", "run_sweep", "write_preset")


def __getattr__(name: str):
    if name in _SWEEP:
        from openrl.eval import sweep

        return getattr(sweep, name)
    raise AttributeError(f"module 'openrl.eval' has no attribute {name!r}")
