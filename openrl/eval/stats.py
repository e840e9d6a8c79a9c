"""Aggregate statistics with stratified-bootstrap confidence intervals, as in rliable.

Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice", in vectorised NumPy.
Scores are a `[runs, tasks]` array (a `[runs]` array is one task):

```python
stats.aggregate(scores)["iqm"]                   # Interval(estimate=..., lower=..., upper=...)
stats.stratified_bootstrap_ci(scores, stats.iqm)  # (estimate, lower, upper)
stats.probability_of_improvement(open_scores, adam_scores)
stats.difference(open_scores, adam_scores, stats.iqm)  # IQM(open) - IQM(adam), with a CI
stats.normalise(scores, adam_returns)             # per-task normalisation, as in the OPEN paper
```

The aggregates (`iqm`, `mean`, `median`, `optimality_gap`) reduce over all runs and tasks and
also take leading batch axes (`[*batch, runs, tasks] -> [*batch]`), which is how the bootstrap
evaluates every resample at once. Bootstrap results for a seed do not depend on how the
resamples are split into memory-sized chunks.

openrl's tests check `iqm`, `mean`, `optimality_gap` and `probability_of_improvement` against
`rliable.metrics` (they agree to rounding; `median` differs by definition, see its docstring) and
the stratified percentile intervals against scipy's bootstrap. rliable is not a dependency: its
interval estimates need `arch` < 8, which does not import alongside pandas 3, and it is source-only.
"""

import dataclasses
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
from jaxtyping import ArrayLike, Float, Real

__all__ = [
    "Interval", "aggregate", "difference", "iqm", "mean", "median", "normalise", "optimality_gap",
    "probability_of_improvement", "stratified_bootstrap_ci",
]

ScoresLike: TypeAlias = Real[ArrayLike, "..."] | Sequence[Any]
"""Scores as any array or nested sequence; shapes and values are checked with clear errors."""

Statistic: TypeAlias = Callable[[Float[np.ndarray, "batch runs tasks"]], Float[np.ndarray, " batch"]]
"""Maps a batch of score matrices to one value each, e.g. `iqm`."""

