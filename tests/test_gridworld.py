"""Gridworlds: gymnax API under jit/vmap, dynamics, statistical rates, paper Tables 8-10, mazes, errors."""

import collections
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from openrl.rl import gridworld as gw

ENV = gw.GridWorld()
NAMES = ["all", "rand_dense", "rand_sparse", "rand_long", "standard_maze", "sixteen_rooms", "labyrinth"]
MAZES = ["standard_maze", "sixteen_rooms", "labyrinth"]
UP, RIGHT, DOWN, LEFT = range(4)

reset = jax.jit(ENV.reset)
step = jax.jit(ENV.step)
vreset = jax.jit(jax.vmap(ENV.reset, in_axes=(0, None)))
vstep = jax.jit(jax.vmap(ENV.step, in_axes=(0, None, None, None)))  # many keys, one state and action
sample_batch = jax.jit(jax.vmap(gw.sample_params, in_axes=(0, None)), static_argnums=1)


def keys(n, seed=0):
    return jax.random.split(jax.random.key(seed), n)


def tiny(**overrides):
    """3x3 grid padded to 5x5 (one compile for all), agent at (1, 1), one object at (1, 2)."""
    kwargs = dict(
        grid_size=3, max_steps_in_episode=100, object_rewards=[0.7], object_p_terminate=[0.0],
        object_p_respawn=[0.0], start_pos=(1, 1), object_positions=[(1, 2)], max_grid_size=5,
    )
    return gw.make_params(**{**kwargs, **overrides})


def planes(obs, size):
    """(walls, agent, objects[6], elapsed) decoded from one observation."""
    obs = np.asarray(obs)
    grid = obs[:-1].reshape(2 + gw.MAX_OBJECTS, size, size)
    return grid[0], grid[1], grid[2:], float(obs[-1])


def cell(plane):
    (row,), (col,) = np.nonzero(plane)
    return int(row), int(col)


def binomial_tolerance(p, n):
    return 4 * math.sqrt(p * (1 - p) / n) + 1e-9


# --------------------------------------------------------------------------------------------
# gymnax API under jit and vmap
# --------------------------------------------------------------------------------------------


def test_reset_and_step_vmapped_over_keys():
    params = tiny(object_positions=None, start_pos=None)  # random start and object cells
    n = 16
    obs, state = vreset(keys(n), params)
    assert obs.shape == (n, *ENV.observation_space(params).shape) == (n, 8 * 5 * 5 + 1)
    assert obs.dtype == jnp.float32
    for i in range(n):
        walls, agent, objects, elapsed = planes(obs[i], 5)
        assert walls.sum() == 25 - 9 and agent.sum() == 1 and elapsed == 0.0
        assert objects.sum(axis=(1, 2)).tolist() == [1, 0, 0, 0, 0, 0]
        assert (objects.sum(axis=0) + agent + walls).max() == 1  # agent, object, walls all distinct
    assert len({tuple(p) for p in np.asarray(state.agent_pos).tolist()}) > 1  # random starts

    one = jax.tree.map(lambda x: x[0], state)
    obs2, state2, reward, terminated, truncated, info = vstep(keys(n, 1), one, RIGHT, params)
    assert obs2.shape == obs.shape and reward.shape == terminated.shape == truncated.shape == (n,)
    assert reward.dtype == jnp.float32 and terminated.dtype == truncated.dtype == jnp.bool_
    assert not truncated.any() and not terminated.any()  # p(terminate) = 0
    row, col = np.asarray(one.agent_pos).tolist()
    expected = (row, col + 1) if col < 2 else (row, col)  # the 3x3 grid's right edge blocks
    assert {tuple(p) for p in np.asarray(state2.agent_pos).tolist()} == {expected}
    assert (state2.time == 1).all()
    assert ENV.num_actions == 4 and ENV.action_space(params).n == 4


N_ENVS, N_STEPS = 64, 500


@functools.cache
def sampled(name):
    """256 tasks drawn from `name` (jit + vmap over keys)."""
    return sample_batch(keys(256, 2), name)


@functools.partial(jax.jit, static_argnums=2)
def rollout(key, params, steps):
    """Random actions in a batch of tasks, vmapped over keys and params; per-step summaries."""
    n = params.num_objects.shape[0]
    key_reset, key_run = jax.random.split(key)
    obs, state = jax.vmap(ENV.reset)(jax.random.split(key_reset, n), params)

    def body(state, key):
        key_act, key_step = jax.random.split(key)
        action = jax.random.randint(key_act, (n,), 0, ENV.num_actions)
        obs, state, reward, terminated, truncated, _ = jax.vmap(ENV.step)(
            jax.random.split(key_step, n), state, action, params
        )
        in_unit = jnp.all((obs >= 0) & (obs <= 1), axis=-1)
        return state, (reward, terminated | truncated, state.agent_pos, in_unit)

    _, per_step = jax.lax.scan(body, state, jax.random.split(key_run, steps))
    return obs, state, per_step


