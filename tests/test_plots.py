"""Figures say what they mean: integer generations, distinguishable lines, no curve for what does not apply."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from openrl.eval.plots import plot_curve_grid, plot_curves, plot_fitness


@pytest.fixture
def saved(monkeypatch):
    """The figures the plot functions save, instead of their files."""
    figures = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, path, **kwargs: figures.append(fig))
    return figures


def test_fitness_has_integer_generation_ticks(saved):
    history = [{"generation": g, "fitness_mean": g, "fitness_max": g + 1} for g in (1, 2, 3)]
    plot_fitness(history, "fitness.png")
    (ax,) = saved[0].axes
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_curves_have_distinct_styles_and_skip_what_does_not_apply(saved):
    rng = np.random.default_rng(0)
    curves = {"Adam": np.zeros((2, 5)), "OPEN": rng.random((2, 5)), "Lion": rng.random((2, 5))}
    plot_curves(curves, "noise.png", ylabel="noise")
    (ax,) = saved[0].axes
    assert [line.get_label() for line in ax.get_lines()] == ["OPEN", "Lion"]
    assert len({(line.get_color(), line.get_linestyle()) for line in ax.get_lines()}) == 2
    assert len({line.get_linestyle() for line in ax.get_lines()}) == 2
    assert any("not drawn: Adam" in text.get_text() for text in ax.texts)
    plot_curve_grid({"|σ / p|": {"task": curves}}, "grid.png", steps_per_point={"task": 10})
    (ax,) = saved[1].axes
    assert [line.get_label() for line in ax.get_lines()] == ["OPEN", "Lion"]
    assert [t.get_text() for t in saved[1].legends[0].get_texts()] == ["OPEN", "Lion"]
