"""Environments for the PPO inner loop: one registry of vectorised, PureJaxRL-style environments.

```python
env = envs.make("Breakout-MinAtar", num_envs=64)
obs, state = env.reset(key)                                    # obs: [num_envs, *observation_shape]
obs, state, reward, done, info = env.step(key, state, action)  # action: [num_envs] or [num_envs, *act_shape]
```

- `obs` is float32, `reward` float32 `[num_envs]`, `done` bool `[num_envs]` (terminated or truncated).
  Environments reset themselves: after `done`, `obs` is the first observation of the next episode.
- `info["returned_episode"]` (bool `[num_envs]`): an episode ended at this step;
  `info["returned_episode_returns"]` / `info["returned_episode_lengths"]`: undiscounted return and
  length of the last episode each environment finished (PureJaxRL `LogWrapper` semantics: held
  until the next episode ends; the return is the raw reward, before any reward normalisation);
  `info["terminated"]`, `info["truncated"]` (bool `[num_envs]`).
- `env.observation_shape`, `env.action_space` (gymnax `spaces.Discrete` or `spaces.Box`),
  `env.is_discrete`, `env.num_envs`.

An environment is a small `equinox.Module` whose fields are all static (the gymnax or Brax
object and its parameters live inside it), so it is a PyTree with no array leaves: close over it
or pass it through `jax.jit`/`jax.vmap`/`eqx.filter_jit` like any other argument. Two `make`
calls with the same arguments return equal environments (the underlying gymnax/Brax objects are
cached), so jitted functions taking them are not recompiled. The exception is
`GymnaxParamsVecEnv`, whose gymnax parameters are array leaves so that sampled tasks stack and
vmap: the gridworlds (`gridworld-<distribution>`, one task of each of `GRIDWORLDS`, drawn with the
option `seed`; see `openrl.rl.gridworld`).

Wrappers compose: `GymnaxVecEnv` (or `BraxVecEnv`) -> `LogWrapper` [-> `ClipAction` ->
`NormalizeVecObservation` -> `NormalizeVecReward` for continuous control], as in PureJaxRL.
`from_gymnax` turns any gymnax environment into one; `register(name, factory)` adds a name
(factories are called as `factory(num_envs=..., **options)`); packages can also declare a factory
in the `openrl.envs` entry-point group (see `openrl.plugins`).

Brax is optional: this module never imports it; `make("ant")` does, and says how to install it.

Deep Sea (`DeepSea-bsuite`) follows gymnax 1.x, which was realigned to bsuite after the version
the OPEN paper used: the action that moves "right" in cell (row, column) is
`action_mapping[row, column]`, a fixed random 0/1 map drawn from `jax.random.key(0)` when the
environment is built (bsuite's per-cell randomisation). `randomize_actions=False` gives the
paper-era layout, where action 1 is always "right" (with `deterministic=True` the dynamics are then
the same as older gymnax's, 0.0.x). With `deterministic=True` (the default) the optimal return is
`1 - 0.01 = 0.99` for every size; always "left" returns 0. Deep Sea itself
runs fine under jit + vmap; a PPO run that "hung on Deep Sea" was deadlocked in jaxlib's batched
LAPACK QR (the agent's vmapped orthogonal init), which happens with any environment.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray, PyTree

__all__ = [
    "VecEnv", "Wrapper", "GymnaxVecEnv", "GymnaxParamsVecEnv", "BraxVecEnv", "LogWrapper", "ClipAction",
    "NormalizeVecObservation", "NormalizeVecReward", "LogState", "NormObsState", "NormRewardState",
    "from_gymnax", "make", "names", "register", "Factory",
]

Factory = Callable[..., Any]
"""`factory(num_envs: int, **options) -> VecEnv`; it validates its own options."""

BRAX_INSTALL_HINT = 'pip install "openrl[brax]"'
BRAX_BACKENDS = ("positional", "generalized", "spring", "mjx")


# --------------------------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------------------------


class VecEnv(eqx.Module):
    """A batch of `num_envs` environments stepped together; subclasses implement `reset` and `step`."""

    @property
    def num_envs(self) -> int:
        raise NotImplementedError

    @property
    def observation_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def action_space(self) -> Any:
        raise NotImplementedError

    @property
    def is_discrete(self) -> bool:
        return hasattr(self.action_space, "n")

    def reset(self, key: PRNGKeyArray) -> tuple[Array, Any]:
        raise NotImplementedError

    def step(
        self, key: PRNGKeyArray, state: Any, action: ArrayLike
    ) -> tuple[Array, Any, Array, Array, dict[str, Array]]:
        raise NotImplementedError

    def _check_action(self, action: ArrayLike) -> Array:
        """`action` as an array of the right shape (checked at trace time) and dtype."""
        action = jnp.asarray(action)
        if self.is_discrete:
            expected = (self.num_envs,)
            if action.shape != expected:
                raise ValueError(f"action: expected shape {expected} (one discrete action per env), got {action.shape}")
            return action.astype(jnp.int32)
        expected = (self.num_envs, *self.action_space.shape)
        if action.shape != expected:
            raise ValueError(f"action: expected shape {expected} ([num_envs, *action_shape]), got {action.shape}")
        return action.astype(jnp.float32)


class Wrapper(VecEnv):
    """A `VecEnv` around another; spaces and sizes are the inner environment's."""

    env: VecEnv

    @property
    def num_envs(self) -> int:
        return self.env.num_envs

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return self.env.observation_shape

    @property
    def action_space(self) -> Any:
        return self.env.action_space

    @property
    def is_discrete(self) -> bool:
        return self.env.is_discrete

    def reset(self, key: PRNGKeyArray) -> tuple[Array, Any]:
        return self.env.reset(key)

    def step(
        self, key: PRNGKeyArray, state: Any, action: ArrayLike
    ) -> tuple[Array, Any, Array, Array, dict[str, Array]]:
        return self.env.step(key, state, action)