@pytest.mark.parametrize("name", NAMES)
def test_sampled_tasks_run_vmapped_over_params(name):
    params = jax.tree.map(lambda x: x[:N_ENVS], sampled(name))
    obs, state, (reward, done, pos, in_unit) = rollout(jax.random.key(1), params, N_STEPS)
    size = gw.DISTRIBUTIONS[name].size
    assert obs.shape == (N_ENVS, ENV.observation_space(params).shape[0]) == (N_ENVS, 8 * size * size + 1)
    assert in_unit.all()
    walls, pos = np.asarray(params.walls), np.asarray(pos)
    for i in range(N_ENVS):
        assert not walls[i][pos[:, i, 0], pos[:, i, 1]].any()  # never inside a wall
        allowed = {float(r) for r in np.asarray(params.object_rewards[i])} | {0.0}
        assert {float(r) for r in np.asarray(reward[:, i])} <= allowed
    assert done.any()
    if name in MAZES:
        np.testing.assert_array_equal(state.agent_pos, params.start_pos)
        np.testing.assert_array_equal(state.object_pos[:, :3], params.object_home[:, :3])


# --------------------------------------------------------------------------------------------
# Distributions (paper Tables 8, 9, 10)
# --------------------------------------------------------------------------------------------

RANGES = {  # Table 8 ("all") and Table 10 (mazes): inclusive ranges
    "all": dict(steps=(20, 750), reward=(-1, 1), p_terminate=(0.01, 1), p_respawn=(0.001, 0.1),
                objects=set(range(1, 7)), grid=set(range(4, 12))),
    **{maze: dict(steps=(25, 50), reward=(0, 1), p_terminate=(0.01, 1), p_respawn=(0.001, 0.1),
                  objects={3}, grid={13}) for maze in MAZES},
}
FIXED = {  # Table 9
    "rand_dense": dict(steps=500, rewards=(1, 1, -1, -1), p_terminate=(0, 0, 0.5, 0),
                       p_respawn=(0.05, 0.05, 0.1, 0.5), grid=11),
    "rand_sparse": dict(steps=50, rewards=(-1, 1), p_terminate=(1, 1), p_respawn=(0, 0), grid=13),
    "rand_long": dict(steps=1000, rewards=(1, 1, -1, -1), p_terminate=(0, 0, 0.5, 0.5),
                      p_respawn=(0.01, 0.01, 1, 1), grid=11),
}


def within(x, bounds):
    low, high = bounds
    return bool(((x >= np.float32(low)) & (x <= np.float32(high))).all())


@pytest.mark.parametrize("name", NAMES)
def test_sampled_params_match_paper_tables(name):
    p = jax.tree.map(np.asarray, sampled(name))
    active = np.arange(gw.MAX_OBJECTS)[None, :] < p.num_objects[:, None]
    for field in (p.object_rewards, p.object_p_terminate, p.object_p_respawn):
        assert (field[~active] == 0).all()
    size = p.walls.shape[-1]
    inside = (np.arange(size)[None, :] < p.grid_size[:, None])
    inside = inside[:, :, None] & inside[:, None, :]
    assert p.walls[~inside].all()  # padding is wall
    free = (~p.walls).sum(axis=(1, 2))
    assert (free >= p.num_objects + 1).all()  # agent and objects always fit

    if name in FIXED:
        spec = FIXED[name]
        num = len(spec["rewards"])
        assert (p.max_steps_in_episode == spec["steps"]).all() and (p.grid_size == spec["grid"]).all()
        assert (p.num_objects == num).all() and size == spec["grid"]
        for field, key in ((p.object_rewards, "rewards"), (p.object_p_terminate, "p_terminate"),
                           (p.object_p_respawn, "p_respawn")):
            np.testing.assert_allclose(field[:, :num], np.broadcast_to(spec[key], (256, num)))
        assert not p.walls[inside].any()
        assert p.random_start.all() and p.random_objects.all()
        return

    spec = RANGES[name]
    assert within(p.max_steps_in_episode, spec["steps"])
    assert within(p.object_rewards[active], spec["reward"])
    assert within(p.object_p_terminate[active], spec["p_terminate"])
    assert within(p.object_p_respawn[active], spec["p_respawn"])
    assert set(p.num_objects.tolist()) == spec["objects"]  # every count occurs
    assert set(p.grid_size.tolist()) == spec["grid"]
    assert len(set(p.max_steps_in_episode.tolist())) > 10  # sampled, not fixed
    if name == "all":
        walls_inside = (p.walls & inside).sum(axis=(1, 2))
        assert (walls_inside <= gw.NUM_WALLS_ALL).all()
        assert (walls_inside[p.grid_size == 11] == gw.NUM_WALLS_ALL).all()
        assert (p.object_rewards[:, 0] >= 0).all()  # GROOVE: the first object is rewarding
        assert (p.object_rewards[active] < 0).any()
        assert p.random_start.all() and p.random_objects.all()
    else:
        walls, start, goal = gw.parse_layout(gw.MAZES[name])
        assert (p.walls == walls).all()
        assert (p.start_pos == start).all() and (p.object_home[:, 0] == goal).all()
        assert not p.random_start.any() and not p.random_objects.any()
        for home in p.object_home[:, :3]:
            cells = {tuple(c) for c in home.tolist()}
            assert len(cells) == 3 and start not in cells and not walls[home[:, 0], home[:, 1]].any()


