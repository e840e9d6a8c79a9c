"""openrl.rl.envs: the registry, the gymnax/Brax adapters and the PureJaxRL-style wrappers."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import gymnax
from flax import struct
from gymnax.environments import environment, spaces

from openrl import plugins
from openrl.rl import builtin_envs, envs

DISCRETE = ["Breakout-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar", "CartPole-v1",
            "DeepSea-bsuite"]
NUM_ENVS, NUM_STEPS = 4, 64
# Tests compile many small programs and run them for milliseconds: XLA's -O0 halves compile time here.
FAST_COMPILE = {"xla_backend_optimization_level": 0}
INFO_KEYS = {"returned_episode", "returned_episode_returns", "returned_episode_lengths", "terminated", "truncated"}


@functools.partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
def rollout(env, key, actions):
    """Reset, then one step per row of `actions`; returns the reset obs, final state and the stacked steps."""
    reset_key, key = jax.random.split(key)
    obs, state = env.reset(reset_key)

    def step(carry, action):
        state, key = carry
        key, step_key = jax.random.split(key)
        obs, state, reward, done, info = env.step(step_key, state, action)
        return (state, key), (obs, reward, done, info)

    (state, _), steps = jax.lax.scan(step, (state, key), actions)
    return obs, state, steps


def episodes_by_hand(done: np.ndarray, reward: np.ndarray):
    """Per env, the (return, length) of each finished episode, from the raw `done`/`reward` arrays."""
    result = []
    for e in range(done.shape[1]):
        finished, total, length = [], 0.0, 0
        for t in range(done.shape[0]):
            total, length = total + float(reward[t, e]), length + 1
            if done[t, e]:
                finished.append((total, length))
                total, length = 0.0, 0
        result.append(finished)
    return result


# ------------------------------------------------------------------------------- registered envs


@pytest.mark.parametrize("name", DISCRETE)
def test_discrete_env_runs_in_jitted_scan(name):
    env = envs.make(name, num_envs=NUM_ENVS)
    assert env == envs.make(name, num_envs=NUM_ENVS), "equal make calls must give equal envs (jit cache hits)"
    assert jax.tree.leaves(env) == [], "an env is all static: it passes through jit/vmap as an argument"
    assert env.is_discrete and isinstance(env.action_space, spaces.Discrete)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, (NUM_STEPS, NUM_ENVS), dtype=np.int32)

    obs0, _, (obs, reward, done, info) = rollout(env, jax.random.key(0), actions)

    assert obs0.shape == (NUM_ENVS, *env.observation_shape) and obs0.dtype == jnp.float32
    assert obs.shape == (NUM_STEPS, NUM_ENVS, *env.observation_shape) and obs.dtype == jnp.float32
    assert reward.shape == done.shape == (NUM_STEPS, NUM_ENVS)
    assert reward.dtype == jnp.float32 and done.dtype == jnp.bool_
    assert set(info) == INFO_KEYS
    assert info["returned_episode_returns"].dtype == jnp.float32
    for key in ("returned_episode", "terminated", "truncated"):
        assert info[key].dtype == jnp.bool_
    assert all(v.shape == (NUM_STEPS, NUM_ENVS) for v in info.values())
    np.testing.assert_array_equal(info["returned_episode"], done)
    np.testing.assert_array_equal(done, info["terminated"] | info["truncated"])
    assert np.isfinite(obs).all() and np.isfinite(reward).all()


def test_cartpole_logging_and_auto_reset_by_hand():
    """Constant action: CartPole falls over within ~10 steps, every step pays 1, so returns = lengths."""
    env = envs.make("CartPole-v1", num_envs=NUM_ENVS)
    actions = np.zeros((NUM_STEPS, NUM_ENVS), np.int32)
    _, _, (obs, reward, done, info) = rollout(env, jax.random.key(1), actions)
    obs, reward, done = np.asarray(obs), np.asarray(reward), np.asarray(done)
    returns, lengths = np.asarray(info["returned_episode_returns"]), np.asarray(info["returned_episode_lengths"])

    np.testing.assert_array_equal(reward, 1.0)
    by_hand = episodes_by_hand(done, reward)
    for e in range(NUM_ENVS):
        assert len(by_hand[e]) >= 2, "several episodes per env, so auto-reset happened"
        ends = np.flatnonzero(done[:, e])
        np.testing.assert_allclose(returns[ends, e], [r for r, _ in by_hand[e]])
        np.testing.assert_array_equal(lengths[ends, e], [n for _, n in by_hand[e]])
        np.testing.assert_array_equal(returns[ends, e], lengths[ends, e])
        # held between episode ends, zero before the first one
        held = np.concatenate([np.zeros(ends[0]), np.repeat(returns[ends, e], np.diff(np.append(ends, NUM_STEPS)))])
        np.testing.assert_array_equal(returns[:, e], held)
    # auto-reset: the observation returned with `done` is a fresh start state, uniform in [-0.05, 0.05]
    assert np.abs(obs[done]).max() <= 0.05
    assert np.abs(obs[~done]).max() > 0.05
    assert info["terminated"][done].all() and not info["truncated"].any()


# -------------------------------------------------------------------- a gymnax env known by heart


@struct.dataclass
class CounterState(environment.EnvState):
    time: int


@struct.dataclass
class CounterParams(environment.EnvParams):
    length: int = 3
    max_steps_in_episode: int = 100


class Counter(environment.Environment):
    """Reward t + 1 at step t; terminates after `length` steps (truncated by `max_steps_in_episode`)."""

    @property
    def default_params(self):
        return CounterParams()

    def step_env(self, key, state, action, params):
        reward = (state.time + 1).astype(jnp.float32)
        state = CounterState(time=state.time + 1)
        return self.get_obs(state), state, reward, self.is_terminated(state, params), {}

    def reset_env(self, key, params):
        state = CounterState(time=jnp.int32(0))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.full((1,), state.time, jnp.float32)

    def is_terminated(self, state, params):
        return state.time >= params.length

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0, 100, (1,), jnp.float32)


@pytest.mark.parametrize(
    ("params", "episode", "terminated"),
    [(CounterParams(length=3), [1, 2, 3], True), (CounterParams(length=3, max_steps_in_episode=2), [1, 2], False)],
    ids=["terminates", "truncates"],
)
def test_from_gymnax_logs_known_returns(params, episode, terminated):
    env = envs.from_gymnax(Counter(), params, num_envs=2)
    _, _, (obs, reward, done, info) = rollout(env, jax.random.key(0), np.zeros((7, 2), np.int32))
    n = len(episode)
    expected_reward = np.array([episode[t % n] for t in range(7)], np.float32)
    expected_done = np.array([(t + 1) % n == 0 for t in range(7)])
    expected_return = np.array([sum(episode) * ((t + 1) >= n) for t in range(7)], np.float32)
    np.testing.assert_array_equal(reward, np.stack([expected_reward] * 2, 1))
    np.testing.assert_array_equal(done, np.stack([expected_done] * 2, 1))
    np.testing.assert_array_equal(info["returned_episode_returns"], np.stack([expected_return] * 2, 1))
    np.testing.assert_array_equal(info["returned_episode_lengths"][done], n)
    np.testing.assert_array_equal(info["terminated"][done], terminated)
    np.testing.assert_array_equal(info["truncated"][done], not terminated)
    np.testing.assert_array_equal(obs[done], 0.0)  # auto-reset inside gymnax's step


def test_register_make_and_duplicates(monkeypatch):
    monkeypatch.setattr(envs, "_REGISTRY", dict(envs._REGISTRY))

    def counter(num_envs, length=3):
        return envs.from_gymnax(Counter(), CounterParams(length=length), num_envs=num_envs)

    assert set(DISCRETE) | {"ant"} <= set(envs.names())
    envs.register("Counter-test", counter)
    assert "Counter-test" in envs.names()
    env = envs.make("Counter-test", num_envs=3, length=5)
    assert env.num_envs == 3 and env.observation_shape == (1,)
    with pytest.raises(ValueError, match="already registered"):
        envs.register("Counter-test", counter)
    with pytest.raises(ValueError, match="already registered"):
        envs.register("CartPole-v1", counter)
    with pytest.raises(ValueError, match="name"):
        envs.register("", counter)
    with pytest.raises(ValueError, match=r"colour.*'red'.*\['length'\]"):
        envs.make("Counter-test", colour="red")


# ---------------------------------------------------------------------------------------- Deep Sea


@functools.partial(jax.jit, static_argnums=(0, 2), compiler_options=FAST_COMPILE)
def deep_sea_always_right(env, keys, num_steps):
    """One rollout per key (vmapped) of the optimal policy: in each cell, the action its action map calls right."""

    def one_seed(key):
        obs, state = env.reset(key)

        def step(state, key):
            inner = state.env_state
            action = inner.action_mapping[jnp.arange(env.num_envs), inner.row, inner.column]
            _, state, _, done, info = env.step(key, state, action)
            return state, (done, info["returned_episode_returns"], info["returned_episode_lengths"])

        return jax.lax.scan(step, state, jax.random.split(key, num_steps))[1]

    return jax.vmap(one_seed)(keys)


@pytest.mark.timeout(120)
def test_deep_sea_optimal_return_under_jit_and_vmap():
    """2 seeds x 64 envs x 1000 steps finish (Deep Sea was suspected of hanging) and the optimum pays 0.99."""
    size = 10
    env = envs.make("DeepSea-bsuite", num_envs=64, size=size)
    assert env.observation_shape == (size, size)
    mapping = env.env.env.action_mapping
    assert 0 < mapping.sum() < size * size, "gymnax 1.x: 'right' is a random per-cell action map, as in bsuite"
    done, returns, lengths = deep_sea_always_right(env, jax.random.split(jax.random.key(0), 2), 1000)
    assert done.shape == (2, 1000, 64) and done.sum() == 2 * 64 * 1000 // size
    np.testing.assert_allclose(returns[done], 0.99, atol=1e-5)
    np.testing.assert_array_equal(lengths[done], size)


def test_deep_sea_paper_layout_and_left():
    """`randomize_actions=False`: action 1 is always right (the layout of the gymnax version the paper used)."""
    env = envs.make("DeepSea-bsuite", num_envs=NUM_ENVS, size=8, randomize_actions=False)
    ones = np.ones((NUM_STEPS, NUM_ENVS), np.int32)
    _, _, (_, _, done, info) = rollout(env, jax.random.key(0), ones)
    np.testing.assert_allclose(info["returned_episode_returns"][done], 0.99, atol=1e-5)
    _, _, (_, reward, done, info) = rollout(env, jax.random.key(0), 0 * ones)
    np.testing.assert_array_equal(reward, 0.0)  # always left: no move cost, never the treasure
    assert done.sum() == NUM_STEPS // 8 * NUM_ENVS


# ------------------------------------------------------------------------------- normalisation


class TableEnv(envs.VecEnv):
    """Replays fixed data: `obs[0]` on reset; `obs[t + 1]`, `reward[t]`, `done[t]` at step t; echoes the action."""

    obs: jax.Array
    reward: jax.Array
    done: jax.Array

    @property
    def num_envs(self):
        return self.obs.shape[1]

    @property
    def observation_shape(self):
        return self.obs.shape[2:]

    @property
    def action_space(self):
        return spaces.Box(-1.0, 1.0, (2,))

    def reset(self, key):
        return self.obs[0], jnp.int32(0)

    def step(self, key, t, action):
        info = {"action": action}
        return self.obs[t + 1], t + 1, self.reward[t], self.done[t], info


def table(num_steps=20, num_envs=3, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(2.0, 3.0, (num_steps + 1, num_envs, 2)).astype(np.float32)
    reward = rng.normal(1.0, 2.0, (num_steps, num_envs)).astype(np.float32)
    done = rng.random((num_steps, num_envs)) < 0.2
    return obs, reward, done


def run_table(env, num_steps):
    def f(key):
        obs, state = env.reset(key)

        def step(state, key):
            obs, state, reward, done, info = env.step(key, state, jnp.zeros((env.num_envs, 2)))
            return state, (obs, reward)

        return jax.lax.scan(step, state, jax.random.split(key, num_steps))

    return jax.jit(f, compiler_options=FAST_COMPILE)(jax.random.key(0))


def moments_with_prior(samples):
    """Mean/var of `samples` pooled with the wrappers' prior (mean 0, var 1, weight 1e-4), in float64."""
    samples = np.asarray(samples, np.float64)
    count = 1e-4 + len(samples)
    mean = samples.sum(0) / count
    var = (1e-4 * (1.0 + mean**2) + ((samples - mean) ** 2).sum(0)) / count
    return mean, var


