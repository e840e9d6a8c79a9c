"""Object-collection gridworlds (LPG, Oh et al. 2020; GROOVE, Jackson et al. 2023) as a gymnax env.

OPEN's gridworld experiments (paper Section 6.4, Appendix D) train on the `all` distribution of
Jackson et al.'s codebase and test out of support on LPG's `rand_dense`, `rand_sparse` and
`rand_long` and on three 13x13 Minigrid mazes. This is a pure-JAX re-implementation:

```python
env = GridWorld()
params = sample_params(key, "all")                  # jittable; vmap over keys for many tasks
obs, state = env.reset(key_reset, params)
obs, state, reward, terminated, truncated, info = env.step(key_step, state, action, params)
train(PPOConfig.gridworld(), optimizer, vec_env(params, num_envs=1024), key)  # openrl.rl.ppo
```

One task of each distribution is registered (entry points of `openrl.envs` pointing at `ENVS`) as
`gridworld-<name>`, drawn with the option `seed`: `envs.make("gridworld-all", num_envs, seed=3)`.
`openrl.meta.suites` holds tasks that sample a new one per run, and the paper's evaluation suites.

**Dynamics.** The agent moves up/right/down/left (actions 0-3); moving into a wall or off the
grid leaves it in place. Stepping onto a present object collects it: the reward is the object's
reward and the episode terminates with the object's `p(terminate)`. A collected object is absent
until it respawns, independently with probability `p(respawn)` at each later step, at a uniformly
random free cell (not a wall, the agent or another object), or at its fixed home cell in mazes
(delayed while the agent stands on it). Episodes are truncated after `max_steps_in_episode` steps;
gymnax's `step` resets automatically.

**Static shapes.** Grids are padded to a static `size x size` (11 for `all`, `rand_dense` and
`rand_long`; 13 for `rand_sparse` and the mazes); cells outside the active `grid_size` are walls.
There are always `MAX_OBJECTS = 6` object slots; the first `num_objects` are active. All numeric
parameters are arrays, so sampled parameters of one distribution stack and vmap together.

**Observation** (float32, length `(2 + MAX_OBJECTS) * size**2 + 1`, 969 for `all`): one binary
`size x size` plane each for walls (including the padding), the agent, and every object slot
(1 where that object is present), flattened in that order, followed by the fraction of the
episode elapsed, `time / max_steps_in_episode`. This is GROOVE's non-tabular encoding (agent and
object planes plus a time feature) with a wall plane added, because walls vary between tasks.

**Distributions** (`DISTRIBUTIONS`, `sample_params`), from paper Tables 8-10 and GROOVE's configs:

- `all` (Table 8): max steps log-uniform in [20, 750]; rewards uniform in [-1, 1] with the first
  object's in [0, 1] (GROOVE's `uniform_first_pos`, so every task has something worth collecting);
  p(terminate) log-uniform in [0.01, 1]; p(respawn) log-uniform in [0.001, 0.1]; 1-6 objects and
  grid size 4-11 (both inclusive, as in Table 8; GROOVE's `jnp.arange` upper bounds make its code
  1-5 and 4-10); 15 walls placed uniformly on the padded 11x11 grid as in GROOVE, so smaller grids
  keep fewer, except that `num_objects + 1` random cells of the active grid are kept free so the
  agent and objects always fit. Walls may cut the grid into pieces, as in GROOVE. The agent starts
  and objects appear at random free cells every episode.
- `rand_dense`, `rand_sparse`, `rand_long` (Table 9, LPG's values): fixed parameters, no walls,
  random agent and object cells every episode.
- `standard_maze`, `sixteen_rooms`, `labyrinth` (Table 10, layouts `MAZES` from Minigrid via
  minimax/JaxUED, as in GROOVE): max steps log-uniform in [25, 50], rewards uniform in [0, 1],
  probabilities as in `all`, three objects. The agent always starts at the layout's `S`; object 0
  sits on the goal `G`, objects 1 and 2 on free cells drawn once per task; objects respawn at
  their home cells.

`make_params` builds (and validates) parameters by hand; it raises `ValueError` for parameters
that cannot work, before anything is traced.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from openrl import plugins
from openrl.rl.envs import GymnaxParamsVecEnv, LogWrapper, VecEnv

__all__ = [
    "MAX_OBJECTS", "NUM_WALLS_ALL", "MAZES", "EnvParams", "EnvState", "GridWorld", "Distribution",
    "DISTRIBUTIONS", "ENVS", "GridworldEnvs", "make_params", "parse_layout", "sample_params", "vec_env",
]

MAX_OBJECTS = 6
"""Static number of object slots."""

NUM_WALLS_ALL = 15
"""Walls placed on the padded grid by the `all` distribution (paper Table 8)."""

_MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int32)
"""(row, column) offsets of actions 0-3: up, right, down, left."""


class EnvParams(eqx.Module):
    """One gridworld task (a PyTree whose leaves are all arrays); see `make_params`, `sample_params`.

    - `walls`: `[size, size]`, True for walls and for cells outside the active `grid_size`.
    - `object_*`: one entry per slot; slots `>= num_objects` are inactive (zeros).
    - `random_start`: the agent starts on a random free cell, else on `start_pos` (row, column).
    - `random_objects`: objects appear (and respawn) on random free cells, else on `object_home`.
    """

    max_steps_in_episode: Int[Array, ""]
    grid_size: Int[Array, ""]
    walls: Bool[Array, "size size"]
    num_objects: Int[Array, ""]
    object_rewards: Float[Array, " objects"]
    object_p_terminate: Float[Array, " objects"]
    object_p_respawn: Float[Array, " objects"]
    random_start: Bool[Array, ""]
    start_pos: Int[Array, "2"]
    random_objects: Bool[Array, ""]
    object_home: Int[Array, "objects 2"]


class EnvState(eqx.Module):
    """Time step, agent cell, object cells (row, column) and which objects are present."""

    time: Int[Array, ""]
    agent_pos: Int[Array, "2"]
    object_pos: Int[Array, "objects 2"]
    object_present: Bool[Array, " objects"]
    terminated: Bool[Array, ""]


class GridWorld(environment.Environment[EnvState, EnvParams]):
    """Gymnax gridworld; every shape comes from `params`, so one instance serves all tasks.

    Instances are stateless and compare equal, so gymnax's jitted `step`/`reset` (static `self`)
    compile once per parameter shape. `is_terminal` (inherited) is `is_terminated`: natural
    termination only; gymnax 1.x reports time limits separately as `truncated`.
    """

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    @property
    def default_params(self) -> EnvParams:
        """LPG's `rand_dense` (paper Table 9)."""
        return make_params(**_LPG["rand_dense"])

    def step_env(
        self, key: PRNGKeyArray, state: EnvState, action: Int[ArrayLike, ""], params: EnvParams
    ) -> tuple[Float[Array, " obs"], EnvState, Float[Array, ""], Bool[Array, ""], dict[str, Any]]:
        """Move, collect, maybe terminate, respawn absent objects; see the module docstring."""
        u_terminate, u_respawn, u_cells = _uniforms(key, (MAX_OBJECTS,), (MAX_OBJECTS,), params.walls.shape)
        agent = _move(state.agent_pos, jnp.asarray(action), params.walls)
        on_agent = jnp.all(state.object_pos == agent[None, :], axis=-1)
        collected = state.object_present & on_agent
        reward = jnp.sum(jnp.where(collected, params.object_rewards, 0.0))
        terminated = jnp.any(collected & (u_terminate < params.object_p_terminate))

        present = state.object_present & ~collected
        respawn = (
            _object_mask(params) & ~state.object_present
            & (u_respawn < params.object_p_respawn)
        )
        home_free = ~jnp.all(params.object_home == agent[None, :], axis=-1)
        respawn = respawn & (params.random_objects | home_free)
        occupied = params.walls | _cells(agent[None, :], jnp.ones((1,), bool), params.walls.shape)
        occupied = occupied | _cells(state.object_pos, present, params.walls.shape)
        free_cells = _sample_cells(u_cells, ~occupied, MAX_OBJECTS)
        # The k-th respawning object takes the k-th sampled cell: distinct, and free (tasks keep
        # at least `num_objects + 1` free cells, so there are enough).
        rank = jnp.maximum(jnp.cumsum(respawn) - 1, 0)
        new_pos = jnp.where(params.random_objects, free_cells[rank], params.object_home)
        state = EnvState(
            time=state.time + 1,
            agent_pos=agent,
            object_pos=jnp.where(respawn[:, None], new_pos, state.object_pos),
            object_present=present | respawn,
            terminated=terminated,
        )
        obs = self.get_obs(state, params)
        return obs, state, reward.astype(jnp.float32), terminated, {"discount": self.discount(state, params)}

    def reset_env(self, key: PRNGKeyArray, params: EnvParams) -> tuple[Float[Array, " obs"], EnvState]:
        """Place the agent and the objects (randomly or at their fixed cells)."""
        shape = params.walls.shape
        fixed = params.walls | (_cells(params.start_pos[None, :], ~params.random_start[None], shape))
        fixed = fixed | _cells(params.object_home, _object_mask(params) & ~params.random_objects, shape)
        (u_cells,) = _uniforms(key, shape)
        cells = _sample_cells(u_cells, ~fixed, MAX_OBJECTS + 1)
        offset = params.random_start.astype(jnp.int32)
        random_objects = jax.lax.dynamic_slice_in_dim(cells, offset, MAX_OBJECTS)
        state = EnvState(
            time=jnp.zeros((), jnp.int32),
            agent_pos=jnp.where(params.random_start, cells[0], params.start_pos),
            object_pos=jnp.where(params.random_objects, random_objects, params.object_home),
            object_present=_object_mask(params),
            terminated=jnp.zeros((), bool),
        )
        return self.get_obs(state, params), state

    def get_obs(
        self, state: EnvState, params: EnvParams, key: PRNGKeyArray | None = None
    ) -> Float[Array, " obs"]:
        """Wall, agent and per-object planes, flattened, then the elapsed episode fraction."""
        del key  # deterministic; gymnax's `observe` passes one
        shape = params.walls.shape
        agent = _cells(state.agent_pos[None, :], jnp.ones((1,), bool), shape)
        objects = jnp.zeros((MAX_OBJECTS, *shape), jnp.float32)
        objects = objects.at[jnp.arange(MAX_OBJECTS), state.object_pos[:, 0], state.object_pos[:, 1]].set(
            state.object_present.astype(jnp.float32)
        )
        elapsed = state.time / params.max_steps_in_episode
        return jnp.concatenate([
            params.walls.ravel().astype(jnp.float32),
            agent.ravel().astype(jnp.float32),
            objects.ravel(),
            elapsed[None].astype(jnp.float32),
        ])

    def is_terminated(self, state: EnvState, params: EnvParams) -> Bool[Array, ""]:
        """Whether the last collected object ended the episode."""
        return state.terminated

    @property
    def name(self) -> str:
        return "GridWorld"

    @property
    def num_actions(self) -> int:
        return len(_MOVES)

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(len(_MOVES))

    def observation_space(self, params: EnvParams) -> spaces.Box:
        """`Box(0, 1)` of length `(2 + MAX_OBJECTS) * size**2 + 1`; `params` may be batched."""
        height, width = params.walls.shape[-2:]
        return spaces.Box(0.0, 1.0, ((2 + MAX_OBJECTS) * height * width + 1,), jnp.float32)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _object_mask(params: EnvParams) -> Bool[Array, " objects"]:
    return jnp.arange(params.object_rewards.shape[-1]) < params.num_objects


