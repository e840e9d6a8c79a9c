"""openrl's built-in environments: every gymnax environment and every Brax environment, by its own name.

Each name is an entry point of the `openrl.envs` group (see `pyproject.toml`) pointing at one of
the families here, `GYMNAX` or `BRAX`; `openrl.rl.envs.make(name, num_envs, **options)` builds it.

- gymnax (`GYMNAX_NAMES`, e.g. `Acrobot-v1`, `Pendulum-v1`, `Breakout-MinAtar`): the options are the
  gymnax environment's constructor arguments (e.g. `Catch-bsuite` takes `rows` and `columns`), with
  gymnax's default parameters. `DeepSea-bsuite` takes `size`, `randomize_actions` and `deterministic`
  (see `openrl.rl.envs`). `MNISTBandit-bsuite` downloads MNIST when first built.
- Brax (`BRAX_NAMES`, e.g. `ant`, `hopper`, `halfcheetah`, `humanoid`; Brax is an optional
  dependency, `pip install "openrl[brax]"`): PureJaxRL's continuous-control stack, as OPEN trains
  Ant: episodes of `episode_length` steps, clipped actions, normalised observations and rewards.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import gymnax
import jax
import numpy as np

from openrl import plugins
from openrl.rl.envs import (
    BraxVecEnv,
    ClipAction,
    LogWrapper,
    NormalizeVecObservation,
    NormalizeVecReward,
    VecEnv,
    check_bool,
    check_positive_int,
    from_gymnax,
)

__all__ = ["BRAX", "BRAX_BACKENDS", "BRAX_INSTALL_HINT", "BRAX_NAMES", "GYMNAX", "GYMNAX_NAMES", "BraxEnvs", "GymnaxEnvs"]

GYMNAX_NAMES: tuple[str, ...] = tuple(gymnax.registered_envs)
"""Every environment gymnax registers, by gymnax's name."""

BRAX_NAMES: tuple[str, ...] = (
    "ant", "fast", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_double_pendulum",
    "inverted_pendulum", "pusher", "reacher", "swimmer", "walker2d",
)
"""Every environment of Brax 0.14 (`brax.envs._envs`), by Brax's name."""

BRAX_INSTALL_HINT = 'pip install "openrl[brax]"'
BRAX_BACKENDS = ("positional", "generalized", "spring", "mjx")


@functools.cache
def _gymnax_env(env_id: str, **kwargs: Any) -> tuple[Any, Any]:
    """One gymnax environment per (id, kwargs): equal `make` calls share it, so they hit jit caches.

    Built eagerly, outside any trace: Deep Sea draws its action map with JAX in `__init__`, and an
    env built inside a `jit` would hold a tracer. The map is then kept as a NumPy constant.
    """
    env, params = gymnax.make(env_id, **kwargs)
    mapping = getattr(env, "action_mapping", None)
    if isinstance(mapping, jax.Array):
        try:
            env.action_mapping = np.asarray(mapping)
        except jax.errors.JAXTypeError as e:  # a tracer: we are inside jit/vmap
            raise RuntimeError(f"make({env_id!r}) must be called outside jax transformations (jit, vmap)") from e
    return env, params


def _make_gymnax(env_id: str, num_envs: int, **options: Any) -> VecEnv:
    """`num_envs` copies of gymnax's `env_id`, built with constructor arguments `options`."""
    if options:
        parameters = inspect.signature(type(_gymnax_env(env_id)[0]).__init__).parameters.values()
        accepted = [p.name for p in parameters if p.name != "self"]
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        for option, value in options.items():
            if not takes_any and option not in accepted:
                raise ValueError(
                    f"{option}: environment {env_id!r} takes no option {option!r} (got {value!r}); "
                    f"it takes {accepted or 'no options'}"
                )
            try:
                hash(value)
            except TypeError as e:
                raise ValueError(f"{option}: expected a hashable value (a number, string or tuple), got {value!r}") from e
    env, params = _gymnax_env(env_id, **options)
    return from_gymnax(env, params, num_envs=num_envs)