def test_normalize_observation_matches_numpy():
    obs, reward, done = table()
    env = envs.NormalizeVecObservation(TableEnv(jnp.asarray(obs), jnp.asarray(reward), jnp.asarray(done)))
    state, (normalised, _) = run_table(env, 20)
    every_obs = obs.reshape(-1, 2)  # reset batch and all 20 step batches
    mean, var = moments_with_prior(every_obs)
    np.testing.assert_allclose(state.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(state.var, var, rtol=1e-4)
    np.testing.assert_allclose(state.count, len(every_obs) + 1e-4, rtol=1e-6)
    np.testing.assert_allclose(state.mean, every_obs.mean(0), rtol=1e-4)  # the prior is negligible
    np.testing.assert_allclose(state.var, every_obs.var(0), rtol=1e-3)
    np.testing.assert_allclose(normalised[-1], (obs[-1] - mean) / np.sqrt(var + 1e-8), rtol=1e-4, atol=1e-5)


def test_normalize_reward_matches_numpy():
    gamma = 0.9
    obs, reward, done = table(seed=1)
    env = envs.NormalizeVecReward(TableEnv(jnp.asarray(obs), jnp.asarray(reward), jnp.asarray(done)), gamma=gamma)
    state, (_, scaled) = run_table(env, 20)
    discounted, expected, g = [], [], np.zeros(reward.shape[1])
    for t in range(20):
        g = np.where(done[t], 0.0, g * gamma) + reward[t]
        discounted.append(g)
        _, var = moments_with_prior(np.concatenate(discounted))
        expected.append(reward[t] / np.sqrt(var + 1e-8))
    np.testing.assert_allclose(state.return_val, g, rtol=1e-5)
    np.testing.assert_allclose(state.var, var, rtol=1e-4)
    np.testing.assert_allclose(scaled, np.stack(expected), rtol=1e-4)


def test_clip_action():
    obs, reward, done = table(num_steps=1, num_envs=2)
    env = envs.ClipAction(TableEnv(jnp.asarray(obs), jnp.asarray(reward), jnp.asarray(done)), low=-1.0, high=1.0)
    _, state = env.reset(jax.random.key(0))
    *_, info = env.step(jax.random.key(0), state, np.array([[-3.0, 0.5], [2.0, -0.2]], np.float32))
    np.testing.assert_allclose(info["action"], [[-1.0, 0.5], [1.0, -0.2]])


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("Pong-Atari", {}, r"unknown environment 'Pong-Atari'.*Breakout-MinAtar"),
        ("DeepSea-bsuite", {"size": 0}, r"size: expected a positive int, got 0"),
        ("DeepSea-bsuite", {"size": 2.5}, r"size: expected a positive int, got 2.5"),
        ("DeepSea-bsuite", {"randomize_actions": "yes"}, r"randomize_actions: expected a bool"),
        ("DeepSea-bsuite", {"num_envs": 0}, r"num_envs: expected a positive int, got 0"),
        ("CartPole-v1", {"num_envs": True}, r"num_envs: expected a positive int, got True"),
        ("CartPole-v1", {"size": 3}, r"size: environment 'CartPole-v1' takes no option 'size' \(got 3\)"),
        ("DeepSea-bsuite", {"depth": 3}, r"takes no option 'depth'.*\['size', 'randomize_actions', 'deterministic'\]"),
        ("ant", {"backend": "warp"}, r"backend: expected one of \['positional'"),
        ("ant", {"gamma": 1.5}, r"gamma: expected a float in \(0, 1\], got 1.5"),
        ("ant", {"episode_length": -1}, r"episode_length: expected a positive int, got -1"),
    ],
)
def test_bad_names_and_options(name, options, match):
    with pytest.raises(ValueError, match=match):
        envs.make(name, **options)


