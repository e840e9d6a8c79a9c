"""Meta-learners: ask for a population of meta-parameters, tell them its fitness (maximised).

`OpenES` is the paper's; `EvosaxLearner(strategy)` runs any of evosax's distribution-based
strategies (`EVOSAX_STRATEGIES`) with the same fitness handling, sharding and checkpointing.
Every learner is registered in the `openrl.meta_learners` entry-point group; `make_learner(name, ...)`
builds one by name (the CLI's `--learner`).
"""

import abc
import dataclasses
import functools
import inspect
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from openrl import plugins

__all__ = [
    "EVOSAX_STRATEGIES", "EvosaxLearner", "MetaLearner", "OpenES", "learner_names", "make_learner",
    "pairwise_rank_shaping", "sanitise_fitness",
]

ENTRY_POINT_GROUP = "openrl.meta_learners"

EXCLUDED_STRATEGIES: dict[str, str] = {
    "Open_ES": "use OpenES, which runs it with the paper's settings",
    "RandomSearch": "it needs a user-supplied sampling function",
    "SV_CMA_ES": "it evolves several populations at once",
    "SV_Open_ES": "it evolves several populations at once",
    "NoiseReuseES": "its estimate assumes truncated unrolls, not whole training runs",
    "PersistentES": "its estimate assumes truncated unrolls, not whole training runs",
    "GuidedES": "it needs a surrogate gradient, which training runs do not give",
    "GradientlessDescent": "it has no sampling scale (sigma_init)",
    "iAMaLGaM_Full": "in evosax 0.3.2 its mean walks away from the optimum of a 20-d quadratic",
    "iAMaLGaM_Univariate": "in evosax 0.3.2 its mean walks away from the optimum of a 20-d quadratic",
}
"""evosax's distribution-based strategies `EvosaxLearner` does not offer, and why."""

EVOSAX_STRATEGIES: tuple[str, ...] = (
    "ARS", "ASEBO", "CMAAnchoredLES", "CMA_ES", "CR_FM_NES", "DES", "ESMC", "EvoTF_ES", "HillClimbing", "LES",
    "LM_MA_ES", "MA_ES", "PGPE", "Rm_ES", "SNES", "Sep_CMA_ES", "SimpleES", "SimulatedAnnealing", "xNES",
)
"""Every evosax 0.3 distribution-based strategy `EvosaxLearner` runs, by evosax's name: all but
`EXCLUDED_STRATEGIES` (written out, and checked against evosax by the tests, because importing evosax
computes on a JAX device, which must wait until `jax.distributed.initialize` has run)."""


def _algorithms() -> dict[str, Any]:
    """evosax's distribution-based strategies by name (evosax is imported on first use; see above)."""
    from evosax.algorithms import distribution_based_algorithms

    return distribution_based_algorithms


def sanitise_fitness(fitness: Float[Array, " pop"]) -> tuple[Float[Array, " pop"], Array]:
    """Replace every non-finite fitness by less than the worst finite one; also count them."""
    finite = jnp.isfinite(fitness)
    worst = jnp.min(jnp.where(finite, fitness, jnp.inf))
    worst = jnp.where(jnp.isfinite(worst), worst, 0.0)
    return jnp.where(finite, fitness, worst - 1.0), jnp.sum(~finite)


def pairwise_rank_shaping(population: Any, fitness: Float[Array, " pop"], state: Any, params: Any) -> Array:
    """Antithetic task sampling: rank each pair (i, i + N/2) within itself, as ±0.5 (0 on a tie)."""
    half = fitness.shape[0] // 2
    sign = 0.5 * jnp.sign(fitness[:half] - fitness[half:])
    return jnp.concatenate([sign, -sign])


def _evosax_broadcasting():
    """evosax relies on implicit rank promotion, which strict settings (our tests) forbid."""
    return jax.numpy_rank_promotion("allow")


class MetaLearner(eqx.Module):
    """Search over meta-parameter PyTrees `theta` (shaped like `template`) to maximise fitness."""

    population_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def init(self, key: PRNGKeyArray, template: PyTree) -> PyTree:
        """The search state, centred on `template`."""

    @abc.abstractmethod
    def ask(self, key: PRNGKeyArray, state: PyTree, template: PyTree) -> tuple[PyTree, PyTree]:
        """A population (`template`-shaped PyTree with a leading `population_size` axis) and the state
        to `tell` its fitness to (some strategies record their samples in it)."""

    @abc.abstractmethod
    def tell(
        self, key: PRNGKeyArray, state: PyTree, population: PyTree, fitness: Float[Array, " pop"], template: PyTree
    ) -> tuple[PyTree, dict[str, Array]]:
        """Update the state with each member's fitness (higher is better).

        Returns the new state and metrics with at least `sigma` (the mean sampling scale) and
        `non_finite` (how many fitness values were NaN or infinite).
        """

    @abc.abstractmethod
    def mean(self, state: PyTree, template: PyTree) -> PyTree:
        """The current centre of the search, shaped like `template`."""

    @property
    def pairs_share_tasks(self) -> bool:
        """Whether members i and i + N/2 must be evaluated on the same sampled task."""
        return False


