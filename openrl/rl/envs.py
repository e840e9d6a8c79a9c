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
vmap: the gridworlds (`gridworld-<distribution>`, one task of each distribution, drawn with the
option `seed`; see `openrl.rl.gridworld`).

Wrappers compose: `GymnaxVecEnv` (or `BraxVecEnv`) -> `LogWrapper` [-> `ClipAction` ->
`NormalizeVecObservation` -> `NormalizeVecReward` for continuous control], as in PureJaxRL.
`from_gymnax` turns any gymnax environment into one.

**Names.** Every environment is an entry point of the `openrl.envs` group (`openrl plugins` lists
them): a factory `factory(num_envs=..., **options)` returning a `VecEnv`. openrl's own are
registered the same way: every gymnax and Brax environment under its own name
(`openrl.rl.builtin_envs`) and the gridworlds (`openrl.rl.gridworld`). `register(name, factory)`
adds a name for the current session only.

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

SpaceInvaders-MinAtar also follows gymnax 1.x, which changed two of its rules after gymnax 0.0.6 (the
version the paper's code used), both towards the original MinAtar game: the first wave has 24 aliens
(columns 2-7, as every later wave) instead of 28, and an enemy bullet hits the cannon in the column
the cannon moves to, not the one it leaves. Asterix, Breakout and Freeway play as in 0.0.6.
The repository's `benchmarks/spaceinvaders_gymnax_006.py` plays it with the 0.0.6 rules.
"""

import abc
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

ENTRY_POINT_GROUP = "openrl.envs"


# --------------------------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------------------------


class VecEnv(eqx.Module):
    """A batch of `num_envs` environments stepped together (abstract: subclasses give every abstract member)."""

    @property
    @abc.abstractmethod
    def num_envs(self) -> int:
        """How many environments are stepped together."""

    @property
    @abc.abstractmethod
    def observation_shape(self) -> tuple[int, ...]:
        """The shape of one environment's observation."""

    @property
    @abc.abstractmethod
    def action_space(self) -> Any:
        """One environment's action space (gymnax `spaces.Discrete` or `spaces.Box`)."""

    @property
    def is_discrete(self) -> bool:
        return hasattr(self.action_space, "n")

    @abc.abstractmethod
    def reset(self, key: PRNGKeyArray) -> tuple[Array, Any]:
        """First observations `[num_envs, *observation_shape]` and the state."""

    @abc.abstractmethod
    def step(
        self, key: PRNGKeyArray, state: Any, action: ArrayLike
    ) -> tuple[Array, Any, Array, Array, dict[str, Array]]:
        """`(obs, state, reward, done, info)` after one step of every environment (see the module docstring)."""

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
    """A `VecEnv` around another (abstract): spaces and sizes are the inner environment's;
    each wrapper says how it resets and steps."""

    env: eqx.AbstractVar[VecEnv]

    @property
    def num_envs(self) -> int:
        return self.env.num_envs

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return self.env.observation_shape

    @property
    def action_space(self) -> Any:
        return self.env.action_space


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
        self.n = check_positive_int("num_envs", num_envs)
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
        self.n = check_positive_int("num_envs", num_envs)


class BraxVecEnv(VecEnv):
    """`num_envs` copies of a Brax environment (already wrapped for episode length and auto-reset)."""

    env: Any = eqx.field(static=True)
    n: int = eqx.field(static=True)

    def __init__(self, env: Any, num_envs: int):
        self.env = env
        self.n = check_positive_int("num_envs", num_envs)

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

    env: VecEnv

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

    env: VecEnv
    low: float = eqx.field(static=True, default=-1.0)
    high: float = eqx.field(static=True, default=1.0)

    def reset(self, key: PRNGKeyArray) -> tuple[Array, Any]:
        return self.env.reset(key)

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

    env: VecEnv

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

    env: VecEnv
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


def check_positive_int(name: str, value: Any, where: str = "") -> int:
    """`value` as an int if it is a positive integer, else a `ValueError` naming `where` + `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}{name}: expected a positive int, got {value!r}")
    return int(value)


def check_bool(name: str, value: Any, where: str = "") -> bool:
    """`value` as a bool if it is one, else a `ValueError` naming `where` + `name`."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{where}{name}: expected a bool, got {value!r}")
    return bool(value)


def from_gymnax(env: Any, params: Any = None, *, num_envs: int = 64) -> VecEnv:
    """A vectorised, logged `VecEnv` from any gymnax environment (default params if `params` is None).

    Parameters made of Python scalars live inside the environment (`GymnaxVecEnv`); parameters
    holding arrays (as some gymnax defaults do) become array leaves (`GymnaxParamsVecEnv`).
    """
    params = env.default_params if params is None else params
    try:
        hash(params)
    except TypeError:
        return LogWrapper(GymnaxParamsVecEnv(env, jax.tree.map(jnp.asarray, params), num_envs))
    return LogWrapper(GymnaxVecEnv(env, params, num_envs))


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Factory] = {}
"""Names added by `register` in this session (entry points are the permanent registry)."""


def _entry_points() -> dict[str, Any]:
    from openrl import plugins

    return {**plugins.available(ENTRY_POINT_GROUP), **plugins.conflicts(ENTRY_POINT_GROUP)}


def register(name: str, factory: Factory) -> None:
    """Add `name` for this session; `make(name, num_envs, **options)` will call `factory(num_envs=num_envs, **options)`.

    To add a name for good (and for the CLI), declare the factory in your package's `openrl.envs`
    entry-point group instead. Raises `ValueError` if `name` is empty or already known.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty str, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory: expected a callable returning an environment, got {factory!r}")
    if name in _REGISTRY:
        raise ValueError(
            f"name: environment {name!r} is already registered (by {_REGISTRY[name]!r}); pick another name"
        )
    if name in _entry_points():
        raise ValueError(f"name: environment {name!r} is already registered (as an entry point); pick another name")
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Every environment `make` knows: `openrl.envs` entry points and session registrations, sorted."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def _factory(name: str) -> Factory:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if isinstance(name, str) and name in _entry_points():
        from openrl import plugins

        return plugins.load(ENTRY_POINT_GROUP, name)
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
    num_envs = check_positive_int("num_envs", num_envs)
    accepted = _options(factory)
    if accepted is not None:
        for option, value in options.items():
            if option not in accepted:
                raise ValueError(
                    f"{option}: environment {name!r} takes no option {option!r} (got {value!r}); "
                    f"it takes {accepted or 'no options'}"
                )
    env = factory(num_envs=num_envs, **options)
    if not isinstance(env, VecEnv):
        raise TypeError(f"environment factory for {name!r} returned a {type(env).__name__}; expected an openrl VecEnv")
    return env