def test_bad_action_shape_is_caught_while_tracing():
    env = envs.make("CartPole-v1", num_envs=NUM_ENVS)
    obs, state = jax.eval_shape(env.reset, jax.random.key(0))
    with pytest.raises(ValueError, match=r"action: expected shape \(4,\)"):
        jax.eval_shape(env.step, jax.random.key(0), state, jnp.zeros((NUM_ENVS, 2), jnp.int32))


# --------------------------------------------------------------------------- every gymnax/Brax name

# MNISTBandit downloads MNIST when built, which a test must not do.
OFFLINE_GYMNAX = [name for name in builtin_envs.GYMNAX_NAMES if name != "MNISTBandit-bsuite"]


def test_every_gymnax_and_brax_environment_is_an_entry_point():
    found = plugins.available("openrl.envs")
    expected = set(gymnax.registered_envs) | set(builtin_envs.BRAX_NAMES)
    assert expected <= set(found), f"missing: {sorted(expected - set(found))}; refresh with `pip install -e .`"
    assert all(found[name].package == "openrl" for name in expected)
    assert set(envs.names()) >= expected | {"gridworld-all"}


@pytest.mark.parametrize("name", OFFLINE_GYMNAX)
def test_every_gymnax_environment_resets_and_steps(name):
    env = envs.make(name, num_envs=2)
    obs, state = jax.eval_shape(env.reset, jax.random.key(0))  # traced, not compiled: fast for 25 envs
    action = (jnp.zeros((2,), jnp.int32) if env.is_discrete
              else jnp.zeros((2, *env.action_space.shape), jnp.float32))
    obs, state, reward, done, info = jax.eval_shape(env.step, jax.random.key(1), state, action)
    assert obs.shape == (2, *env.observation_shape) and obs.dtype == jnp.float32
    assert reward.shape == done.shape == (2,) and set(info) == INFO_KEYS