def _strong(tree: Any) -> Any:
    """`tree` with weak types removed, so a state from `reset` has exactly the types `step` returns.

    gymnax builds states from Python scalars (weakly typed) and some steps return strong types:
    stripping them everywhere keeps `lax.scan` carries type-stable.
    """

    def strong(x: Any) -> Any:
        x = jnp.asarray(x)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return x
        return jax.lax.convert_element_type(x, x.dtype)

    return jax.tree.map(strong, tree)


# --------------------------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------------------------


def _foreign_code() -> Any:
    """Context for tracing gymnax/Brax code: Brax relies on implicit rank promotion, which openrl's
    tests (and users) may set to "raise"; the setting is ours to keep, not theirs to satisfy."""
    return jax.numpy_rank_promotion("allow")


def _unjitted(obj: Any, name: str) -> Callable[..., Any]:
    """`obj.name` without the `jax.jit(static_argnames="self")` gymnax puts on `reset`/`step`.

    Tracing the plain function inside our jit turns the env parameters into trace-time constants
    (they fold away, e.g. Deep Sea's unused `sample_action_map` branch) and keeps env objects out of
    jax's global jit cache (which would hold every env ever built). Falls back to the bound method.
    """
    raw = getattr(getattr(type(obj), name, None), "__wrapped__", None)
    return functools.partial(raw, obj) if callable(raw) else getattr(obj, name)


class _GymnaxAdapter(VecEnv):
    """`num_envs` copies of a gymnax environment on one set of parameters, `vmap`ped."""

    env: eqx.AbstractVar[Any]
    params: eqx.AbstractVar[Any]
    n: eqx.AbstractVar[int]

    @property
    def num_envs(self) -> int:
        return self.n

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.env.observation_space(self.params).shape)

    @property
    def action_space(self) -> Any:
        return self.env.action_space(self.params)

    def reset(self, key: PRNGKeyArray) -> tuple[Float[Array, "n ..."], Any]:
        keys = jax.random.split(key, self.n)
        with _foreign_code():
            obs, state = jax.vmap(_unjitted(self.env, "reset"), in_axes=(0, None))(keys, self.params)
        return obs.astype(jnp.float32), _strong(state)

    def step(
        self, key: PRNGKeyArray, state: Any, action: ArrayLike
    ) -> tuple[Float[Array, "n ..."], Any, Float[Array, " n"], Bool[Array, " n"], dict[str, Array]]:
        action = self._check_action(action)
        keys = jax.random.split(key, self.n)
        step = jax.vmap(_unjitted(self.env, "step"), in_axes=(0, 0, 0, None))
        with _foreign_code():
            obs, state, reward, terminated, truncated, _ = step(keys, state, action, self.params)
        terminated = jnp.asarray(terminated, dtype=jnp.bool_)
        truncated = jnp.asarray(truncated, dtype=jnp.bool_)
        info = {"terminated": terminated, "truncated": truncated}
        return (obs.astype(jnp.float32), _strong(state), reward.astype(jnp.float32),
                jnp.logical_or(terminated, truncated), info)


