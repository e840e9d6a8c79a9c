"""Figures: meta-training fitness, curves over training, and the paper's bar and grid figures.

Figures are `matplotlib.figure.Figure`s saved straight to their files: no pyplot, so no backend
is selected or changed (a notebook's stays as it is) and no window opens. matplotlib is imported
on the first figure, not with `openrl`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from openrl.eval.stats import Interval


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float | int, float | int], **kwargs: Any):
    """A new `matplotlib.figure.Figure` (outside pyplot's figure manager) and its axes, as `pyplot.subplots`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def plot_fitness(history: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Mean and max population fitness per generation, with validation scores where taken."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _subplots(figsize=(6, 4))
    generations = [r["generation"] for r in history]
    ax.plot(generations, [r["fitness_mean"] for r in history], "-", label="population mean")
    ax.plot(generations, [r["fitness_max"] for r in history], "--", label="population max", alpha=0.7)
    validated = [r for r in history if "validation" in r]
    if validated:
        ax.plot([r["generation"] for r in validated], [r["validation"] for r in validated], "o:", label="validation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (final return)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_curves(curves: Mapping[str, np.ndarray], path: str | os.PathLike, *, ylabel: str,
                steps_per_point: int = 1) -> None:
    """One line per optimizer: mean over seeds with a standard-error band; `curves[name]` is `[seeds, points]`.

    Each optimizer has its own colour and line style; one whose curve is zero throughout (a quantity
    that does not apply to it, see `applies`) is not drawn but named in a note.
    """
    fig, ax = _subplots(figsize=(6, 4))
    styles = _styles(list(curves))
    for name, values in curves.items():
        if applies(values):
            _draw(ax, np.asarray(values, np.float64), steps_per_point, name, styles[name])
    _note_skipped(ax, [name for name, values in curves.items() if not applies(values)])
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    if any(applies(values) for values in curves.values()):
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def applies(values: Any) -> bool:
    """Whether a curve `[seeds, points]` says anything: one that is zero for every seed and point is a
    quantity that does not apply to its optimizer (e.g. the noise of a deterministic one)."""
    return bool(np.any(np.asarray(values) != 0))


def _note_skipped(ax: Any, names: Sequence[str]) -> None:
    if names:
        ax.text(0.01, 0.01, "zero throughout, not drawn: " + ", ".join(names), transform=ax.transAxes,
                fontsize=7, va="bottom", alpha=0.8)


LINE_STYLES = ("-", "--", "-.", ":")


def _styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A colour and a line style per name, the same in every panel; overlapping lines stay distinguishable."""
    colours = _colours(names)
    return {name: {"color": colours[name], "linestyle": LINE_STYLES[i % len(LINE_STYLES)]}
            for i, name in enumerate(names)}


def _draw(ax: Any, values: np.ndarray, steps_per_point: int, name: str, style: Mapping[str, Any]) -> None:
    """Mean over seeds of `values` `[seeds, points]` with a standard-error band."""
    x = (np.arange(values.shape[1]) + 1) * steps_per_point
    mean = values.mean(axis=0)
    stderr = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0]) if values.shape[0] > 1 else 0 * mean
    ax.plot(x, mean, label=name, **style)
    ax.fill_between(x, mean - stderr, mean + stderr, color=style["color"], alpha=0.2)


def _colours(names: Sequence[str]) -> dict[str, Any]:
    """One colour per name, the same in every panel of a figure."""
    import matplotlib

    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def plot_interval_bars(panels: Mapping[str, Mapping[str, Interval]], path: str | os.PathLike, *,
                       xlabel: str) -> None:
    """One panel per key of `panels` (a task, or a metric), one horizontal bar per optimizer with its 95% CI.

    The layout of the paper's Figures 2, 3 and 5.
    """
    names = list(dict.fromkeys(name for panel in panels.values() for name in panel))
    colours = _colours(names)
    fig, axes = _subplots(1, len(panels), figsize=(3.2 * len(panels) + 1.5, 0.45 * len(names) + 1.6),
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
    styles = _styles(names)
    fig, axes = _subplots(len(rows), len(columns), figsize=(4.5 * len(columns) + 1, 2.6 * len(rows) + 0.6),
                             squeeze=False, sharex="col")
    for r, row in enumerate(rows):
        for c, column in enumerate(columns):
            ax = axes[r][c]
            panel = grid[row].get(column, {})
            for name, values in panel.items():
                if applies(values):
                    _draw(ax, np.asarray(values, np.float64), steps_per_point[column], name, styles[name])
            _note_skipped(ax, [name for name, values in panel.items() if not applies(values)])
            if log_y:
                ax.set_yscale("log")
            if r == 0:
                ax.set_title(column)
            if c == 0:
                ax.set_ylabel(row)
            if r == len(rows) - 1:
                ax.set_xlabel("environment steps")
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    ncol = max(1, min(len(labels), 3 * len(columns)))
    legend_rows = -(-max(len(labels), 1) // ncol)
    fig.legend(handles, labels, loc="upper center", ncol=ncol, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.25 * legend_rows + 0.1) / (2.6 * len(rows) + 0.6)))
    fig.savefig(path, dpi=100)


def plot_against(x: Sequence[float], series: Mapping[str, Sequence[Interval]], path: str | os.PathLike, *,
                 xlabel: str, ylabel: str, zero_line: bool = False) -> None:
    """One line per series with a 95% CI band over `x`, e.g. IQM return against Deep Sea size (Figures 6, 17)."""
    fig, ax = _subplots(figsize=(6, 4))
    styles = _styles(list(series))
    for name, intervals in series.items():
        ax.plot(x, [i.estimate for i in intervals], marker="o", label=name, **styles[name])
        ax.fill_between(x, [i.lower for i in intervals], [i.upper for i in intervals], color=styles[name]["color"],
                        alpha=0.2)
    if zero_line:
        ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
