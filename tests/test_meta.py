"""Meta-learning: ES on known problems, antithetic task pairing, NaN fitness, resume, sharding, bad input."""

import json
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import openrl as orl
from openrl.meta import CheckpointError, DistributionTask, EnvTask, MetaConfig, OpenES, Task, meta_train
from openrl.meta.learners import (
    EVOSAX_STRATEGIES,
    EXCLUDED_STRATEGIES,
    EvosaxLearner,
    MetaLearner,
    learner_names,
    make_learner,
    pairwise_rank_shaping,
    sanitise_fitness,
)
from openrl.meta.tasks import DRAW_STREAM
from openrl.meta.train import population_mesh, task_fitness
from openrl.optim import presets
from openrl.rl.agent import ActorCritic
from openrl.rl.ppo import PPOConfig, TrainResult

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from probe_envs import OneStepProbe  # noqa: E402


class Offset(eqx.Module):
    """A sampled 'environment': just a number added to the fitness."""

    value: jax.Array


class QuadraticTask(Task):
    """Fitness -(sum of (theta - 0.5)^2) over the optimizer's arrays, plus the sampled offset; no PPO."""

    name: str = eqx.field(static=True, default="quadratic")
    config: PPOConfig = PPOConfig(total_timesteps=1024, num_envs=8, num_steps=128)
    offsets: bool = eqx.field(static=True, default=False)

    def sample(self, key):
        return Offset(jax.random.uniform(key) * 100.0) if self.offsets else Offset(jnp.zeros(()))

    def run(self, optimizer, env, key):
        theta = jax.flatten_util.ravel_pytree(eqx.filter(optimizer, eqx.is_inexact_array))[0]
        value = -jnp.sum((theta - 0.5) ** 2) + env.value
        agent = ActorCritic(1, 2, discrete=True, width=2, depth=1, key=key)
        return TrainResult(agent=agent, opt_state=None, returns=value[None], dormancy=jnp.zeros(1), final_return=value, stats={})


def small_optimizer():
    return orl.Optimizer([orl.Gradient()], orl.MagnitudeHead(), size=orl.NetworkSize(gru=2, width=2, depth=1))


def test_es_maximises_a_quadratic_through_the_api():
    learner = OpenES(population_size=32, sigma_init=0.1, learning_rate=0.05, sigma_decay=1.0, lr_decay=1.0, adam_b1=0.9)
    template = {"x": jnp.zeros(5)}
    state = learner.init(jax.random.key(0), template)

    @jax.jit
    def step(state, key):
        population, state = learner.ask(key, state, template)
        fitness = -jnp.sum((population["x"] - 1.0) ** 2, axis=1)
        return learner.tell(key, state, population, fitness, template)[0]

    for i in range(150):
        state = step(state, jax.random.key(i))
    np.testing.assert_allclose(learner.mean(state, template)["x"], 1.0, atol=0.1)


def test_non_finite_fitness_ranks_worst_and_training_goes_on():
    fitness, count = sanitise_fitness(jnp.array([1.0, jnp.nan, 3.0, jnp.inf, -jnp.inf, 2.0]))
    assert int(count) == 3
    assert np.all(np.asarray(fitness)[[1, 3, 4]] < 1.0) and np.all(np.isfinite(fitness))
    assert np.array_equal(sanitise_fitness(jnp.array([jnp.nan, jnp.nan]))[0], jnp.array([-1.0, -1.0]))

    learner = OpenES(population_size=4)
    template = {"x": jnp.zeros(3)}
    state = learner.init(jax.random.key(0), template)
    population, state = learner.ask(jax.random.key(1), state, template)
    state, metrics = learner.tell(jax.random.key(2), state, population, jnp.array([jnp.nan, 1.0, jnp.inf, 0.0]), template)
    assert int(metrics["non_finite"]) == 2
    assert np.all(np.isfinite(learner.mean(state, template)["x"]))