def test_unknown_distribution_lists_known_names():
    with pytest.raises(ValueError, match="unknown gridworld distribution 'rand_dens'") as info:
        gw.sample_params(jax.random.key(0), "rand_dens")
    for name in NAMES:
        assert repr(name) in str(info.value)
    assert sorted(gw.DISTRIBUTIONS) == sorted(NAMES)


# --------------------------------------------------------------------------------------------
# Mazes
# --------------------------------------------------------------------------------------------


def bfs(walls, start):
    """Shortest path lengths from `start` to every reachable free cell."""
    dist = {start: 0}
    queue = collections.deque([start])
    while queue:
        row, col = queue.popleft()
        for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
            nxt = (row + dr, col + dc)
            inside = 0 <= nxt[0] < walls.shape[0] and 0 <= nxt[1] < walls.shape[1]
            if inside and not walls[nxt] and nxt not in dist:
                dist[nxt] = dist[(row, col)] + 1
                queue.append(nxt)
    return dist


@pytest.mark.parametrize("name", MAZES)
def test_maze_has_path_from_start_to_goal(name):
    walls, start, goal = gw.parse_layout(gw.MAZES[name])
    assert walls.shape == (13, 13) and not walls[start] and not walls[goal]
    dist = bfs(walls, start)
    assert goal in dist
    assert len(dist) == (~walls).sum()  # every free cell (so every object) is reachable
    print(f"{name}: shortest path start -> goal = {dist[goal]} steps")


def test_parse_layout_rejects_bad_layouts():
    with pytest.raises(ValueError, match="expected a square"):
        gw.parse_layout("S.\n.G.\n...")
    with pytest.raises(ValueError, match="expected exactly one 'G'"):
        gw.parse_layout("S.\n..")


# --------------------------------------------------------------------------------------------
# Dynamics
# --------------------------------------------------------------------------------------------


def test_collecting_objects_gives_their_rewards():
    params = tiny(object_rewards=[0.7, -0.4], object_p_terminate=[0.0, 0.0], object_p_respawn=[0.0, 0.0],
                  object_positions=[(1, 2), (1, 0)])
    obs, state = reset(jax.random.key(0), params)
    assert tuple(np.asarray(state.agent_pos)) == (1, 1)
    assert planes(obs, 5)[2].sum(axis=(1, 2)).tolist() == [1, 1, 0, 0, 0, 0]
    rewards = []
    for i, action in enumerate([RIGHT, LEFT, LEFT, RIGHT, RIGHT]):
        obs, state, reward, terminated, truncated, _ = step(jax.random.key(i), state, action, params)
        assert not terminated and not truncated
        rewards.append(float(reward))
    assert rewards == pytest.approx([0.7, 0.0, -0.4, 0.0, 0.0])  # collected objects stay gone (p=0)
    assert planes(obs, 5)[2].sum() == 0 and not state.object_present.any()


def test_walls_and_grid_edges_block_moves():
    walls = np.zeros((3, 3), bool)
    walls[0, 1] = True
    params = tiny(walls=walls, start_pos=(0, 0), object_positions=[(2, 2)])
    obs, state = reset(jax.random.key(0), params)
    w, agent, _, _ = planes(obs, 5)
    expected_walls = np.ones((5, 5), bool)
    expected_walls[:3, :3] = walls
    np.testing.assert_array_equal(w, expected_walls)  # padding beyond grid_size is wall
    path = []
    for action in [UP, LEFT, RIGHT, DOWN, RIGHT, RIGHT, RIGHT, UP, UP]:
        obs, state, *_ = step(jax.random.key(0), state, action, params)
        path.append(cell(planes(obs, 5)[1]))
    assert path == [(0, 0), (0, 0), (0, 0), (1, 0), (1, 1), (1, 2), (1, 2), (0, 2), (0, 2)]