class GymnaxVecEnv(_GymnaxAdapter):
    """`num_envs` copies of a gymnax environment, `vmap`ped; parameters fixed at construction."""

    env: Any = eqx.field(static=True)
    params: Any = eqx.field(static=True)
    n: int = eqx.field(static=True)

    def __init__(self, env: Any, params: Any, num_envs: int):
        self.env = env
        self.params = params
        self.n = _check_positive_int("num_envs", num_envs)
        try:
            hash(params)
        except TypeError as e:
            raise ValueError(
                f"params: gymnax parameters must be hashable (Python scalars) to live inside the env, "
                f"got {type(params).__name__} with an unhashable field: {e}"
            ) from e


class GymnaxParamsVecEnv(_GymnaxAdapter):
    """`num_envs` copies of a gymnax environment on parameters that are a PyTree of arrays.

    Unlike `GymnaxVecEnv`, the parameters are array leaves rather than static fields: sampled
    tasks (the gridworld distributions, `openrl.rl.gridworld`) stack along a leading axis, a
    population `vmap`s over them, and one compilation serves every parameter value of a shape.
    """

    env: Any = eqx.field(static=True)
    params: PyTree
    n: int = eqx.field(static=True)

    def __init__(self, env: Any, params: PyTree, num_envs: int):
        leaves = jax.tree.leaves(params)
        bad = [type(x).__name__ for x in leaves if not isinstance(x, (jax.Array, np.ndarray))]
        if not leaves or bad:
            raise ValueError(
                f"params: expected a PyTree whose leaves are all arrays (e.g. gridworld EnvParams), got "
                f"{type(params).__name__} with leaves of type {bad or 'none'}; "
                "use GymnaxVecEnv for Python-scalar params"
            )
        self.env = env
        self.params = params
        self.n = _check_positive_int("num_envs", num_envs)


class BraxVecEnv(VecEnv):
    """`num_envs` copies of a Brax environment (already wrapped for episode length and auto-reset)."""

    env: Any = eqx.field(static=True)
    n: int = eqx.field(static=True)

    def __init__(self, env: Any, num_envs: int):
        self.env = env
        self.n = _check_positive_int("num_envs", num_envs)

    @property
    def num_envs(self) -> int:
        return self.n

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (int(self.env.observation_size),)

    @property
    def action_space(self) -> Any:
        from gymnax.environments import spaces

        return spaces.Box(low=-1.0, high=1.0, shape=(int(self.env.action_size),))

    @property
    def is_discrete(self) -> bool:
        return False

    def reset(self, key: PRNGKeyArray) -> tuple[Float[Array, "n d"], Any]:
        with _foreign_code():
            state = _strong(jax.vmap(self.env.reset)(jax.random.split(key, self.n)))
        return state.obs.astype(jnp.float32), state

    def step(
        self, key: PRNGKeyArray, state: Any, action: ArrayLike
    ) -> tuple[Float[Array, "n d"], Any, Float[Array, " n"], Bool[Array, " n"], dict[str, Array]]:
        del key  # Brax dynamics are deterministic; its auto-reset returns to each env's first state
        action = self._check_action(action)
        with _foreign_code():
            state = _strong(jax.vmap(self.env.step)(state, action))
        done = state.done > 0.5
        truncated = state.info["truncation"] > 0.5
        info = {"terminated": jnp.logical_and(done, jnp.logical_not(truncated)), "truncated": truncated}
        return state.obs.astype(jnp.float32), state, state.reward.astype(jnp.float32), done, info


# --------------------------------------------------------------------------------------------
# Wrappers (PureJaxRL semantics, statistics shared across the batch)
# --------------------------------------------------------------------------------------------


class LogState(NamedTuple):
    env_state: Any
    episode_returns: Float[Array, " n"]
    episode_lengths: Int[Array, " n"]
    returned_episode_returns: Float[Array, " n"]
    returned_episode_lengths: Int[Array, " n"]