def _move(pos: Int[Array, "2"], action: Int[Array, ""], walls: Bool[Array, "h w"]) -> Int[Array, "2"]:
    """`pos` moved by `action`, unless that leaves the grid or enters a wall."""
    target = pos + jnp.asarray(_MOVES)[action]
    limit = jnp.array(walls.shape, jnp.int32) - 1
    inside = jnp.all((target >= 0) & (target <= limit))
    clipped = jnp.clip(target, 0, limit)
    return jnp.where(inside & ~walls[clipped[0], clipped[1]], target, pos)


def _cells(pos: Int[Array, "n 2"], mask: Bool[Array, " n"], shape: tuple[int, ...]) -> Bool[Array, "h w"]:
    """Boolean grid with the cells `pos[i]` where `mask[i]` set."""
    counts = jnp.zeros(shape, jnp.int32).at[pos[:, 0], pos[:, 1]].add(mask.astype(jnp.int32))
    return counts > 0


def _uniforms(key: PRNGKeyArray, *shapes: tuple[int, ...]) -> list[Float[Array, "..."]]:
    """Independent uniforms in (0, 1) of the given shapes from a single PRNG call.

    Every `jax.random` call compiles its own counter-based hash, which dominates compile time here.
    """
    sizes = [math.prod(shape) for shape in shapes]
    flat = jax.random.uniform(key, (sum(sizes),), minval=jnp.finfo(jnp.float32).tiny)
    parts = jnp.split(flat, np.cumsum(sizes)[:-1].tolist())
    return [part.reshape(shape) for part, shape in zip(parts, shapes)]


