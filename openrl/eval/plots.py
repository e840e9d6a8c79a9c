"""Figures: meta-training fitness, return and dormancy curves."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