class LogWrapper(Wrapper):
    """Tracks each env's undiscounted episode return and length; reports them when an episode ends."""

    def reset(self, key: PRNGKeyArray) -> tuple[Array, LogState]:
        obs, env_state = self.env.reset(key)
        zeros_f = jnp.zeros(self.num_envs, jnp.float32)
        zeros_i = jnp.zeros(self.num_envs, jnp.int32)
        return obs, LogState(env_state, zeros_f, zeros_i, zeros_f, zeros_i)

    def step(
        self, key: PRNGKeyArray, state: LogState, action: ArrayLike
    ) -> tuple[Array, LogState, Float[Array, " n"], Bool[Array, " n"], dict[str, Array]]:
        obs, env_state, reward, done, info = self.env.step(key, state.env_state, action)
        episode_return = state.episode_returns + reward
        episode_length = state.episode_lengths + 1
        state = LogState(
            env_state=env_state,
            episode_returns=jnp.where(done, 0.0, episode_return),
            episode_lengths=jnp.where(done, 0, episode_length),
            returned_episode_returns=jnp.where(done, episode_return, state.returned_episode_returns),
            returned_episode_lengths=jnp.where(done, episode_length, state.returned_episode_lengths),
        )
        info = {
            **info,
            "returned_episode": done,
            "returned_episode_returns": state.returned_episode_returns,
            "returned_episode_lengths": state.returned_episode_lengths,
        }
        return obs, state, reward, done, info


class ClipAction(Wrapper):
    """Clips continuous actions to `[low, high]` (Brax's action space is `[-1, 1]`) before stepping."""

    low: float = eqx.field(static=True, default=-1.0)
    high: float = eqx.field(static=True, default=1.0)

    def step(
        self, key: PRNGKeyArray, state: Any, action: ArrayLike
    ) -> tuple[Array, Any, Array, Array, dict[str, Array]]:
        return self.env.step(key, state, jnp.clip(jnp.asarray(action), self.low, self.high))


def _update_moments(
    mean: Array, var: Array, count: Float[Array, ""], batch: Array
) -> tuple[Array, Array, Float[Array, ""]]:
    """Chan et al.'s parallel update of a running mean/variance with a batch (leading axis)."""
    batch_mean = batch.mean(axis=0)
    batch_var = batch.var(axis=0)
    batch_count = batch.shape[0]
    delta = batch_mean - mean
    total = count + batch_count
    new_mean = mean + delta * batch_count / total
    m2 = var * count + batch_var * batch_count + jnp.square(delta) * count * batch_count / total
    return new_mean, m2 / total, total


class NormObsState(NamedTuple):
    env_state: Any
    mean: Float[Array, "..."]
    var: Float[Array, "..."]
    count: Float[Array, ""]


class NormalizeVecObservation(Wrapper):
    """`(obs - mean) / sqrt(var + 1e-8)` with running moments of every observation of every env.

    Statistics start at mean 0, var 1, count 1e-4 and include the reset observations (PureJaxRL's
    `NormalizeVecObservation`).
    """

    def _normalise(self, obs: Array, mean: Array, var: Array) -> Array:
        return (obs - mean[None]) / jnp.sqrt(var[None] + 1e-8)

    def reset(self, key: PRNGKeyArray) -> tuple[Array, NormObsState]:
        obs, env_state = self.env.reset(key)
        mean, var, count = _update_moments(
            jnp.zeros(obs.shape[1:], jnp.float32), jnp.ones(obs.shape[1:], jnp.float32),
            jnp.asarray(1e-4, jnp.float32), obs,
        )
        return self._normalise(obs, mean, var), NormObsState(env_state, mean, var, count)

    def step(
        self, key: PRNGKeyArray, state: NormObsState, action: ArrayLike
    ) -> tuple[Array, NormObsState, Array, Array, dict[str, Array]]:
        obs, env_state, reward, done, info = self.env.step(key, state.env_state, action)
        mean, var, count = _update_moments(state.mean, state.var, state.count, obs)
        return self._normalise(obs, mean, var), NormObsState(env_state, mean, var, count), reward, done, info


class NormRewardState(NamedTuple):
    env_state: Any
    mean: Float[Array, ""]
    var: Float[Array, ""]
    count: Float[Array, ""]
    return_val: Float[Array, " n"]