def _sample_cells(u: Float[Array, "h w"], allowed: Bool[Array, "h w"], k: int) -> Int[Array, "k 2"]:
    """`k` distinct cells in uniformly random order, allowed ones first (Gumbel top-k on `u`)."""
    scores = jnp.where(allowed.ravel(), -jnp.log(-jnp.log(u.ravel())), -jnp.inf)
    scores = jnp.pad(scores, (0, max(0, k - allowed.size)), constant_values=-jnp.inf)  # tiny grids
    _, index = jax.lax.top_k(scores, k)
    index = jnp.minimum(index, allowed.size - 1)
    return jnp.stack(jnp.divmod(index, allowed.shape[1]), axis=-1).astype(jnp.int32)


def _log_uniform(u: Float[Array, "*shape"], low: float, high: float) -> Float[Array, "*shape"]:
    """`u ~ U(0, 1)` mapped to log-uniform on [low, high]."""
    x = jnp.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return jnp.clip(x, low, high)


def _log_uniform_int(u: Float[Array, ""], low: int, high: int) -> Int[Array, ""]:
    return jnp.round(_log_uniform(u, low, high)).astype(jnp.int32)


def _randint(u: Float[Array, ""], low: int, high: int) -> Int[Array, ""]:
    """`u ~ U(0, 1)` mapped to a uniform integer in [low, high] (inclusive)."""
    return jnp.minimum(low + jnp.floor(u * (high - low + 1)).astype(jnp.int32), high)


