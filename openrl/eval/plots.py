"""Figures: meta-training fitness, curves over training, and the paper's bar and grid figures."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from openrl.eval.stats import Interval  # noqa: E402


def plot_fitness(history: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Mean and max population fitness per generation, with validation scores where taken."""
    fig, ax = plt.subplots(figsize=(6, 4))
    generations = [r["generation"] for r in history]
    ax.plot(generations, [r["fitness_mean"] for r in history], label="population mean")
    ax.plot(generations, [r["fitness_max"] for r in history], label="population max", alpha=0.7)
    validated = [r for r in history if "validation" in r]
    if validated:
        ax.plot([r["generation"] for r in validated], [r["validation"] for r in validated], "o-", label="validation")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (final return)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(curves: Mapping[str, np.ndarray], path: str | os.PathLike, *, ylabel: str,
                steps_per_point: int = 1) -> None:
    """One line per optimizer: mean over seeds with a standard-error band; `curves[name]` is `[seeds, points]`."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        values = np.asarray(values, np.float64)
        x = (np.arange(values.shape[1]) + 1) * steps_per_point
        mean = values.mean(axis=0)
        stderr = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0]) if values.shape[0] > 1 else 0 * mean
        ax.plot(x, mean, label=name)
        ax.fill_between(x, mean - stderr, mean + stderr, alpha=0.25)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _colours(names: Sequence[str]) -> dict[str, Any]:
    """One colour per name, the same in every panel of a figure."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def plot_interval_bars(panels: Mapping[str, Mapping[str, Interval]], path: str | os.PathLike, *,
                       xlabel: str) -> None:
    """One panel per key of `panels` (a task, or a metric), one horizontal bar per optimizer with its 95% CI.

    The layout of the paper's Figures 2, 3 and 5.
    """
    names = list(dict.fromkeys(name for panel in panels.values() for name in panel))
    colours = _colours(names)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 1.5, 0.45 * len(names) + 1.6),
                             squeeze=False, sharey=True)
    for ax, (title, intervals) in zip(axes[0], panels.items()):
        rows = [n for n in names if n in intervals]
        y = [names.index(n) for n in rows]
        estimates = np.array([intervals[n].estimate for n in rows])
        errors = np.array([[intervals[n].estimate - intervals[n].lower for n in rows],
                           [intervals[n].upper - intervals[n].estimate for n in rows]])
        ax.barh(y, estimates, xerr=errors, color=[colours[n] for n in rows], alpha=0.8, capsize=3)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(names)), names)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curve_grid(grid: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], path: str | os.PathLike, *,
                    steps_per_point: Mapping[str, int], log_y: bool = False) -> None:
    """Rows of panels: `grid[row][column][optimizer]` is `[seeds, points]`; mean with a standard-error band.

    Rows are quantities (their label is the y axis), columns are tasks; the layout of the paper's
    Figures 11-13. `steps_per_point[column]` converts points to environment steps; `log_y` for
    quantities spanning decades (non-positive means are then not drawn).
    """
    rows = list(grid)
    columns = list(dict.fromkeys(c for row in grid.values() for c in row))
    names = list(dict.fromkeys(n for row in grid.values() for col in row.values() for n in col))
    colours = _colours(names)
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(4.5 * len(columns) + 1, 2.6 * len(rows) + 0.6),
                             squeeze=False, sharex="col")
    for r, row in enumerate(rows):
        for c, column in enumerate(columns):
            ax = axes[r][c]
            for name, values in grid[row].get(column, {}).items():
                values = np.asarray(values, np.float64)
                x = (np.arange(values.shape[1]) + 1) * steps_per_point[column]
                mean = values.mean(axis=0)
                stderr = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0]) if values.shape[0] > 1 else 0 * mean
                ax.plot(x, mean, color=colours[name], label=name)
                ax.fill_between(x, mean - stderr, mean + stderr, color=colours[name], alpha=0.2)
            if log_y:
                ax.set_yscale("log")
            if r == 0:
                ax.set_title(column)
            if c == 0:
                ax.set_ylabel(row)
            if r == len(rows) - 1:
                ax.set_xlabel("environment steps")
    handles, labels = axes[0][0].get_legend_handles_labels()
    ncol = min(len(names), 3 * len(columns))
    legend_rows = -(-len(names) // ncol)
    fig.legend(handles, labels, loc="upper center", ncol=ncol, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.25 * legend_rows + 0.1) / (2.6 * len(rows) + 0.6)))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_against(x: Sequence[float], series: Mapping[str, Sequence[Interval]], path: str | os.PathLike, *,
                 xlabel: str, ylabel: str, zero_line: bool = False) -> None:
    """One line per series with a 95% CI band over `x`, e.g. IQM return against Deep Sea size (Figures 6, 17)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = _colours(list(series))
    for name, intervals in series.items():
        ax.plot(x, [i.estimate for i in intervals], "o-", color=colours[name], label=name)
        ax.fill_between(x, [i.lower for i in intervals], [i.upper for i in intervals], color=colours[name], alpha=0.2)
    if zero_line:
        ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
