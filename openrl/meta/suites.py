"""The paper's gridworld tasks and evaluation suites (Section 6.4, Figure 4, Appendices D and H).

OPEN is meta-trained on the `all` distribution with antithetic task sampling, and both OPEN and
Adam (tuned on `all`) are tested in distribution and on six out-of-support distributions, also
with agent widths and training lengths they never saw:

```python
learner = OpenES(population_size=64, antithetic_tasks=True)  # paired members share a task
meta_train(learner, presets.open_(), gridworld_task("all"))
evaluate({"OPEN": opt, "Adam": presets.adam("gridworld")}, suite(), seeds=64)
evaluate(..., width_sweep(), seeds=64)                         # Figure 4
evaluate(..., length_sweep(), seeds=64)                        # Figure 16
```

Every task is a `DistributionTask`: each run (each ES member, each evaluation seed) trains on a
new draw of its distribution, as in the paper (Table 10: "each seed is evaluated in a slightly
different setting"). The drawn environments keep their parameters as array leaves, so a
population vmaps over them. Pass `config` to every builder to change the PPO budget or sizes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
from jaxtyping import PRNGKeyArray

from openrl.meta.tasks import DistributionTask
from openrl.rl.ppo import PPOConfig

__all__ = [
    "GRIDWORLDS", "HIDDEN_SIZES", "IN_DISTRIBUTION", "OUT_OF_SUPPORT", "TRAINING_LENGTHS", "GridworldSampler",
    "gridworld_task", "length_sweep", "suite", "width_sweep",
]

IN_DISTRIBUTION = "all"
"""The distribution OPEN was meta-trained and Adam tuned on (paper Table 8)."""

OUT_OF_SUPPORT = ("rand_dense", "rand_sparse", "rand_long", "standard_maze", "sixteen_rooms", "labyrinth")
"""The six out-of-support gridworlds of Figure 4: LPG's (Table 9), then the Minigrid mazes (Table 10)."""

GRIDWORLDS = (IN_DISTRIBUTION, *OUT_OF_SUPPORT)
"""All seven, in the paper's order: every distribution of `openrl.rl.gridworld`."""

HIDDEN_SIZES = (8, 16, 32, 64, 128)
"""Agent widths of Figure 4 (OPEN and Adam only saw 16)."""

TRAINING_LENGTHS = (7_500_000, 15_000_000, 30_000_000, 60_000_000)
"""Total environment steps of the training-length sweep (Figure 16; in distribution: 3e7).

The paper does not list the lengths of its figure in the text: these are factors of two around 3e7.
"""


@dataclasses.dataclass(frozen=True)
class GridworldSampler:
    """`sampler(key)`: a new task of `distribution` as a `VecEnv` of `num_envs` copies.

    Hashable and comparable, so a `DistributionTask` holding it compiles once per (distribution, size).
    """

    distribution: str
    num_envs: int

    def __call__(self, key: PRNGKeyArray) -> eqx.Module:
        """A logged `openrl.rl.envs.VecEnv` on a task drawn with `key`."""
        from openrl.rl import gridworld  # gymnax (and the env registry) load on first use, not with openrl

        return gridworld.vec_env(gridworld.sample_params(key, self.distribution), self.num_envs)


def _check_distributions(distributions: Sequence[str]) -> tuple[str, ...]:
    if isinstance(distributions, str) or not distributions:
        raise ValueError(f"distributions: expected a non-empty sequence of names, got {distributions!r}")
    unknown = [d for d in distributions if d not in GRIDWORLDS]
    if unknown:
        raise ValueError(
            f"distributions: unknown gridworld distribution(s) {unknown}; expected names from {list(GRIDWORLDS)}"
        )
    return tuple(distributions)


def _check_sizes(name: str, values: Sequence[int]) -> tuple[int, ...]:
    if isinstance(values, (str, int)) or not values:
        raise ValueError(f"{name}: expected a non-empty sequence of positive ints, got {values!r}")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad:
        raise ValueError(f"{name}: expected positive ints, got {bad} in {list(values)}")
    return tuple(values)


def _config(config: PPOConfig | None) -> PPOConfig:
    """`config`, by default the paper's gridworld PPO (Table 3)."""
    if config is None:
        return PPOConfig.gridworld()
    if not isinstance(config, PPOConfig):
        raise TypeError(f"config: expected a PPOConfig (e.g. PPOConfig.gridworld()), got {config!r}")
    return config


def gridworld_task(distribution: str = IN_DISTRIBUTION, config: PPOConfig | None = None, *,
                   name: str | None = None) -> DistributionTask:
    """PPO (`PPOConfig.gridworld()` unless `config` is given) on a new task of `distribution` per run.

    `name` defaults to the distribution's.
    """
    if distribution not in GRIDWORLDS:
        raise ValueError(
            f"distribution: unknown gridworld distribution {distribution!r}; expected one of {list(GRIDWORLDS)}"
        )
    config = _config(config)
    return DistributionTask(sampler=GridworldSampler(distribution, config.num_envs), config=config,
                            name=distribution if name is None else name)


def suite(distributions: Sequence[str] = GRIDWORLDS,
          config: PPOConfig | None = None) -> list[DistributionTask]:
    """One task per distribution: the seven gridworlds of Figure 4 at the training width and length."""
    return [gridworld_task(d, config) for d in _check_distributions(distributions)]


def width_sweep(distributions: Sequence[str] = GRIDWORLDS,
                widths: Sequence[int] = HIDDEN_SIZES, config: PPOConfig | None = None) -> list[DistributionTask]:
    """Every distribution with every agent width (Figure 4), named `"<distribution>/width=<w>"`."""
    config = _config(config)
    widths = _check_sizes("widths", widths)
    return [gridworld_task(d, dataclasses.replace(config, width=w), name=f"{d}/width={w}")
            for d in _check_distributions(distributions) for w in widths]


def length_sweep(distributions: Sequence[str] = GRIDWORLDS,
                 lengths: Sequence[int] = TRAINING_LENGTHS,
                 config: PPOConfig | None = None) -> list[DistributionTask]:
    """Every distribution with every training length (Figure 16), named `"<distribution>/steps=<T>"`.

    Raises `ValueError` for a length shorter than one PPO batch of `config`.
    """
    config = _config(config)
    lengths = _check_sizes("lengths", lengths)
    short = [t for t in lengths if t < config.batch_size]
    if short:
        raise ValueError(
            f"lengths: {short} are shorter than one PPO batch (num_envs x num_steps = {config.batch_size})"
        )
    return [gridworld_task(d, dataclasses.replace(config, total_timesteps=t), name=f"{d}/steps={t}")
            for d in _check_distributions(distributions) for t in lengths]