def _square(grid_size: Int[ArrayLike, ""], size: int) -> Bool[Array, "size size"]:
    """Cells of the active `grid_size x grid_size` top-left corner of a `size x size` grid."""
    inside = jnp.arange(size) < grid_size
    return inside[:, None] & inside[None, :]


# --------------------------------------------------------------------------------------------
# Building parameters by hand
# --------------------------------------------------------------------------------------------


def make_params(
    *,
    object_rewards: Sequence[float | int],
    object_p_terminate: Sequence[float | int],
    object_p_respawn: Sequence[float | int],
    max_steps_in_episode: int,
    grid_size: int,
    walls: ArrayLike | None = None,
    start_pos: tuple[int, int] | None = None,
    object_positions: Sequence[tuple[int, int]] | None = None,
    max_grid_size: int | None = None,
) -> EnvParams:
    """Validated `EnvParams` for one task (raises `ValueError` naming any bad argument).

    - `object_*`: one value per object (1 to `MAX_OBJECTS` objects).
    - `walls`: `[grid_size, grid_size]` booleans (True = wall); no walls if omitted.
    - `start_pos`: the agent's fixed start (row, column); random free cell per episode if omitted.
    - `object_positions`: fixed object cells, where objects also respawn; random if omitted.
    - `max_grid_size`: static padded size (default `grid_size`), to stack with other tasks.
    """
    size = grid_size if max_grid_size is None else max_grid_size
    if not 2 <= grid_size <= size:
        raise ValueError(f"grid_size={grid_size}: expected an integer in [2, max_grid_size={size}]")
    num = len(object_rewards)
    if not 1 <= num <= MAX_OBJECTS:
        raise ValueError(f"object_rewards has {num} entries: expected 1 to {MAX_OBJECTS} objects")
    for name, values in (("object_p_terminate", object_p_terminate), ("object_p_respawn", object_p_respawn)):
        if len(values) != num:
            raise ValueError(f"{name} has {len(values)} entries: expected one per object ({num}, as object_rewards)")
        for i, p in enumerate(values):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}[{i}]={p}: expected a probability in [0, 1]")
    for i, r in enumerate(object_rewards):
        if not math.isfinite(r):
            raise ValueError(f"object_rewards[{i}]={r}: expected a finite number")
    if max_steps_in_episode < 1:
        raise ValueError(f"max_steps_in_episode={max_steps_in_episode}: expected an integer >= 1")

    wall_grid = np.zeros((grid_size, grid_size), bool) if walls is None else np.asarray(walls, bool)
    if wall_grid.shape != (grid_size, grid_size):
        raise ValueError(f"walls has shape {wall_grid.shape}: expected ({grid_size}, {grid_size}), grid_size squared")
    free = int((~wall_grid).sum())
    if free < num + 1:
        raise ValueError(
            f"grid_size={grid_size} with {grid_size**2 - free} walls leaves {free} free cells: "
            f"expected at least {num + 1} (the agent and {num} objects)"
        )

    def check_cell(name: str, cell: tuple[int, int]) -> None:
        row, col = cell
        if not (0 <= row < grid_size and 0 <= col < grid_size) or wall_grid[row, col]:
            raise ValueError(f"{name}={tuple(cell)}: expected a free (row, column) inside the {grid_size}x{grid_size} grid")

    if start_pos is not None:
        check_cell("start_pos", start_pos)
    if object_positions is not None:
        if len(object_positions) != num:
            raise ValueError(f"object_positions has {len(object_positions)} entries: expected one per object ({num})")
        for i, cell in enumerate(object_positions):
            check_cell(f"object_positions[{i}]", cell)
        taken = [tuple(c) for c in object_positions] + ([tuple(start_pos)] if start_pos is not None else [])
        if len(set(taken)) != len(taken):
            raise ValueError(f"object_positions={list(object_positions)}: expected distinct cells, none at start_pos={start_pos}")

    padded = np.ones((size, size), bool)
    padded[:grid_size, :grid_size] = wall_grid
    home = np.zeros((MAX_OBJECTS, 2), np.int32)
    if object_positions is not None:
        home[:num] = np.asarray(object_positions, np.int32)

    def per_object(values: Sequence[float | int]) -> Float[Array, " objects"]:
        return jnp.asarray(np.pad(np.asarray(values, np.float32), (0, MAX_OBJECTS - num)))

    return EnvParams(
        max_steps_in_episode=jnp.asarray(max_steps_in_episode, jnp.int32),
        grid_size=jnp.asarray(grid_size, jnp.int32),
        walls=jnp.asarray(padded),
        num_objects=jnp.asarray(num, jnp.int32),
        object_rewards=per_object(object_rewards),
        object_p_terminate=per_object(object_p_terminate),
        object_p_respawn=per_object(object_p_respawn),
        random_start=jnp.asarray(start_pos is None),
        start_pos=jnp.asarray((0, 0) if start_pos is None else start_pos, jnp.int32),
        random_objects=jnp.asarray(object_positions is None),
        object_home=jnp.asarray(home),
    )