def test_antithetic_task_sampling_pairs_members():
    task = QuadraticTask(offsets=True)
    optimizer = small_optimizer()
    template, static = eqx.partition(optimizer, eqx.is_inexact_array)
    learner = OpenES(population_size=8, antithetic_tasks=True)
    population, _ = learner.ask(jax.random.key(0), learner.init(jax.random.key(1), template), template)
    scores = task_fitness(task, static, population, jax.random.key(2), num_rollouts=1, paired=True)
    offsets = np.asarray(scores) - np.asarray(
        task_fitness(QuadraticTask(), static, population, jax.random.key(2), num_rollouts=1, paired=True)
    )
    np.testing.assert_allclose(offsets[:4], offsets[4:], rtol=1e-5)
    assert len(np.unique(np.round(offsets[:4], 3))) == 4
    shaped = pairwise_rank_shaping(None, jnp.array([3.0, 1.0, 2.0, 2.0]), None, None)
    assert np.array_equal(shaped, [0.5, -0.5, -0.5, 0.5])


def test_meta_train_learns_a_quadratic_and_writes_its_files(tmp_path):
    learner = OpenES(population_size=16, sigma_init=0.05, learning_rate=0.05)
    result = meta_train(learner, small_optimizer(), QuadraticTask(), MetaConfig(generations=30, eval_every=10),
                        out_dir=tmp_path, progress=False)
    fitness = [r["fitness_mean"] for r in result.history]
    assert fitness[-1] > fitness[0] + 0.5
    assert {p.name for p in tmp_path.iterdir()} >= {"checkpoints", "metrics.jsonl", "best.eqx"}
    assert not (tmp_path / "fitness.png").exists()  # figures are the caller's (meta sits below eval)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in lines] == list(range(1, 31))
    assert [r["validation"] for r in lines if "validation" in r] == [r["validation"] for r in result.history if "validation" in r]
    loaded = eqx.tree_deserialise_leaves(tmp_path / "best.eqx", small_optimizer())
    assert eqx.tree_equal(loaded, result.best)


def test_resume_gives_the_uninterrupted_result(tmp_path):
    learner = OpenES(population_size=8, sigma_init=0.05, learning_rate=0.05)
    config = MetaConfig(generations=6, eval_every=2, checkpoint_every=2)
    whole = meta_train(learner, small_optimizer(), QuadraticTask(), config, out_dir=tmp_path / "a", progress=False)
    meta_train(learner, small_optimizer(), QuadraticTask(), MetaConfig(generations=4, eval_every=2, checkpoint_every=2),
               out_dir=tmp_path / "b", progress=False)
    resumed = meta_train(learner, small_optimizer(), QuadraticTask(), config, out_dir=tmp_path / "b", resume=True,
                         progress=False)
    assert eqx.tree_equal(whole.final, resumed.final)
    assert eqx.tree_equal(whole.best, resumed.best)
    assert [r["fitness_mean"] for r in whole.history] == [r["fitness_mean"] for r in resumed.history]


def test_meta_parameters_limits_the_search_to_the_chosen_arrays(tmp_path):
    optimizer = small_optimizer()
    output = lambda o: o.network.output  # noqa: E731
    config = MetaConfig(generations=2, eval_every=0, checkpoint_every=1)
    result = meta_train(OpenES(population_size=4, sigma_init=0.1), optimizer, QuadraticTask(), config,
                        out_dir=tmp_path, progress=False, meta_parameters=output)
    assert eqx.tree_equal(eqx.tree_at(output, result.final, output(optimizer)), optimizer)
    assert not np.allclose(result.final.network.output.weight, optimizer.network.output.weight)
    with pytest.raises(CheckpointError, match="meta_parameters"):  # a run searching other arrays is another run
        meta_train(OpenES(population_size=4, sigma_init=0.1), optimizer, QuadraticTask(), config, out_dir=tmp_path,
                   resume=True, progress=False)
    with pytest.raises(ValueError, match="meta_parameters: selects no floating-point array"):
        meta_train(OpenES(population_size=4), optimizer, QuadraticTask(), config, meta_parameters=lambda o: o.head)


