"""Meta-learners: ask for a population of meta-parameters, tell them its fitness (maximised)."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from evosax.algorithms import Open_ES
from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn
from jaxtyping import Array, Float, PRNGKeyArray, PyTree


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

    def init(self, key: PRNGKeyArray, template: PyTree) -> PyTree:
        """The search state, centred on `template`."""
        raise NotImplementedError

    def ask(self, key: PRNGKeyArray, state: PyTree, template: PyTree) -> PyTree:
        """A population: `template`-shaped PyTree with a leading `population_size` axis."""
        raise NotImplementedError

    def tell(
        self, key: PRNGKeyArray, state: PyTree, population: PyTree, fitness: Float[Array, " pop"], template: PyTree
    ) -> tuple[PyTree, dict[str, Array]]:
        """Update the state with each member's fitness (higher is better)."""
        raise NotImplementedError

    def mean(self, state: PyTree, template: PyTree) -> PyTree:
        """The current centre of the search, shaped like `template`."""
        raise NotImplementedError

    @property
    def pairs_share_tasks(self) -> bool:
        """Whether members i and i + N/2 must be evaluated on the same sampled task."""
        return False


class OpenES(MetaLearner):
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

    def _strategy(self, template: PyTree) -> Open_ES:
        return Open_ES(
            self.population_size,
            template,
            use_antithetic_sampling=True,
            optimizer=optax.adam(optax.exponential_decay(self.learning_rate, 1, self.lr_decay), b1=self.adam_b1),
            std_schedule=optax.exponential_decay(self.sigma_init, 1, self.sigma_decay),
            fitness_shaping_fn=pairwise_rank_shaping if self.antithetic_tasks else centered_rank_fitness_shaping_fn,
        )

    def init(self, key, template):
        es = self._strategy(template)
        with _evosax_broadcasting():
            state = es.init(key, template, es.default_params)
        # Strong dtypes, as `tell` returns them, so the generation step compiles once.
        return jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), state)

    def ask(self, key, state, template):
        es = self._strategy(template)
        with _evosax_broadcasting():
            population, _ = es.ask(key, state, es.default_params)
        return population

    def tell(self, key, state, population, fitness, template):
        es = self._strategy(template)
        fitness, non_finite = sanitise_fitness(fitness)
        # evosax minimises: this is the one place fitness changes sign.
        with _evosax_broadcasting():
            state, _ = es.tell(key, population, -fitness, state, es.default_params)
        return state, {"sigma": state.std, "non_finite": non_finite}

    def mean(self, state, template):
        return self._strategy(template).get_mean(state)