def parse_layout(layout: str) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """`(walls, start, goal)` of a square text layout: `#` wall, `.` floor, `S` start, `G` goal."""
    rows = layout.strip().splitlines()
    if any(len(row) != len(rows) for row in rows) or set("".join(rows)) - set("#.SG"):
        raise ValueError(f"layout: expected a square of '#', '.', 'S' and 'G' characters, got\n{layout}")
    grid = np.array([list(row) for row in rows])
    marks = {}
    for mark in "SG":
        found = np.argwhere(grid == mark)
        if len(found) != 1:
            raise ValueError(f"layout: expected exactly one {mark!r}, found {len(found)}")
        marks[mark] = (int(found[0, 0]), int(found[0, 1]))
    return grid == "#", marks["S"], marks["G"]


# --------------------------------------------------------------------------------------------
# Task distributions
# --------------------------------------------------------------------------------------------

_LPG: dict[str, dict[str, Any]] = {
    "rand_dense": dict(
        max_steps_in_episode=500, grid_size=11, object_rewards=(1.0, 1.0, -1.0, -1.0),
        object_p_terminate=(0.0, 0.0, 0.5, 0.0), object_p_respawn=(0.05, 0.05, 0.1, 0.5),
    ),
    "rand_sparse": dict(
        max_steps_in_episode=50, grid_size=13, object_rewards=(-1.0, 1.0),
        object_p_terminate=(1.0, 1.0), object_p_respawn=(0.0, 0.0),
    ),
    "rand_long": dict(
        max_steps_in_episode=1000, grid_size=11, object_rewards=(1.0, 1.0, -1.0, -1.0),
        object_p_terminate=(0.0, 0.0, 0.5, 0.5), object_p_respawn=(0.01, 0.01, 1.0, 1.0),
    ),
}
"""LPG's random gridworlds (paper Table 9; Oh et al. 2020, Appendix)."""

