"""Aggregate statistics, stratified-bootstrap CIs, probability of improvement and normalisation."""

import dataclasses

import numpy as np
import pytest
import scipy.stats

from openrl.eval import stats
from openrl.eval.stats import (
    Interval,
    aggregate,
    iqm,
    mean,
    median,
    normalise,
    optimality_gap,
    probability_of_improvement,
    stratified_bootstrap_ci,
)


def test_iqm_by_hand():
    assert iqm(np.arange(1.0, 9.0)) == 4.5  # mean of 3, 4, 5, 6
    assert iqm(np.arange(1.0, 9.0).reshape(2, 4)) == 4.5  # over all runs x tasks
    # n = 10: 25% is 2.5 values; int() trims 2 from each end, as scipy does
    values = np.array([100.0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    assert iqm(values) == pytest.approx(4.5)  # mean of 2..7
    assert iqm(values) == pytest.approx(scipy.stats.trim_mean(values, 0.25))
    scores = np.random.default_rng(1).lognormal(size=(7, 3))
    assert iqm(scores) == pytest.approx(scipy.stats.trim_mean(scores, 0.25, axis=None))
    assert iqm([5]) == 5.0 and isinstance(iqm([5]), float)


def test_mean_median_optimality_gap_by_hand():
    scores = np.array([[0.0, 2.0], [1.0, 5.0], [0.5, 0.25]])
    assert mean(scores) == pytest.approx(8.75 / 6)
    assert median(scores) == pytest.approx(0.75)  # of 0, 0.25, 0.5, 1, 2, 5
    assert optimality_gap(scores) == pytest.approx((1 + 0.5 + 0.75) / 6)
    assert optimality_gap(scores, gamma=2.0) == pytest.approx((2 + 1 + 1.5 + 1.75) / 6)
    assert median([3, 1, 2]) == 2.0 and mean([1, 2]) == 1.5  # integer lists are fine


@pytest.mark.parametrize("statistic", [iqm, mean, median, optimality_gap])
def test_aggregates_take_a_batch_axis(statistic):
    batch = np.random.default_rng(0).normal(size=(4, 2, 5, 3))
    out = statistic(batch)
    assert out.shape == (4, 2)
    assert np.allclose(out, [[statistic(b) for b in row] for row in batch])


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    scores = np.random.default_rng(0).normal(size=(10, 4))
    estimate, lower, upper = stratified_bootstrap_ci(scores, iqm, reps=500, seed=3)
    assert estimate == iqm(scores)
    assert lower < estimate < upper
    assert stratified_bootstrap_ci(scores, iqm, reps=500, seed=3) == (estimate, lower, upper)
    assert stratified_bootstrap_ci(scores, iqm, reps=500, seed=4) != (estimate, lower, upper)
    _, lower_90, upper_90 = stratified_bootstrap_ci(scores, iqm, reps=500, seed=3, confidence=0.9)
    assert lower < lower_90 < upper_90 < upper


def test_bootstrap_resamples_runs_within_each_task():
    # runs vary only in task 1, so the resampled task-0 column is always all zeros
    scores = np.stack([np.zeros(6), np.arange(6.0)], axis=1)
    seen = []

    def task_means(x):
        seen.append(x)
        return x.mean(axis=-2)[..., 0]

    assert stratified_bootstrap_ci(scores, task_means, reps=100) == (0.0, 0.0, 0.0)
    resamples = seen[0]
    assert resamples.shape == (100, 6, 2)
    assert set(np.unique(resamples[..., 1])) <= set(range(6))
    assert len(np.unique(resamples[..., 1].sum(axis=1))) > 10  # with replacement, not permutations


def test_bootstrap_ci_narrows_with_more_runs():
    rng = np.random.default_rng(0)
    widths = []
    for runs in (5, 50):
        _, lower, upper = stratified_bootstrap_ci(rng.normal(size=(runs, 3)), iqm, reps=500)
        widths.append(upper - lower)
    assert widths[1] < 0.5 * widths[0]


def test_bootstrap_does_not_depend_on_chunking(monkeypatch):
    scores = np.random.default_rng(0).normal(size=(8, 3))
    whole = stratified_bootstrap_ci(scores, median, reps=300)
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 7 * scores.size)  # chunks of 7 resamples
    assert stratified_bootstrap_ci(scores, median, reps=300) == whole


def test_iqm_ci_coverage():
    # IQM of a normal distribution is its mean (symmetry); 95% CIs should cover it ~95% of the time
    rng = np.random.default_rng(0)
    truth = 2.0
    covered = [
        lower <= truth <= upper
        for lower, upper in (
            stratified_bootstrap_ci(rng.normal(truth, 1.0, size=(10, 5)), iqm, reps=300, seed=i)[1:]
            for i in range(200)
        )
    ]
    assert 0.88 <= np.mean(covered) <= 0.99


def test_aggregate():
    scores = np.random.default_rng(0).uniform(size=(6, 3))
    result = aggregate(scores, reps=200, seed=1)
    assert list(result) == ["iqm", "mean", "median", "optimality_gap"]
    assert all(isinstance(i, Interval) and i.lower <= i.estimate <= i.upper for i in result.values())
    assert result["iqm"] == Interval(*stratified_bootstrap_ci(scores, iqm, reps=200, seed=1))
    assert result["median"].estimate == median(scores)
    gap = aggregate(scores, gamma=0.5, reps=200, seed=1)["optimality_gap"]
    assert gap.estimate == pytest.approx(optimality_gap(scores, gamma=0.5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result["iqm"].estimate = 0.0


def test_probability_of_improvement_by_hand_with_ties():
    # task 0: x=1 wins 0; x=2 ties twice (1); x=3 wins twice (2) -> 3 / 9. Task 1: all tied -> 1/2
    x = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    y = np.array([[2.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    assert probability_of_improvement(x, y, reps=10).estimate == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_probability_of_improvement_matches_mann_whitney():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, size=(5, 3)).astype(float), rng.integers(0, 4, size=(7, 3)).astype(float)
    expected = np.mean([
        scipy.stats.mannwhitneyu(x[:, t], y[:, t], alternative="greater").statistic / (5 * 7) for t in range(3)
    ])
    assert probability_of_improvement(x, y, reps=10).estimate == pytest.approx(expected)


def test_probability_of_improvement_extremes():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3))
    same = probability_of_improvement(x, y, reps=300)
    assert abs(same.estimate - 0.5) < 0.1 and same.lower < 0.5 < same.upper
    assert probability_of_improvement(x, x, reps=300).estimate == 0.5
    assert probability_of_improvement(x + 100, y, reps=300) == Interval(1.0, 1.0, 1.0)
    assert probability_of_improvement(x - 100, y, reps=300) == Interval(0.0, 0.0, 0.0)
    assert probability_of_improvement([1.0, 2.0], [0.0], reps=10).estimate == 1.0  # 1-D: one task


def test_probability_of_improvement_deterministic_and_chunked(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(4, 2))
    whole = probability_of_improvement(x, y, reps=200, seed=5)
    assert probability_of_improvement(x, y, reps=200, seed=5) == whole
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 3 * 6 * 4 * 2)
    assert probability_of_improvement(x, y, reps=200, seed=5) == whole


def test_normalise():
    scores = np.array([[10.0, -4.0], [20.0, 2.0]])
    assert np.array_equal(normalise(scores, [10.0, 2.0]), [[1.0, -2.0], [2.0, 1.0]])
    assert np.array_equal(normalise([2.0, 4.0], 4.0), [[0.5], [1.0]])  # one task
    with pytest.raises(ValueError, match=r"reference must be non-zero.*task\(s\) \[1\]"):
        normalise(scores, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"reference must have one value per task, shape \(2,\).*got shape \(3,\)"):
        normalise(scores, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="reference must be finite"):
        normalise(scores, [1.0, np.nan])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: iqm([[1.0, np.nan]]), r"scores must be finite; got 1 non-finite value\(s\), the first nan at index \(0, 1\)"),
        (lambda: mean([1.0, np.inf, -np.inf]), r"scores must be finite; got 2 non-finite"),
        (lambda: median(3.0), r"scores must be a \[\*batch, runs, tasks\] array .*got shape \(\)"),
        (lambda: stratified_bootstrap_ci(np.ones((2, 3, 4)), iqm), r"scores must be a \[runs, tasks\] array .*\(2, 3, 4\)"),
        (lambda: iqm(np.ones((0, 3))), r"scores must not be empty; got shape \(0, 3\)"),
        (lambda: aggregate([]), r"scores must not be empty; got shape \(0,\)"),
        (lambda: mean(["a", "b"]), r"scores must hold real numbers .*got dtype <U1"),
        (lambda: mean([[1.0, 2.0], [3.0]]), r"scores must be a rectangular array"),
        (lambda: stratified_bootstrap_ci(np.ones((3, 2)), iqm, confidence=1.0), r"confidence must be .*between 0 and 1.*got 1.0"),
        (lambda: aggregate(np.ones((3, 2)), confidence=0.0), r"confidence must be .*got 0.0"),
        (lambda: stratified_bootstrap_ci(np.ones((3, 2)), iqm, reps=0), r"reps must be a positive integer.*got 0"),
        (lambda: probability_of_improvement(np.ones((3, 2)), np.ones((3, 2)), reps=-5), r"reps must be .*got -5"),
        (lambda: probability_of_improvement(np.ones((3, 2)), np.ones((3, 3))), r"same number of tasks.*\(3, 2\).*\(3, 3\)"),
        (lambda: probability_of_improvement(np.ones((3, 2)), [[np.nan, 1.0]]), r"y must be finite"),
        (lambda: probability_of_improvement(np.ones((2, 2, 2)), np.ones((3, 2))), r"x must be a \[runs, tasks\] array"),
        (lambda: normalise(np.ones((1, 2, 2)), [1.0, 1.0]), r"scores must be a \[runs, tasks\] array"),
        (lambda: stratified_bootstrap_ci(np.ones((3, 2)), np.mean), r"statistic must reduce \[batch, runs, tasks\] to \[batch\]"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# rliable (Agarwal et al. 2021), the library the OPEN paper used, defines the aggregates; its interval
# estimates run on `arch`, which does not import next to pandas 3 (arch < 8 is what rliable allows), so
# the stratified percentile bootstrap is checked against scipy's, which resamples each task independently.

def test_aggregates_match_rliable():
    from rliable import metrics

    rng = np.random.default_rng(0)
    scores = rng.normal(1.0, 0.7, size=(10, 5))
    assert iqm(scores) == pytest.approx(metrics.aggregate_iqm(scores), rel=1e-12)
    assert mean(scores) == pytest.approx(metrics.aggregate_mean(scores), rel=1e-12)
    for gamma in (0.5, 1.0, 2.0):
        expected = metrics.aggregate_optimality_gap(scores, gamma)
        assert optimality_gap(scores, gamma) == pytest.approx(expected, rel=1e-12)
    # rliable's median is the median of per-task means; ours (documented) pools runs and tasks. One run per task agrees.
    assert median(scores[:1]) == pytest.approx(metrics.aggregate_median(scores[:1]), rel=1e-12)
    x, y = rng.integers(0, 4, size=(8, 3)).astype(float), rng.integers(0, 4, size=(6, 3)).astype(float)  # ties
    assert probability_of_improvement(x, y, reps=10).estimate == pytest.approx(
        metrics.probability_of_improvement(x, y), rel=1e-12)
    assert probability_of_improvement(x, x, reps=10).estimate == metrics.probability_of_improvement(x, x) == 0.5


def scipy_stratified_ci(samples, statistic, reps):
    """scipy's percentile bootstrap resampling every sample (a task's runs) independently."""
    result = scipy.stats.bootstrap(tuple(samples), statistic, n_resamples=reps, method="percentile", paired=False,
                                   vectorized=True, axis=-1, random_state=1)
    return result.confidence_interval


@pytest.mark.parametrize("name", ["iqm", "mean", "optimality_gap"])
def test_stratified_bootstrap_cis_match_scipys(name):
    # Tasks on different scales: pooling runs across tasks would give intervals about twice as wide.
    scores = np.random.default_rng(2).normal([0.0, 1.0, 3.0], 0.5, size=(12, 3))
    ours = aggregate(scores, reps=20_000)[name]
    reference = {"iqm": iqm, "mean": mean, "optimality_gap": optimality_gap}[name]
    lower, upper = scipy_stratified_ci(scores.T, lambda *tasks, axis: reference(np.stack(tasks, axis=-1)), 20_000)
    width = upper - lower
    assert abs(ours.lower - lower) < 0.03 * width and abs(ours.upper - upper) < 0.03 * width


def test_probability_of_improvement_ci_matches_scipys():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0.3, 1.0, size=(10, 2)), rng.normal(0.0, 1.0, size=(8, 2))
    ours = probability_of_improvement(x, y, reps=20_000)

    def poi(x1, x2, y1, y2, axis):
        xs, ys = np.stack([x1, x2], axis=-1), np.stack([y1, y2], axis=-1)
        return stats._improvement(xs, ys)

    lower, upper = scipy_stratified_ci([*x.T, *y.T], poi, 20_000)
    width = upper - lower
    assert abs(ours.lower - lower) < 0.03 * width and abs(ours.upper - upper) < 0.03 * width