def test_gymnax_constructor_options_are_checked():
    env = envs.make("Catch-bsuite", num_envs=2, rows=5, columns=4)
    assert env.observation_shape == (5, 4)
    with pytest.raises(ValueError, match=r"colour: environment 'Catch-bsuite' takes no option 'colour'.*\['rows', 'columns'\]"):
        envs.make("Catch-bsuite", colour="red")
    with pytest.raises(ValueError, match=r"desc: expected a hashable value"):
        envs.make("FrozenLake-misc", desc=[["S", "G"]])


@pytest.mark.skipif(importlib.util.find_spec("brax") is not None, reason="Brax is installed")
@pytest.mark.parametrize("name", ["hopper", "halfcheetah", "humanoid"])
def test_brax_environments_without_brax_say_how_to_install(name):
    with pytest.raises(ImportError, match=rf"make\('{name}'\) needs Brax.*pip install \"openrl\[brax\]\""):
        envs.make(name, num_envs=2)


def test_brax_names_are_braxs():
    brax_envs = pytest.importorskip("brax.envs", reason='Brax is an optional extra: pip install "openrl[brax]"')
    assert set(builtin_envs.BRAX_NAMES) == set(brax_envs._envs)


def test_abstract_environments_cannot_be_instantiated():
    inner = envs.make("CartPole-v1", num_envs=2)
    with pytest.raises(TypeError, match="abstract"):
        envs.VecEnv()
    with pytest.raises(TypeError, match="abstract"):
        envs.Wrapper()

    class Forgetful(envs.Wrapper):  # a wrapper must say how it steps
        env: envs.VecEnv

        def reset(self, key):
            return self.env.reset(key)

    with pytest.raises(TypeError, match="abstract.*step"):
        Forgetful(inner)