def test_observation_encoding():
    params = tiny(max_steps_in_episode=4)
    obs, state = reset(jax.random.key(0), params)
    assert obs.shape == ENV.observation_space(params).shape == (8 * 25 + 1,)
    walls, agent, objects, elapsed = planes(obs, 5)
    assert walls.sum() == 25 - 9 and not walls[:3, :3].any() and cell(agent) == (1, 1) and cell(objects[0]) == (1, 2) and elapsed == 0
    assert objects[1:].sum() == 0
    obs, state, *_ = step(jax.random.key(0), state, UP, params)
    assert planes(obs, 5)[3] == 0.25  # elapsed fraction of the episode
    np.testing.assert_array_equal(ENV.get_obs(state, params), obs)
    assert not ENV.is_terminal(state, params)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_termination_rate(p):
    n = 2000
    params = tiny(object_p_terminate=[p])
    _, state = reset(jax.random.key(0), params)
    _, after, reward, terminated, truncated, info = vstep(keys(n, 3), state, RIGHT, params)
    assert (reward == np.float32(0.7)).all() and not truncated.any()
    rate = float(terminated.mean())
    assert abs(rate - p) <= binomial_tolerance(p, n), (rate, p)
    # terminated episodes were reset: time 0, object back
    assert (after.time[terminated] == 0).all() and after.object_present[terminated, 0].all()
    assert (after.time[~terminated] == 1).all() and not after.object_present[~terminated, 0].any()
    assert (info["terminated"] == terminated).all()


def absent_state(num_objects, agent=(1, 1)):
    return gw.EnvState(
        time=jnp.asarray(0, jnp.int32),
        agent_pos=jnp.asarray(agent, jnp.int32),
        object_pos=jnp.zeros((gw.MAX_OBJECTS, 2), jnp.int32),
        object_present=jnp.zeros((gw.MAX_OBJECTS,), bool),
        terminated=jnp.asarray(False),
    )


def test_respawn_rate_at_random_free_cells():
    n, p = 2000, 0.2
    walls = np.zeros((3, 3), bool)
    walls[2, 0] = True
    params = tiny(object_p_respawn=[p], object_positions=None, walls=walls)
    _, after, *_ = vstep(keys(n, 4), absent_state(1), UP, params)  # agent moves to (0, 1)
    present = np.asarray(after.object_present[:, 0])
    assert abs(present.mean() - p) <= binomial_tolerance(p, n), present.mean()
    cells = collections.Counter(tuple(c) for c in np.asarray(after.object_pos[present, 0]).tolist())
    free = {(r, c) for r in range(3) for c in range(3)} - {(2, 0), (0, 1)}
    assert set(cells) == free  # uniform over free cells: never the wall or the agent, all others seen


def test_respawn_at_home_waits_for_the_agent_to_leave():
    params = tiny(object_p_respawn=[1.0])
    _, state = reset(jax.random.key(0), params)
    _, state, reward, *_ = step(jax.random.key(1), state, RIGHT, params)  # collect at home (1, 2)
    assert float(reward) == pytest.approx(0.7) and not state.object_present[0]
    _, state, *_ = step(jax.random.key(2), state, RIGHT, params)  # agent still on the home cell
    assert not state.object_present[0]
    _, state, *_ = step(jax.random.key(3), state, LEFT, params)
    assert state.object_present[0] and tuple(np.asarray(state.object_pos[0])) == (1, 2)


def test_simultaneous_respawns_take_distinct_free_cells():
    params = gw.make_params(grid_size=2, max_steps_in_episode=10, object_rewards=[1, 1, 1],
                            object_p_terminate=[0, 0, 0], object_p_respawn=[1, 1, 1], max_grid_size=5)
    _, after, *_ = vstep(keys(200, 5), absent_state(3, agent=(0, 0)), UP, params)
    assert after.object_present[:, :3].all() and not after.object_present[:, 3:].any()
    for objects in np.asarray(after.object_pos[:, :3]).tolist():
        assert sorted(map(tuple, objects)) == [(0, 1), (1, 0), (1, 1)]