def test_bad_checkpoints_are_errors_not_restarts(tmp_path):
    learner = OpenES(population_size=8)
    config = MetaConfig(generations=2, eval_every=0, checkpoint_every=1)
    meta_train(learner, small_optimizer(), QuadraticTask(), config, out_dir=tmp_path, progress=False)
    with pytest.raises(FileExistsError, match="already holds a run"):
        meta_train(learner, small_optimizer(), QuadraticTask(), config, out_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"different configuration \(differs in \['learner'\]\)"):
        meta_train(OpenES(population_size=8, sigma_init=0.1), small_optimizer(), QuadraticTask(), config,
                   out_dir=tmp_path, resume=True, progress=False)
    for path in (tmp_path / "checkpoints").rglob("*"):
        if path.is_file() and path.stat().st_size > 0:
            path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        meta_train(learner, small_optimizer(), QuadraticTask(), config, out_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        meta_train(learner, small_optimizer(), QuadraticTask(), config, out_dir=tmp_path / "empty", resume=True,
                   progress=False)


def test_sharded_equals_single_device():
    assert len(jax.devices()) == 2, "conftest fakes two CPU devices"
    # A large sigma so that members differ in fitness: near zero the updates are too small to matter.
    learner = OpenES(population_size=8, sigma_init=1.0, learning_rate=0.05)
    config = MetaConfig(generations=3, eval_every=0)
    task = EnvTask(name="bandit", config=PPOConfig(total_timesteps=8 * 16 * 4, num_envs=8, num_steps=16,
                                                   num_minibatches=2, width=8), env=OneStepProbe("bandit"))
    sharded = meta_train(learner, presets.no_features(), task, config, progress=False)
    single = meta_train(learner, presets.no_features(), task, config, progress=False, devices=jax.devices()[:1])
    again = meta_train(learner, presets.no_features(), task, config, progress=False)
    assert eqx.tree_equal(sharded.final, again.final)
    assert len({r["fitness_max"] for r in sharded.history}) > 1
    np.testing.assert_allclose([r["fitness_mean"] for r in sharded.history], [r["fitness_mean"] for r in single.history])
    # Summation order differs across devices; Adam on the mean amplifies those ulps where the ES gradient is
    # near 0. A wrong member order or a lost shard would move parameters by ~learning_rate (0.05).
    for a, b in zip(jax.tree.leaves(eqx.filter(sharded.final, eqx.is_array)), jax.tree.leaves(eqx.filter(single.final, eqx.is_array))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_bad_meta_config():
    with pytest.raises(ValueError, match="population_size: antithetic sampling needs an even number"):
        OpenES(population_size=7)
    with pytest.raises(ValueError, match="sigma_init: expected a positive number, got -0.1"):
        OpenES(population_size=8, sigma_init=-0.1)
    with pytest.raises(ValueError, match="MetaConfig.generations: expected a positive int, got 0"):
        MetaConfig(generations=0)
    with pytest.raises(ValueError, match="population_size: 6 members cannot be split evenly over 4 devices"):
        population_mesh(6, jax.devices() * 2)
    # Our message; under the tests' runtime type checking (conftest), beartype's, naming the parameter.
    with pytest.raises(TypeError, match="problem: expected a Task or MultiTask|parameter 'problem'"):
        meta_train(OpenES(population_size=8), small_optimizer(), "breakout")
    with pytest.raises(ValueError, match="resume: needs out_dir"):
        meta_train(OpenES(population_size=8), small_optimizer(), QuadraticTask(), resume=True)
    with pytest.raises(ValueError, match="normalisers: expected positive reference returns"):
        orl.meta.MultiTask([QuadraticTask(), QuadraticTask()], [1.0, 0.0])


def test_reference_returns_train_each_seed_on_its_own_draw():
    optimizer = small_optimizer()
    theta = jax.flatten_util.ravel_pytree(eqx.filter(optimizer, eqx.is_inexact_array))[0]
    keys = jax.random.split(jax.random.key(3), 4)
    offsets = [float(QuadraticTask(offsets=True).sample(jax.random.fold_in(k, DRAW_STREAM)).value) for k in keys]
    assert len(set(offsets)) == 4
    fixed, drawn = orl.meta.reference_returns([QuadraticTask(), QuadraticTask(offsets=True)], lambda task: optimizer,
                                              seeds=4, key=jax.random.key(3))
    assert fixed == pytest.approx(-float(jnp.sum((theta - 0.5) ** 2)))
    assert drawn == pytest.approx(fixed + np.mean(offsets), rel=1e-5)


def test_distribution_task_samples_environments():
    task = DistributionTask(name="offsets", config=PPOConfig(total_timesteps=1024, num_envs=8, num_steps=128),
                            sampler=lambda key: Offset(jax.random.uniform(key)))
    assert float(task.sample(jax.random.key(0)).value) != float(task.sample(jax.random.key(1)).value)


# ------------------------------------------------------------------------------- every registered learner


def _learner(name: str):
    """A small learner of each registered kind: the paper's OpenES settings scaled to a quadratic."""
    options = {"population_size": 8, "sigma_init": 0.1}
    if name == "OpenES":
        options |= {"learning_rate": 0.05, "sigma_decay": 1.0, "lr_decay": 1.0}
    return make_learner(name, **options)


@pytest.mark.parametrize("name", learner_names())
def test_every_registered_learner_meta_trains_the_quadratic(name, tmp_path):
    """Sharded over the two fake devices, checkpointed and resumed to the same numbers, and better than the start.

    Eight generations: the evosax strategies' compilation is most of the cost, so the budget is
    the least that shows each one moving its mean towards the optimum (a sign error would move it away).
    """
    learner = _learner(name)
    optimizer = small_optimizer()
    start = -float(jnp.sum((jax.flatten_util.ravel_pytree(eqx.filter(optimizer, eqx.is_inexact_array))[0] - 0.5) ** 2))

    def config(generations):
        return MetaConfig(generations=generations, eval_every=8, eval_seeds=1, checkpoint_every=4)

    whole = meta_train(learner, optimizer, QuadraticTask(), config(8), out_dir=tmp_path / "a", progress=False)
    meta_train(learner, optimizer, QuadraticTask(), config(4), out_dir=tmp_path / "b", progress=False)
    resumed = meta_train(learner, optimizer, QuadraticTask(), config(8), out_dir=tmp_path / "b", resume=True,
                         progress=False)
    assert eqx.tree_equal(whole.final, resumed.final)
    assert all(np.isfinite(r["fitness_mean"]) and r["non_finite"] == 0 for r in whole.history)
    assert whole.history[-1]["validation"] > start, f"{name}: {start} -> {whole.history[-1]['validation']}"


def test_learners_by_name_and_bad_learner_settings():
    assert {"OpenES", "SNES", "PGPE", "Sep_CMA_ES", "CMA_ES", "xNES"} <= set(learner_names())
    assert set(EVOSAX_STRATEGIES) | {"OpenES"} == set(learner_names())
    from evosax.algorithms import distribution_based_algorithms

    assert set(EVOSAX_STRATEGIES) == set(distribution_based_algorithms) - set(EXCLUDED_STRATEGIES)
    snes = make_learner("SNES", population_size=8, sigma_init=0.05, lr_std_init=0.2)
    assert snes == EvosaxLearner("SNES", population_size=8, sigma_init=0.05, lr_std_init=0.2)
    with pytest.raises(ValueError, match=r"unknown meta-learner 'Snes'; known meta-learners: \[.*'SNES'"):
        make_learner("Snes", population_size=8)
    with pytest.raises(ValueError, match=r"learning_rate: meta-learner 'OpenES'.*no option|learning_rate: SNES has no setting"):
        make_learner("SNES", population_size=8, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"sigma: meta-learner 'OpenES' takes no option 'sigma'.*'sigma_init'"):
        make_learner("OpenES", population_size=8, sigma=0.1)
    with pytest.raises(ValueError, match=r"strategy: expected one of .*'SNES'.*got 'Open_ES' \(use OpenES"):
        EvosaxLearner("Open_ES", population_size=8)
    with pytest.raises(ValueError, match=r"population_size: PGPE rejects 7: Population size must be even"):
        EvosaxLearner("PGPE", population_size=7)
    with pytest.raises(ValueError, match=r"sigma_init: expected a positive number, got -1.0"):
        EvosaxLearner("SNES", population_size=8, sigma_init=-1.0)


def test_meta_learner_bases_are_abstract():
    with pytest.raises(TypeError, match="abstract"):
        MetaLearner()

    class Halfway(MetaLearner):  # forgets tell and mean
        population_size: int = 4

        def init(self, key, template):
            return template

        def ask(self, key, state, template):
            return state, state

    with pytest.raises(TypeError, match="abstract"):
        Halfway()