_CHUNK_ELEMENTS = 2**22
"""Largest number of elements the bootstrap materialises per intermediate array (32 MB of float64)."""


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval `[lower, upper]`."""

    estimate: float
    lower: float
    upper: float


def _as_real(value: ScoresLike, name: str) -> Float[np.ndarray, "..."]:
    """`value` as a non-empty, finite float64 array, or a `ValueError` naming `name`."""
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested sequences
        raise ValueError(f"{name} must be a rectangular array of real numbers; got {error}") from None
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must hold real numbers (integer or float dtype); got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {array.shape}")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be finite; got {int(bad.sum())} non-finite value(s), "
            f"the first {array[index]} at index {index}"
        )
    return array


def _as_scores(value: ScoresLike, name: str, *, batched: bool = False) -> Float[np.ndarray, "*batch runs tasks"]:
    """`value` checked as `[runs, tasks]` scores (`[*batch, runs, tasks]` if `batched`); `[runs]` is one task."""
    array = _as_real(value, name)
    if array.ndim == 0 or (array.ndim > 2 and not batched):
        expected = "[*batch, runs, tasks]" if batched else "[runs, tasks]"
        raise ValueError(f"{name} must be a {expected} array (or [runs] for one task); got shape {array.shape}")
    return array[:, None] if array.ndim == 1 else array


def _flat(scores: ScoresLike) -> Float[np.ndarray, "*batch values"]:
    """Checked scores with the runs and tasks axes merged into one."""
    array = _as_scores(scores, "scores", batched=True)
    return array.reshape(*array.shape[:-2], -1)


def _result(values: np.floating | Float[np.ndarray, " *batch"]) -> float | Float[np.ndarray, " *batch"]:
    """A Python float for one score matrix, the array for a batch."""
    return float(values) if np.ndim(values) == 0 else values


def iqm(scores: ScoresLike) -> float | Float[np.ndarray, " *batch"]:
    """Interquartile mean: the mean of the middle 50% of all runs × tasks scores.

    `int(0.25 * n)` of the `n` values are trimmed from each end, as
    `scipy.stats.trim_mean(scores, 0.25, axis=None)` (and rliable) do.
    """
    values = np.sort(_flat(scores), axis=-1)
    n = values.shape[-1]
    cut = int(0.25 * n)
    return _result(values[..., cut:n - cut].mean(axis=-1))


def mean(scores: ScoresLike) -> float | Float[np.ndarray, " *batch"]:
    """Mean of all runs × tasks scores."""
    return _result(_flat(scores).mean(axis=-1))


def median(scores: ScoresLike) -> float | Float[np.ndarray, " *batch"]:
    """Median of all runs × tasks scores.

    rliable's aggregate median is instead the median of the per-task mean scores.
    """
    return _result(np.median(_flat(scores), axis=-1))


def optimality_gap(scores: ScoresLike, gamma: float = 1.0) -> float | Float[np.ndarray, " *batch"]:
    """Mean shortfall from the target `gamma`: the mean of `max(gamma - score, 0)`."""
    return _result(np.maximum(gamma - _flat(scores), 0.0).mean(axis=-1))


def _improvement(
    x: Float[np.ndarray, "*batch runs_x tasks"], y: Float[np.ndarray, "*batch runs_y tasks"]
) -> Float[np.ndarray, " *batch"]:
    """P(X > Y) averaged over tasks: the Mann-Whitney U statistic over `runs_x * runs_y`, ties counting 1/2."""
    xs, ys = x[..., :, None, :], y[..., None, :, :]
    wins = (xs > ys) + 0.5 * (xs == ys)
    return wins.mean(axis=(-3, -2)).mean(axis=-1)


def _check_bootstrap_args(reps: int, confidence: float) -> None:
    if not isinstance(reps, numbers.Integral) or isinstance(reps, bool) or reps < 1:
        raise ValueError(f"reps must be a positive integer (number of bootstrap resamples); got {reps!r}")
    if not (isinstance(confidence, numbers.Real) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number strictly between 0 and 1, e.g. 0.95; got {confidence!r}")


def _evaluate(statistic: Callable[..., Any], samples: Sequence[np.ndarray], count: int) -> Float[np.ndarray, " count"]:
    """`statistic(*samples)`, checked to give one value for each of the `count` batch entries."""
    values = np.asarray(statistic(*samples), dtype=np.float64)
    if values.shape != (count,):
        shapes = ", ".join(str(s.shape) for s in samples)
        raise ValueError(
            f"statistic must reduce [batch, runs, tasks] to [batch]; got output shape {values.shape} "
            f"for input shape(s) {shapes}"
        )
    return values


def _bootstrap(
    samples: Sequence[Float[np.ndarray, "_runs tasks"]],
    statistics: Mapping[str, Callable[..., Any]],
    *,
    reps: int,
    confidence: float,
    seed: int,
    elements_per_rep: int,
) -> dict[str, Interval]:
    """Percentile CIs of each statistic of `samples`, each resampled over runs within every task.

    All statistics see the same resamples. The uniforms behind the run indices are drawn in
    resample-major order, so the result does not depend on the chunk size.
    """
    _check_bootstrap_args(reps, confidence)
    sizes = [s.size for s in samples]
    chunk = max(1, _CHUNK_ELEMENTS // elements_per_rep)
    rng = np.random.default_rng(seed)
    estimates: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    for start in range(0, reps, chunk):
        count = min(chunk, reps - start)
        uniforms = np.split(rng.random((count, sum(sizes))), np.cumsum(sizes)[:-1], axis=1)
        resamples = []
        for sample, u in zip(samples, uniforms):
            runs, tasks = sample.shape
            rows = (u.reshape(count, runs, tasks) * runs).astype(np.intp)  # u < 1, so rows < runs
            resamples.append(sample[rows, np.arange(tasks)])
        for name, statistic in statistics.items():
            estimates[name].append(_evaluate(statistic, resamples, count))
    tail = 50 * (1 - confidence)
    intervals = {}
    for name, statistic in statistics.items():
        lower, upper = np.percentile(np.concatenate(estimates[name]), [tail, 100 - tail])
        estimate = _evaluate(statistic, [s[None] for s in samples], 1)[0]
        intervals[name] = Interval(float(estimate), float(lower), float(upper))
    return intervals


def stratified_bootstrap_ci(
    scores: ScoresLike, statistic: Statistic, *, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """`(estimate, lower, upper)`: `statistic` of `scores` with a stratified-bootstrap percentile CI.

    Each of the `reps` resamples draws `runs` runs with replacement independently within each task.
    `statistic` maps `[batch, runs, tasks]` to `[batch]` (all aggregates in this module do) and is
    called on batches of resamples. Deterministic for a given `seed`.
    """
    scores = _as_scores(scores, "scores")
    interval = _bootstrap(
        [scores], {"statistic": statistic}, reps=reps, confidence=confidence, seed=seed,
        elements_per_rep=scores.size,
    )["statistic"]
    return interval.estimate, interval.lower, interval.upper


def aggregate(
    scores: ScoresLike, *, gamma: float = 1.0, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Interval]:
    """IQM, mean, median and optimality gap (target `gamma`) of `scores`, each with a bootstrap CI.

    All four use the same resamples; each interval equals `stratified_bootstrap_ci` with the same seed.
    """
    scores = _as_scores(scores, "scores")
    statistics = {
        "iqm": iqm, "mean": mean, "median": median,
        "optimality_gap": lambda x: optimality_gap(x, gamma),
    }
    return _bootstrap(
        [scores], statistics, reps=reps, confidence=confidence, seed=seed, elements_per_rep=scores.size
    )


def _as_pair(x: ScoresLike, y: ScoresLike) -> tuple[Float[np.ndarray, "runs_x tasks"], Float[np.ndarray, "runs_y tasks"]]:
    """Two algorithms' scores, checked to be on the same number of tasks."""
    x, y = _as_scores(x, "x"), _as_scores(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have the same number of tasks (columns); got x {x.shape} and y {y.shape}"
        )
    return x, y