def test_truncated_at_max_steps():
    params = tiny(max_steps_in_episode=5, object_positions=[(2, 2)])
    _, state = reset(jax.random.key(0), params)
    for t in range(1, 6):
        _, state, reward, terminated, truncated, info = step(jax.random.key(t), state, UP, params)
        assert not terminated and float(reward) == 0.0
        assert bool(truncated) == (t == 5)
    assert int(state.time) == 0  # auto-reset
    assert planes(info["final_observation"], 5)[3] == 1.0


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

BASE = dict(grid_size=3, max_steps_in_episode=10, object_rewards=[1.0, -1.0], object_p_terminate=[0.0, 0.5],
            object_p_respawn=[0.1, 0.1])
WALLS_7 = np.ones((3, 3), bool)
WALLS_7[0, 1] = WALLS_7[1, 0] = False


@pytest.mark.parametrize("overrides, message", [
    (dict(grid_size=2, object_rewards=[1] * 4, object_p_terminate=[0] * 4, object_p_respawn=[0] * 4),
     r"grid_size=2 with 0 walls leaves 4 free cells: expected at least 5 \(the agent and 4 objects\)"),
    (dict(walls=WALLS_7), r"grid_size=3 with 7 walls leaves 2 free cells: expected at least 3 \(the agent"),
    (dict(object_p_terminate=[0.0, -0.1]), r"object_p_terminate\[1\]=-0.1: expected a probability in \[0, 1\]"),
    (dict(object_p_respawn=[1.5, 0.1]), r"object_p_respawn\[0\]=1.5: expected a probability in \[0, 1\]"),
    (dict(max_steps_in_episode=0), r"max_steps_in_episode=0: expected an integer >= 1"),
    (dict(object_rewards=[1.0, float("nan")]), r"object_rewards\[1\]=nan: expected a finite number"),
    (dict(object_rewards=[1.0] * 7), r"object_rewards has 7 entries: expected 1 to 6 objects"),
    (dict(object_rewards=[]), r"object_rewards has 0 entries: expected 1 to 6 objects"),
    (dict(object_p_respawn=[0.1]), r"object_p_respawn has 1 entries: expected one per object \(2"),
    (dict(grid_size=12, max_grid_size=11), r"grid_size=12: expected an integer in \[2, max_grid_size=11\]"),
    (dict(grid_size=1), r"grid_size=1: expected an integer in \[2"),
    (dict(walls=np.zeros((4, 4), bool)), r"walls has shape \(4, 4\): expected \(3, 3\)"),
    (dict(walls=np.eye(3, dtype=bool), start_pos=(1, 1)), r"start_pos=\(1, 1\): expected a free \(row, column\)"),
    (dict(start_pos=(3, 0)), r"start_pos=\(3, 0\): expected a free \(row, column\) inside the 3x3 grid"),
    (dict(object_positions=[(0, 0)]), r"object_positions has 1 entries: expected one per object \(2\)"),
    (dict(object_positions=[(0, 0), (0, 0)]), r"expected distinct cells"),
    (dict(start_pos=(0, 1), object_positions=[(0, 0), (0, 1)]), r"expected distinct cells, none at start_pos"),
])
def test_bad_params_raise_helpful_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        gw.make_params(**{**BASE, **overrides})


# --------------------------------------------------------------------------------------------
# Random-policy baseline
# --------------------------------------------------------------------------------------------


def random_policy_return(key, distribution, num_envs, num_steps):
    """Mean undiscounted return of the episodes a uniform random policy completes in `num_steps`
    steps of `num_envs` tasks from `distribution`, and the number of those episodes."""
    key_params, key_run = jax.random.split(key)
    params = sample_batch(jax.random.split(key_params, num_envs), distribution)
    _, _, (reward, done, _, _) = rollout(key_run, params, num_steps)
    reward, done = np.asarray(reward), np.asarray(done)
    returns = []
    for i in range(num_envs):
        ends = np.flatnonzero(done[:, i])
        returns += [s.sum() for s in np.split(reward[: ends[-1] + 1, i], ends[:-1] + 1)] if len(ends) else []
    return float(np.mean(returns)), len(returns)


def test_random_policy_return_on_rand_dense():
    mean_return, episodes = random_policy_return(jax.random.key(0), "rand_dense", N_ENVS, N_STEPS)
    print(f"rand_dense random policy: mean episode return {mean_return:.3f} over {episodes} episodes "
          f"({N_ENVS} envs x {N_STEPS} steps)")
    assert episodes > N_ENVS // 2  # episodes end: the p(terminate) = 0.5 object, or the 500-step limit
    assert -3.0 < mean_return < 1.0