MAZES: dict[str, str] = {
    "standard_maze": """
.....#S...#..
.###.####.##.
.#...........
.########.###
........#....
######.#####.
....#..#.....
.##...##.####
..#.#..#...#.
#.#.##.###.#.
#.#..#...#...
#.##.###.###.
...#..G#.#...
""",
    "sixteen_rooms": """
...#..#..#...
.S.......#...
...#..#......
#.###.##.###.
...#.........
......#..#...
##.#.##.###.#
...#.....#...
...#..#......
.####.##.#.##
...#..#..#...
......#....G.
...#.....#...
""",
    "labyrinth": """
.............
.###########.
.#.........#.
.#.#######.#.
.#.#.....#.#.
.#.#.###.#.#.
.#.#.#G#.#.#.
.#.#.#.#.#.#.
.#...#...#.#.
.#########.#.
.....#.....#.
####.#.#####.
S....#.......
""",
}
"""The three Minigrid mazes of paper Figure 8 (as in minimax/JaxUED and GROOVE's `custom_mazes`)."""

_MAZE_OBJECTS = 3


def _sample_all(key: PRNGKeyArray, size: int = 11) -> EnvParams:
    """Paper Table 8 / GROOVE's `all`; see the module docstring."""
    objects = (MAX_OBJECTS,)
    u_grid, u_num, u_steps, u_reward, u_terminate, u_respawn, u_keep, u_walls = _uniforms(
        key, (), (), (), objects, objects, objects, (size, size), (size, size)
    )
    grid_size = _randint(u_grid, 4, size)
    num_objects = _randint(u_num, 1, MAX_OBJECTS)
    active = jnp.arange(MAX_OBJECTS) < num_objects
    rewards = (2.0 * u_reward - 1.0).at[0].set(u_reward[0])  # the first object is rewarding
    inside = _square(grid_size, size)
    keep_free = _sample_cells(u_keep, inside, MAX_OBJECTS + 1)
    keep_free = _cells(keep_free, jnp.arange(MAX_OBJECTS + 1) <= num_objects, (size, size))
    wall_cells = _sample_cells(u_walls, ~keep_free, NUM_WALLS_ALL)
    walls = _cells(wall_cells, jnp.ones((NUM_WALLS_ALL,), bool), (size, size))
    return EnvParams(
        max_steps_in_episode=_log_uniform_int(u_steps, 20, 750),
        grid_size=grid_size,
        walls=walls | ~inside,
        num_objects=num_objects,
        object_rewards=jnp.where(active, rewards, 0.0),
        object_p_terminate=jnp.where(active, _log_uniform(u_terminate, 0.01, 1.0), 0.0),
        object_p_respawn=jnp.where(active, _log_uniform(u_respawn, 0.001, 0.1), 0.0),
        random_start=jnp.asarray(True),
        start_pos=jnp.zeros((2,), jnp.int32),
        random_objects=jnp.asarray(True),
        object_home=jnp.zeros((MAX_OBJECTS, 2), jnp.int32),
    )


def _sample_lpg(key: PRNGKeyArray, name: str) -> EnvParams:
    """Fixed parameters (paper Table 9): `key` is unused."""
    del key
    return make_params(**_LPG[name])


