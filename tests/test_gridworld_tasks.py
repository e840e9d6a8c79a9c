"""Gridworlds in the task machinery: registry, array-parameter VecEnv, antithetic tasks, suites."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import openrl as orl
from openrl.meta import DistributionTask, OpenES, Task, suites
from openrl.meta.train import task_fitness
from openrl.optim import presets
from openrl.rl import envs
from openrl.rl import gridworld as gw
from openrl.rl.agent import ActorCritic
from openrl.rl.ppo import PPOConfig, TrainResult, make_agent

TINY = PPOConfig.gridworld(total_timesteps=8 * 32 * 4, num_envs=8, num_steps=32, num_minibatches=2, num_epochs=1,
                           width=4)


def params_of(env):
    """The gridworld parameters inside a `gridworld.vec_env` (LogWrapper -> GymnaxParamsVecEnv)."""
    return env.env.params


# --------------------------------------------------------------------------------------------
# Registry and the array-parameter VecEnv
# --------------------------------------------------------------------------------------------


def test_every_distribution_is_registered_with_its_parameters():
    assert set(gw.DISTRIBUTIONS) == set(suites.GRIDWORLDS)
    assert {f"gridworld-{d}" for d in gw.DISTRIBUTIONS} <= set(envs.names())
    env = envs.make("gridworld-rand_dense", num_envs=3)
    assert env.num_envs == 3 and env.observation_shape == (8 * 11 * 11 + 1,) and env.action_space.n == 4
    assert eqx.tree_equal(params_of(env), gw.make_params(**gw._LPG["rand_dense"]))
    one, same, other = (envs.make("gridworld-all", num_envs=2, seed=s) for s in (1, 1, 2))
    assert eqx.tree_equal(params_of(one), params_of(same))
    assert not eqx.tree_equal(params_of(one), params_of(other))
    assert eqx.tree_equal(params_of(one), jax.jit(gw.sample_params, static_argnums=1)(jax.random.key(1), "all"))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: envs.make("gridworld-all", num_envs=2, seed=-1), "seed: expected an int >= 0, got -1"),
        (lambda: envs.make("gridworld-all", num_envs=2, size=5), "takes no option 'size'"),
        (lambda: envs.GymnaxParamsVecEnv(gw.GridWorld(), {"max_steps": 10}, 2),
         "params: expected a PyTree whose leaves are all arrays"),
        (lambda: gw.vec_env({"walls": jnp.zeros((3, 3))}, 2), "params: expected gridworld EnvParams"),
    ],
)
def test_bad_gridworld_env_arguments_raise(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_sampled_environments_stack_and_vmap():
    """Three `all` tasks built under vmap step together; each observation shows its own task's walls."""
    sampler = suites.GridworldSampler("all", num_envs=2)
    keys = jax.random.split(jax.random.key(0), 3)
    stacked = eqx.filter_vmap(sampler)(keys)
    walls = np.asarray(params_of(stacked).walls)
    assert walls.shape == (3, 11, 11) and len({w.tobytes() for w in walls}) == 3

    @eqx.filter_jit
    @eqx.filter_vmap
    def first_steps(env, key):
        obs, state = env.reset(key)
        obs, _, reward, done, _ = env.step(key, state, jnp.zeros(env.num_envs, jnp.int32))
        return obs, reward, done

    obs, reward, done = first_steps(stacked, keys)
    assert obs.shape == (3, 2, 969) and reward.shape == done.shape == (3, 2)
    wall_planes = np.asarray(obs[..., : 11 * 11]).reshape(3, 2, 11, 11)
    np.testing.assert_array_equal(wall_planes, np.broadcast_to(walls[:, None], (3, 2, 11, 11)))


# --------------------------------------------------------------------------------------------
# Antithetic task sampling and evaluation over sampled tasks
# --------------------------------------------------------------------------------------------


def test_antithetic_task_sampling_over_all_with_ppo():
    """Real PPO on `all`: antithetic pairs (i, i + N/2) share a task and keys, so identical members
    in a pair score exactly alike while the two pairs (two tasks) do not."""
    task = suites.gridworld_task("all", TINY)
    template, static = eqx.partition(presets.adam("gridworld"), eqx.is_inexact_array)
    population = jax.tree.map(lambda x: jnp.stack([x] * 4), template)
    scores = np.asarray(eqx.filter_jit(task_fitness)(task, static, population, jax.random.key(3), 1, True))
    assert np.isfinite(scores).all()
    assert scores[0] == scores[2] and scores[1] == scores[3]
    assert scores[0] != scores[1]
    assert OpenES(population_size=4, antithetic_tasks=True).pairs_share_tasks