class NormalizeVecReward(Wrapper):
    """Divides rewards by the running std of the discounted return `G <- gamma * G * (1 - done) + r`.

    The moments are over every env's `G` at every step (shared across the batch); the mean is not
    subtracted (PureJaxRL's `NormalizeVecReward`).
    """

    gamma: float = eqx.field(static=True, default=0.99)

    def reset(self, key: PRNGKeyArray) -> tuple[Array, NormRewardState]:
        obs, env_state = self.env.reset(key)
        scalar = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
        return obs, NormRewardState(env_state, scalar(0.0), scalar(1.0), scalar(1e-4),
                                    jnp.zeros(self.num_envs, jnp.float32))

    def step(
        self, key: PRNGKeyArray, state: NormRewardState, action: ArrayLike
    ) -> tuple[Array, NormRewardState, Array, Array, dict[str, Array]]:
        obs, env_state, reward, done, info = self.env.step(key, state.env_state, action)
        return_val = jnp.where(done, 0.0, state.return_val * self.gamma) + reward
        mean, var, count = _update_moments(state.mean, state.var, state.count, return_val)
        state = NormRewardState(env_state, mean, var, count, return_val)
        return obs, state, reward / jnp.sqrt(var + 1e-8), done, info


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def _check_positive_int(name: str, value: Any, where: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}{name}: expected a positive int, got {value!r}")
    return int(value)


def _check_bool(name: str, value: Any, where: str = "") -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{where}{name}: expected a bool, got {value!r}")
    return bool(value)