class AbstractEvosaxLearner(MetaLearner):
    """A `MetaLearner` over an evosax distribution-based strategy.

    Fitness handling lives here once for every such learner: non-finite fitness ranks worst
    (`sanitise_fitness`) and the sign flips for evosax, which minimises. Subclasses say which
    strategy to build (`_strategy`) and with which parameters (`_params`).
    """

    @abc.abstractmethod
    def _strategy(self, template: PyTree) -> Any:
        """The evosax strategy for `template`-shaped solutions."""

    @abc.abstractmethod
    def _params(self, es: Any) -> Any:
        """The strategy's parameters."""

    def _built(self, template: PyTree) -> tuple[Any, Any]:
        """The strategy and its parameters, computed eagerly even under `jit` (some strategies turn
        their sizes into Python numbers); only `template`'s shapes matter."""
        stand_in = jax.tree.map(lambda x: np.zeros(np.shape(x), x.dtype), template)
        with jax.ensure_compile_time_eval():
            es = self._strategy(stand_in)
            return es, self._params(es)

    def init(self, key, template):
        es, params = self._built(template)
        with _evosax_broadcasting():
            state = es.init(key, template, params)
        return _strong(state)

    def ask(self, key, state, template):
        es, params = self._built(template)
        with _evosax_broadcasting():
            population, state = es.ask(key, state, params)
        return population, _strong(state)

    def tell(self, key, state, population, fitness, template):
        es, params = self._built(template)
        fitness, non_finite = sanitise_fitness(fitness)
        # evosax minimises: this is the one place fitness changes sign.
        with _evosax_broadcasting():
            state, _ = es.tell(key, population, -fitness, state, params)
        sigma = jnp.mean(state.std) if hasattr(state, "std") else jnp.asarray(jnp.nan)
        return _strong(state), {"sigma": sigma, "non_finite": non_finite}

    def mean(self, state, template):
        return self._built(template)[0].get_mean(state)


def _strong(state: PyTree) -> PyTree:
    """`state` with strong dtypes (evosax builds some fields from Python scalars), so that `init`,
    `ask` and `tell` return one type and the generation step compiles once."""
    return jax.tree.map(lambda x: jnp.array(x, dtype=jnp.asarray(x).dtype), state)


class OpenES(AbstractEvosaxLearner):
    """OpenAI-ES (evosax `Open_ES`) with the paper's settings (Section 5.2, Table 7).

    Centred-rank fitness shaping, antithetic sampling, Adam (b1 = 0.99) on the mean
    with an exponentially decaying learning rate and σ. With `antithetic_tasks`,
    each ±ε pair is trained on one sampled task and ranked within the pair.
    """

    population_size: int = eqx.field(static=True)
    sigma_init: float = eqx.field(static=True, default=0.03)
    sigma_decay: float = eqx.field(static=True, default=0.999)
    learning_rate: float = eqx.field(static=True, default=0.03)
    lr_decay: float = eqx.field(static=True, default=0.999)
    adam_b1: float = eqx.field(static=True, default=0.99)
    antithetic_tasks: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if not isinstance(self.population_size, int) or self.population_size < 2 or self.population_size % 2:
            raise ValueError(
                f"population_size: antithetic sampling needs an even number >= 2, got {self.population_size!r}"
            )
        for name in ("sigma_init", "learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)!r}")
        for name in ("sigma_decay", "lr_decay", "adam_b1"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name}: expected a number in (0, 1], got {getattr(self, name)!r}")

    @property
    def pairs_share_tasks(self) -> bool:
        return self.antithetic_tasks

    def _strategy(self, template: PyTree) -> Any:
        from evosax.algorithms import Open_ES
        from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn

        return Open_ES(
            self.population_size,
            template,
            use_antithetic_sampling=True,
            optimizer=optax.adam(optax.exponential_decay(self.learning_rate, 1, self.lr_decay), b1=self.adam_b1),
            std_schedule=optax.exponential_decay(self.sigma_init, 1, self.sigma_decay),
            fitness_shaping_fn=pairwise_rank_shaping if self.antithetic_tasks else centered_rank_fitness_shaping_fn,
        )

    def _params(self, es):
        return es.default_params