class RewardSum(Task):
    """Draws `all` tasks; 'training' reports the drawn task's total object reward (no PPO)."""

    name: str = eqx.field(static=True, default="reward-sum")
    config: PPOConfig = TINY

    def sample(self, key):
        return suites.GridworldSampler("all", 2)(key)

    def run(self, optimizer, env, key):
        value = jnp.sum(params_of(env).object_rewards)
        agent = ActorCritic(1, 2, discrete=True, width=2, depth=1, key=jax.random.key(0))
        return TrainResult(agent=agent, opt_state=None, returns=value[None], dormancy=jnp.zeros(1),
                           final_return=value, stats={})


def test_evaluate_draws_a_new_task_for_every_seed():
    report = orl.evaluate({"Adam": presets.adam("gridworld")}, RewardSum(), seeds=4, progress=False)
    scores = report.scores("Adam", "reward-sum")
    assert len(set(scores.tolist())) == 4
    again = orl.evaluate({"Adam": presets.adam("gridworld")}, RewardSum(), seeds=4, progress=False)
    np.testing.assert_array_equal(again.scores("Adam", "reward-sum"), scores)


# --------------------------------------------------------------------------------------------
# Suites (Figure 4, Appendix H) and the released weights' agent
# --------------------------------------------------------------------------------------------


def test_suites_cover_the_papers_gridworlds_widths_and_lengths():
    seven = suites.suite()
    assert [t.name for t in seven] == ["all", "rand_dense", "rand_sparse", "rand_long", "standard_maze",
                                       "sixteen_rooms", "labyrinth"]
    assert all(isinstance(t, DistributionTask) and t.config == PPOConfig.gridworld() for t in seven)
    assert [t.sampler.distribution for t in seven] == [t.name for t in seven]

    widths = suites.width_sweep()
    assert len(widths) == 7 * 5 and widths[0].name == "all/width=8" and widths[-1].name == "labyrinth/width=128"
    assert [t.config.width for t in widths[:5]] == [8, 16, 32, 64, 128]
    assert dataclasses.replace(widths[1].config, width=16) == PPOConfig.gridworld()

    small = PPOConfig.gridworld(total_timesteps=40_960, num_envs=64)
    lengths = suites.length_sweep(["rand_sparse"], [20_480, 40_960], small)
    assert [t.name for t in lengths] == ["rand_sparse/steps=20480", "rand_sparse/steps=40960"]
    assert [t.config.total_timesteps for t in lengths] == [20_480, 40_960]
    assert all(t.config.num_envs == t.sampler.num_envs == 64 for t in lengths)
    assert suites.gridworld_task("all") == suites.gridworld_task("all")  # hashable sampler: one compilation
    assert suites.TRAINING_LENGTHS.count(30_000_000) == 1 and suites.HIDDEN_SIZES.count(16) == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: suites.gridworld_task("mazes"), "distribution: unknown gridworld distribution 'mazes'"),
        (lambda: suites.suite("all"), "distributions: expected a non-empty sequence of names"),
        (lambda: suites.suite(["all", "rand_denser"]), r"unknown gridworld distribution\(s\) \['rand_denser'\]"),
        (lambda: suites.width_sweep(widths=[16, 0]), r"widths: expected positive ints, got \[0\]"),
        (lambda: suites.length_sweep(lengths=[1000]), r"lengths: \[1000\] are shorter than one PPO batch"),
        (lambda: suites.suite(config={"width": 16}), "config: expected a PPOConfig|parameter 'config'"),
    ],
)
def test_bad_suite_arguments_raise(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_released_gridworld_weights_fit_the_gridworld_agent():
    """The released weights' README: OPEN small (1211 numbers) for a width-16 tanh agent, 2 hidden layers."""
    optimizer = orl.load_pretrained("gridworld")
    assert optimizer.network.hidden_size == 8
    config = PPOConfig.gridworld()
    assert (config.width, config.depth, config.activation) == (16, 2, "tanh")
    assert (config.num_envs, config.num_steps, config.num_minibatches, config.num_epochs) == (1024, 20, 16, 2)
    assert config.total_timesteps == 30_000_000 and config.ent_coef == 0.01
    agent = make_agent(config, envs.make("gridworld-all", num_envs=2), jax.random.key(0))
    shapes = [layer.weight.shape for net in (agent.actor, agent.critic) for layer in net.layers]
    assert shapes == [(16, 969), (16, 16), (4, 16), (16, 969), (16, 16), (1, 16)]