def probability_of_improvement(
    x: ScoresLike, y: ScoresLike, *, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """P(X > Y): the chance a random run of `x` beats a random run of `y` on a task, averaged over tasks.

    Per task this is the Mann-Whitney U statistic over `runs_x * runs_y` (ties count 1/2), as in
    rliable. The CI resamples the runs of `x` and of `y` independently within each task.

    Args:
        x: `[runs_x, tasks]` scores of the first algorithm.
        y: `[runs_y, tasks]` scores of the second, on the same tasks.
    """
    x, y = _as_pair(x, y)
    (runs_x, tasks), runs_y = x.shape, y.shape[0]
    return _bootstrap(
        [x, y], {"poi": _improvement}, reps=reps, confidence=confidence, seed=seed,
        elements_per_rep=tasks * max(runs_x * runs_y, runs_x + runs_y),
    )["poi"]


def difference(
    x: ScoresLike, y: ScoresLike, statistic: Statistic = iqm, *, reps: int = 2000, confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """`statistic(x) - statistic(y)`, e.g. the IQM improvement of one optimizer over another (paper Figure 6).

    The CI resamples the runs of `x` and of `y` independently within each task.

    Args:
        x: `[runs_x, tasks]` scores of the first algorithm.
        y: `[runs_y, tasks]` scores of the second, on the same tasks.
    """
    x, y = _as_pair(x, y)
    return _bootstrap(
        [x, y], {"difference": lambda a, b: statistic(a) - statistic(b)}, reps=reps, confidence=confidence,
        seed=seed, elements_per_rep=x.size + y.size,
    )["difference"]


def normalise(scores: ScoresLike, reference: ScoresLike) -> Float[np.ndarray, "runs tasks"]:
    """`scores` divided by a per-task `reference`, e.g. Adam's return on each task as in the OPEN paper.

    Args:
        scores: `[runs, tasks]` (or `[runs]`, one task).
        reference: `[tasks]` non-zero values (a scalar for one task). A negative reference
            reverses the order of that task's scores.

    Returns:
        `[runs, tasks]` normalised scores.
    """
    scores = _as_scores(scores, "scores")
    reference = np.atleast_1d(_as_real(reference, "reference"))
    if reference.shape != scores.shape[1:]:
        raise ValueError(
            f"reference must have one value per task, shape ({scores.shape[1]},) for scores of shape "
            f"{scores.shape}; got shape {reference.shape}"
        )
    zero = np.flatnonzero(reference == 0)
    if zero.size:
        raise ValueError(f"reference must be non-zero for every task; got 0 for task(s) {zero.tolist()}")
    return scores / reference