def test_factories_must_return_a_vec_env(monkeypatch):
    monkeypatch.setattr(envs, "_REGISTRY", dict(envs._REGISTRY))
    envs.register("not-an-env", lambda num_envs: object())
    with pytest.raises(TypeError, match=r"'not-an-env' returned a object; expected an openrl VecEnv"):
        envs.make("not-an-env", num_envs=2)


def test_envs_does_not_import_its_environments():
    """The registry is the bottom layer: gridworld and the built-in families import it, never the reverse."""
    code = ("import sys, openrl.rl.envs; "
            "print(sorted(m for m in ('openrl.rl.gridworld', 'openrl.rl.builtin_envs') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------ Brax


def test_import_does_not_import_brax():
    code = "import sys, openrl.rl.envs; sys.exit(any(m == 'brax' or m.startswith('brax.') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"importing openrl.rl.envs imported brax\n{result.stderr[-2000:]}"


def test_ant_without_brax_says_how_to_install(monkeypatch):
    for module in ("brax", "brax.envs", "brax.envs.wrappers", "brax.envs.wrappers.training"):
        monkeypatch.setitem(sys.modules, module, None)  # makes `import brax` fail
    with pytest.raises(ImportError, match=r'pip install "openrl\[brax\]"'):
        envs.make("ant", num_envs=2, episode_length=7)  # an episode length no other test builds (no cache hit)


def _brax_warnings(test):
    """Brax 0.14.2 warns that it is unmaintained, and uses mujoco APIs (and jaxopt) that are deprecated."""
    test = pytest.mark.filterwarnings("ignore:.*not actively being maintained:UserWarning")(test)
    return pytest.mark.filterwarnings("ignore::DeprecationWarning")(test)


@_brax_warnings
def test_ant_shapes_through_all_wrappers():
    pytest.importorskip("brax", reason='Brax is an optional extra: pip install "openrl[brax]"')
    env = envs.make("ant", num_envs=2)
    assert env == envs.make("ant", num_envs=2) and jax.tree.leaves(env) == []
    assert not env.is_discrete and env.observation_shape == (27,) and env.action_space.shape == (8,)
    layers, inner = [], env
    while isinstance(inner, envs.Wrapper):
        layers.append(type(inner))
        inner = inner.env
    assert layers == [envs.NormalizeVecReward, envs.NormalizeVecObservation, envs.ClipAction, envs.LogWrapper]
    assert isinstance(inner, envs.BraxVecEnv) and inner.env.episode_length == 1000
    obs, state = jax.eval_shape(env.reset, jax.random.key(0))  # traced, not compiled: Brax compiles slowly
    obs, state, reward, done, info = jax.eval_shape(env.step, jax.random.key(0), state, jnp.zeros((2, 8)))
    assert obs.shape == (2, 27) and obs.dtype == jnp.float32
    assert reward.shape == done.shape == (2,) and reward.dtype == jnp.float32 and done.dtype == jnp.bool_
    assert set(info) == INFO_KEYS


@pytest.mark.skipif(not os.environ.get("OPENRL_SLOW_TESTS"),
                    reason="slow (compiling Brax Ant takes ~30 s): set OPENRL_SLOW_TESTS=1")
@pytest.mark.timeout(600)
@_brax_warnings
def test_ant_rollout_truncates_and_normalises():
    pytest.importorskip("brax", reason='Brax is an optional extra: pip install "openrl[brax]"')
    env = envs.make("ant", num_envs=2, episode_length=3)
    actions = 2.0 * np.ones((4, 2, 8), np.float32)  # out of bounds: clipped to 1
    _, state, (obs, reward, done, info) = rollout(env, jax.random.key(0), actions)
    assert np.isfinite(obs).all() and np.isfinite(reward).all()
    np.testing.assert_array_equal(done[:, 0], [False, False, True, False])
    assert info["truncated"][2].all() and not info["terminated"][2].any()
    np.testing.assert_array_equal(info["returned_episode_lengths"][2], 3)
    assert float(state.count) == pytest.approx(4 * 2 + 1e-4)  # reward statistics: one batch per step
    assert float(state.env_state.count) == pytest.approx(5 * 2 + 1e-4)  # observation statistics: and the reset