def _sample_maze(key: PRNGKeyArray, name: str) -> EnvParams:
    """Paper Table 10 on the layout `MAZES[name]`; see the module docstring."""
    walls, start, goal = parse_layout(MAZES[name])
    objects = (MAX_OBJECTS,)
    u_steps, u_reward, u_terminate, u_respawn, u_cells = _uniforms(
        key, (), objects, objects, objects, walls.shape
    )
    active = jnp.arange(MAX_OBJECTS) < _MAZE_OBJECTS
    start_goal = jnp.array([start, goal], jnp.int32)
    allowed = ~jnp.asarray(walls) & ~_cells(start_goal, jnp.ones((2,), bool), walls.shape)
    home = jnp.concatenate([start_goal[1:], _sample_cells(u_cells, allowed, MAX_OBJECTS - 1)])
    return EnvParams(
        max_steps_in_episode=_log_uniform_int(u_steps, 25, 50),
        grid_size=jnp.asarray(walls.shape[0], jnp.int32),
        walls=jnp.asarray(walls),
        num_objects=jnp.asarray(_MAZE_OBJECTS, jnp.int32),
        object_rewards=jnp.where(active, u_reward, 0.0),
        object_p_terminate=jnp.where(active, _log_uniform(u_terminate, 0.01, 1.0), 0.0),
        object_p_respawn=jnp.where(active, _log_uniform(u_respawn, 0.001, 0.1), 0.0),
        random_start=jnp.asarray(False),
        start_pos=start_goal[0],
        random_objects=jnp.asarray(False),
        object_home=jnp.where(active[:, None], home, 0),
    )


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A named task distribution: `sample(key) -> EnvParams` (jittable) on a `size x size` grid."""

    sample: Callable[[PRNGKeyArray], EnvParams]
    size: int
    description: str


DISTRIBUTIONS: dict[str, Distribution] = {
    "all": Distribution(_sample_all, 11, "GROOVE's training distribution (paper Table 8)"),
    **{
        name: Distribution(functools.partial(_sample_lpg, name=name), spec["grid_size"], "LPG (paper Table 9)")
        for name, spec in _LPG.items()
    },
    **{
        name: Distribution(functools.partial(_sample_maze, name=name), 13, "Minigrid maze (paper Table 10)")
        for name in MAZES
    },
}
"""Every distribution `sample_params` knows, by name."""


def sample_params(key: PRNGKeyArray, distribution: str) -> EnvParams:
    """Draw one task from `DISTRIBUTIONS[distribution]`.

    Jittable with `distribution` static, and vmappable over keys:
    `jax.vmap(sample_params, in_axes=(0, None))(keys, "all")`.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown gridworld distribution {distribution!r}: expected one of {sorted(DISTRIBUTIONS)}")
    return DISTRIBUTIONS[distribution].sample(key)


def vec_env(params: EnvParams, num_envs: int) -> VecEnv:
    """`num_envs` copies of the task `params` as a logged `VecEnv` for `openrl.rl.ppo.train`.

    The parameters stay array leaves (`GymnaxParamsVecEnv`), so environments built from sampled
    parameters stack and vmap: `jax.vmap(lambda k: vec_env(sample_params(k, "all"), 1024))(keys)`.
    """
    if not isinstance(params, EnvParams):
        raise TypeError(f"params: expected gridworld EnvParams (see make_params, sample_params), got {params!r}")
    return LogWrapper(GymnaxParamsVecEnv(GridWorld(), params, num_envs))


def _make_env(distribution: str, num_envs: int, seed: int = 0) -> VecEnv:
    """One task of `distribution`, drawn with `jax.random.key(seed)` (fixed for the LPG ones).

    Training on a distribution (a new task per run) is `openrl.meta.suites.gridworld_task`.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"gridworld-{distribution} option seed: expected an int >= 0, got {seed!r}")
    sample = jax.jit(sample_params, static_argnums=1)  # compiled once: far faster than op by op
    return vec_env(sample(jax.random.key(int(seed)), distribution), num_envs)


class GridworldEnvs(plugins.Family):
    """The `openrl.envs` entry for `gridworld-<distribution>`, one per distribution."""

    def names(self) -> tuple[str, ...]:
        return tuple(f"gridworld-{name}" for name in DISTRIBUTIONS)

    def bind(self, name: str) -> Any:
        return functools.partial(_make_env, name.removeprefix("gridworld-"))


ENVS = GridworldEnvs()
"""The entry-point object for the gridworlds (see `pyproject.toml`)."""