def _make_deep_sea(num_envs: int, size: int = 8, randomize_actions: bool = True, deterministic: bool = True) -> VecEnv:
    """bsuite Deep Sea through gymnax 1.x: `size` rows, episodes of exactly `size` steps."""
    where = "DeepSea-bsuite option "
    size = check_positive_int("size", size, where)
    randomize_actions = check_bool("randomize_actions", randomize_actions, where)
    deterministic = check_bool("deterministic", deterministic, where)
    env, params = _gymnax_env("DeepSea-bsuite", size=size)
    params = params.replace(randomize_actions=randomize_actions, deterministic=deterministic)
    return from_gymnax(env, params, num_envs=num_envs)


class GymnaxEnvs(plugins.Family):
    """The `openrl.envs` entry for every gymnax environment."""

    def names(self) -> tuple[str, ...]:
        return GYMNAX_NAMES

    def bind(self, name: str) -> Any:
        return _make_deep_sea if name == "DeepSea-bsuite" else functools.partial(_make_gymnax, name)


@functools.cache
def _brax_env(name: str, backend: str | None, episode_length: int) -> Any:
    try:
        from brax import envs as brax_envs
        from brax.envs.wrappers import training
    except ImportError as e:
        raise ImportError(
            f"make({name!r}) needs Brax, an optional dependency of openrl: {BRAX_INSTALL_HINT} ({e})"
        ) from e
    env = brax_envs.get_environment(name, **({} if backend is None else {"backend": backend}))
    env = training.EpisodeWrapper(env, episode_length=episode_length, action_repeat=1)
    return training.AutoResetWrapper(env)


def _make_brax(
    name: str,
    num_envs: int,
    episode_length: int = 1000,
    backend: str | None = None,
    clip_action: bool = True,
    normalize_obs: bool = True,
    normalize_reward: bool = True,
    gamma: float = 0.99,
) -> VecEnv:
    """A Brax environment as OPEN/PureJaxRL train Ant: clipped actions, normalised obs and rewards.

    `backend=None` is "positional" for `ant` (as in OPEN) and Brax's own default otherwise.
    `gamma` is the discount of the return whose std scales the rewards: keep it equal to PPO's.
    """
    where = f"{name} option "
    episode_length = check_positive_int("episode_length", episode_length, where)
    if backend is None and name == "ant":
        backend = "positional"
    if backend is not None and backend not in BRAX_BACKENDS:
        raise ValueError(f"{where}backend: expected one of {list(BRAX_BACKENDS)}, got {backend!r}")
    clip_action = check_bool("clip_action", clip_action, where)
    normalize_obs = check_bool("normalize_obs", normalize_obs, where)
    normalize_reward = check_bool("normalize_reward", normalize_reward, where)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.number)) or not 0.0 < gamma <= 1.0:
        raise ValueError(f"{where}gamma: expected a float in (0, 1], got {gamma!r}")
    env: VecEnv = LogWrapper(BraxVecEnv(_brax_env(name, backend, episode_length), num_envs))
    if clip_action:
        env = ClipAction(env, low=-1.0, high=1.0)
    if normalize_obs:
        env = NormalizeVecObservation(env)
    if normalize_reward:
        env = NormalizeVecReward(env, gamma=float(gamma))
    return env


class BraxEnvs(plugins.Family):
    """The `openrl.envs` entry for every Brax environment (Brax itself is imported when one is built)."""

    def names(self) -> tuple[str, ...]:
        return BRAX_NAMES

    def bind(self, name: str) -> Any:
        return functools.partial(_make_brax, name)


GYMNAX = GymnaxEnvs()
"""The entry-point object for gymnax's environments."""
BRAX = BraxEnvs()
"""The entry-point object for Brax's environments."""