def _check_setting(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{name}: expected a number or a string (a setting of the evosax strategy), got {value!r}")


class EvosaxLearner(AbstractEvosaxLearner):
    """Any evosax distribution-based strategy (`EVOSAX_STRATEGIES`, e.g. `"SNES"`, `"PGPE"`, `"Sep_CMA_ES"`).

    `sigma_init` is the initial sampling scale (the strategy's `std_init`, or a constant
    `std_schedule` for strategies that take one); the default suits optimizers whose
    meta-parameters start at zero, as evosax's own default of 1 does not. Other `settings`
    are the strategy's constructor arguments (e.g. `subspace_dims` for ASEBO) or fields of its
    parameters (e.g. `lr_std_init` for SNES); everything else is evosax's default, including
    each strategy's fitness shaping and optimizer.

    ```python
    learner = EvosaxLearner("SNES", population_size=16, sigma_init=0.05)
    ```
    """

    strategy: str = eqx.field(static=True)
    population_size: int = eqx.field(static=True)
    sigma_init: float = eqx.field(static=True)
    settings: tuple[tuple[str, Any], ...] = eqx.field(static=True)

    def __init__(self, strategy: str, population_size: int, sigma_init: float = 0.03, **settings: Any):
        if strategy not in EVOSAX_STRATEGIES:
            why = f" ({EXCLUDED_STRATEGIES[strategy]})" if strategy in EXCLUDED_STRATEGIES else ""
            raise ValueError(f"strategy: expected one of {list(EVOSAX_STRATEGIES)}, got {strategy!r}{why}")
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 2:
            raise ValueError(f"population_size: expected an int >= 2, got {population_size!r}")
        if isinstance(sigma_init, bool) or not isinstance(sigma_init, (int, float)) or not sigma_init > 0:
            raise ValueError(f"sigma_init: expected a positive number, got {sigma_init!r}")
        for name, value in settings.items():
            _check_setting(name, value)
        self.strategy = strategy
        self.population_size = population_size
        self.sigma_init = float(sigma_init)
        self.settings = tuple(sorted(settings.items()))

    def __check_init__(self):
        cls = _algorithms()[self.strategy]
        arguments, fields = self._accepted(cls)
        unknown = [name for name, _ in self.settings if name not in arguments and name not in fields]
        if unknown:
            raise ValueError(
                f"{unknown[0]}: {self.strategy} has no setting {unknown[0]!r}; it takes constructor arguments "
                f"{sorted(arguments)} and parameters {sorted(fields)}"
            )
        try:  # evosax checks its arguments with `assert`: surface those as our errors, now
            self._strategy(np.zeros(4, np.float32))
        except AssertionError as e:
            raise ValueError(f"population_size: {self.strategy} rejects {self.population_size}: {e}") from e

    @staticmethod
    def _accepted(cls: type) -> tuple[set[str], set[str]]:
        """Constructor arguments a setting may give, and the strategy's parameter fields."""
        arguments = set(inspect.signature(cls.__init__).parameters) - {
            "self", "population_size", "solution", "optimizer", "std_schedule", "fitness_shaping_fn", "metrics_fn",
        }
        fields = {f.name for f in dataclasses.fields(cls(4, np.zeros(4, np.float32)).default_params)}
        return arguments, fields - {"std_init"}

    def _strategy(self, template):
        cls = _algorithms()[self.strategy]
        arguments, _ = self._accepted(cls)
        kwargs = {name: value for name, value in self.settings if name in arguments}
        if "std_schedule" in inspect.signature(cls.__init__).parameters:
            kwargs["std_schedule"] = optax.constant_schedule(self.sigma_init)
        return cls(self.population_size, template, **kwargs)

    def _params(self, es):
        params = es.default_params
        names = {f.name for f in dataclasses.fields(params)}
        overrides = {name: value for name, value in self.settings if name in names}
        if "std_init" in names:
            overrides["std_init"] = self.sigma_init
        return params.replace(**overrides)


class EvosaxStrategies(plugins.Family):
    """The `openrl.meta_learners` entry for every name in `EVOSAX_STRATEGIES`: binds `EvosaxLearner`'s strategy."""

    def names(self) -> tuple[str, ...]:
        return EVOSAX_STRATEGIES

    def bind(self, name: str) -> Any:
        return functools.partial(EvosaxLearner, name)


EVOSAX = EvosaxStrategies()
"""The entry-point object for evosax's strategies (see `pyproject.toml`)."""


def learner_names() -> list[str]:
    """Every meta-learner `make_learner` knows: the `openrl.meta_learners` entry points, sorted."""
    return sorted(plugins.available(ENTRY_POINT_GROUP))


def make_learner(name: str, **options: Any) -> MetaLearner:
    """The meta-learner registered as `name`, built with `options` (e.g. `population_size=16`).

    Raises `ValueError` for an unknown name or an option the learner does not take, naming the
    ones it does, before anything is built; `PluginError` for a broken plugin.
    """
    known = plugins.available(ENTRY_POINT_GROUP)
    if name not in known and name not in plugins.conflicts(ENTRY_POINT_GROUP):
        raise ValueError(f"name: unknown meta-learner {name!r}; known meta-learners: {sorted(known)}")
    factory = plugins.load(ENTRY_POINT_GROUP, name)
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        parameters = ()
    if parameters and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        accepted = [p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
        for option, value in options.items():
            if option not in accepted:
                raise ValueError(f"{option}: meta-learner {name!r} takes no option {option!r} (got {value!r}); it takes {accepted}")
    return factory(**options)