def _check_gamma(value: Any, where: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0.0 < value <= 1.0:
        raise ValueError(f"{where}gamma: expected a float in (0, 1], got {value!r}")
    return float(value)


@functools.cache
def _gymnax_env(env_id: str, **kwargs: Any) -> tuple[Any, Any]:
    """One gymnax environment per (id, kwargs): equal `make` calls share it, so they hit jit caches.

    Built eagerly, outside any trace: Deep Sea draws its action map with JAX in `__init__`, and an
    env built inside a `jit` would hold a tracer. The map is then kept as a NumPy constant.
    """
    import gymnax

    env, params = gymnax.make(env_id, **kwargs)
    mapping = getattr(env, "action_mapping", None)
    if isinstance(mapping, jax.Array):
        try:
            env.action_mapping = np.asarray(mapping)
        except jax.errors.JAXTypeError as e:  # a tracer: we are inside jit/vmap
            raise RuntimeError(f"make({env_id!r}) must be called outside jax transformations (jit, vmap)") from e
    return env, params


def from_gymnax(env: Any, params: Any = None, *, num_envs: int = 64) -> VecEnv:
    """A vectorised, logged `VecEnv` from any gymnax environment (default params if `params` is None)."""
    return LogWrapper(GymnaxVecEnv(env, env.default_params if params is None else params, num_envs))


def _make_gymnax(env_id: str, num_envs: int) -> VecEnv:
    env, params = _gymnax_env(env_id)
    return from_gymnax(env, params, num_envs=num_envs)


def _make_deep_sea(num_envs: int, size: int = 8, randomize_actions: bool = True, deterministic: bool = True) -> VecEnv:
    """bsuite Deep Sea through gymnax 1.x: `size` rows, episodes of exactly `size` steps."""
    where = "DeepSea-bsuite option "
    size = _check_positive_int("size", size, where)
    randomize_actions = _check_bool("randomize_actions", randomize_actions, where)
    deterministic = _check_bool("deterministic", deterministic, where)
    env, params = _gymnax_env("DeepSea-bsuite", size=size)
    params = params.replace(randomize_actions=randomize_actions, deterministic=deterministic)
    return from_gymnax(env, params, num_envs=num_envs)


@functools.cache
def _brax_env(name: str, backend: str, episode_length: int) -> Any:
    try:
        from brax import envs as brax_envs
        from brax.envs.wrappers import training
    except ImportError as e:
        raise ImportError(
            f"make({name!r}) needs Brax, an optional dependency of openrl: {BRAX_INSTALL_HINT} ({e})"
        ) from e
    env = brax_envs.get_environment(name, backend=backend)
    env = training.EpisodeWrapper(env, episode_length=episode_length, action_repeat=1)
    return training.AutoResetWrapper(env)


def _make_ant(
    num_envs: int,
    episode_length: int = 1000,
    backend: str = "positional",
    clip_action: bool = True,
    normalize_obs: bool = True,
    normalize_reward: bool = True,
    gamma: float = 0.99,
) -> VecEnv:
    """Brax Ant as in OPEN/PureJaxRL: 1000-step episodes, clipped actions, normalised obs and rewards.

    `gamma` is the discount of the return whose std scales the rewards: keep it equal to PPO's.
    """
    where = "ant option "
    episode_length = _check_positive_int("episode_length", episode_length, where)
    if backend not in BRAX_BACKENDS:
        raise ValueError(f"{where}backend: expected one of {list(BRAX_BACKENDS)}, got {backend!r}")
    clip_action = _check_bool("clip_action", clip_action, where)
    normalize_obs = _check_bool("normalize_obs", normalize_obs, where)
    normalize_reward = _check_bool("normalize_reward", normalize_reward, where)
    gamma = _check_gamma(gamma, where)
    env: VecEnv = LogWrapper(BraxVecEnv(_brax_env("ant", backend, episode_length), num_envs))
    if clip_action:
        env = ClipAction(env, low=-1.0, high=1.0)
    if normalize_obs:
        env = NormalizeVecObservation(env)
    if normalize_reward:
        env = NormalizeVecReward(env, gamma=gamma)
    return env


GRIDWORLDS = ("all", "rand_dense", "rand_sparse", "rand_long", "standard_maze", "sixteen_rooms", "labyrinth")
"""The gridworld distributions of `openrl.rl.gridworld`, registered as `gridworld-<name>`."""


def _make_gridworld(distribution: str, num_envs: int, seed: int = 0) -> VecEnv:
    """One task of a gridworld distribution, drawn with `jax.random.key(seed)` (fixed for the LPG ones).

    Training on a distribution (a new task per run) is `openrl.meta.suites.gridworld_task`.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"gridworld-{distribution} option seed: expected an int >= 0, got {seed!r}")
    from openrl.rl import gridworld

    sample = jax.jit(gridworld.sample_params, static_argnums=1)  # compiled once: far faster than op by op
    return gridworld.vec_env(sample(jax.random.key(int(seed)), distribution), num_envs)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Factory] = {}
_ENTRY_POINT_GROUP = "openrl.envs"


def register(name: str, factory: Factory) -> None:
    """Add `name`; `make(name, num_envs, **options)` will call `factory(num_envs=num_envs, **options)`.

    Raises `ValueError` if `name` is empty or already registered.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty str, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory: expected a callable returning an environment, got {factory!r}")
    if name in _REGISTRY:
        raise ValueError(
            f"name: environment {name!r} is already registered (by {_REGISTRY[name]!r}); pick another name"
        )
    _REGISTRY[name] = factory


def _plugin_names() -> list[str]:
    from openrl import plugins

    return list(plugins.available(_ENTRY_POINT_GROUP))


def names() -> list[str]:
    """Every environment `make` knows: registered ones and `openrl.envs` entry points, sorted."""
    return sorted(set(_REGISTRY) | set(_plugin_names()))


def _factory(name: str) -> Factory:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if isinstance(name, str) and name in _plugin_names():
        from openrl import plugins

        factory = plugins.load(_ENTRY_POINT_GROUP, name)
        _REGISTRY.setdefault(name, factory)
        return factory
    raise ValueError(f"name: unknown environment {name!r}; known environments: {names()}")


def _options(factory: Factory) -> list[str] | None:
    """The keyword options `factory` takes besides `num_envs` (None if it takes any `**kwargs`)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in keyword and p.name != "num_envs"]


def make(name: str, num_envs: int = 64, **options: Any) -> VecEnv:
    """A vectorised environment of `num_envs` copies of `name`, configured by `options`.

    Raises `ValueError` for an unknown name, a bad `num_envs`, an option the environment does not
    take or a bad option value (all before anything is traced); `ImportError` with the install
    command when an optional dependency (Brax, for `ant`) is missing.
    """
    factory = _factory(name)
    num_envs = _check_positive_int("num_envs", num_envs)
    accepted = _options(factory)
    if accepted is not None:
        for option, value in options.items():
            if option not in accepted:
                raise ValueError(
                    f"{option}: environment {name!r} takes no option {option!r} (got {value!r}); "
                    f"it takes {accepted or 'no options'}"
                )
    env = factory(num_envs=num_envs, **options)
    missing = [a for a in ("reset", "step", "observation_shape", "action_space", "is_discrete") if not hasattr(env, a)]
    if missing:
        raise TypeError(f"environment factory for {name!r} returned {type(env).__name__}, which lacks {missing}")
    return env


for _name in ("Breakout-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar", "CartPole-v1"):
    register(_name, functools.partial(_make_gymnax, _name))
register("DeepSea-bsuite", _make_deep_sea)
register("ant", _make_ant)
for _name in GRIDWORLDS:
    register(f"gridworld-{_name}", functools.partial(_make_gridworld, _name))
del _name
