"""Where tasks are drawn: a distribution's draw is independent of the run's keys, and sweeps draw one per seed."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from openrl.eval.sweep import _train_batch
from openrl.meta import Task
from openrl.optim import presets
from openrl.rl.agent import ActorCritic
from openrl.rl.ppo import PPOConfig, TrainResult

CONFIG = PPOConfig(total_timesteps=8 * 4 * 2, num_envs=8, num_steps=4, num_minibatches=2, width=2, depth=1)


def probe_result(value: jax.Array) -> TrainResult:
    agent = ActorCritic(1, 2, discrete=True, width=2, depth=1, key=jax.random.key(0))
    value = jnp.asarray(value, jnp.float32)
    return TrainResult(agent=agent, opt_state=None, returns=jnp.broadcast_to(value, (CONFIG.num_iterations,)),
                       dormancy=jnp.zeros(CONFIG.num_iterations), final_return=value, stats={})


class KeyProbe(Task):
    """Records the key a task is drawn with and the key the run gets (no training)."""

    seen: dict = eqx.field(static=True)
    name: str = eqx.field(static=True, default="key-probe")
    config: PPOConfig = CONFIG

    def sample(self, key):
        self.seen["draw"] = jax.random.key_data(key)
        return jnp.zeros(())

    def run(self, optimizer, env, key):
        self.seen["run"] = jax.random.key_data(key)
        return probe_result(env)


class UniformDraws(Task):
    """A 'distribution' whose task is a number drawn uniformly; 'training' returns it."""

    name: str = eqx.field(static=True, default="uniform-draws")
    config: PPOConfig = CONFIG

    def sample(self, key):
        return jax.random.uniform(key)

    def run(self, optimizer, env, key):
        return probe_result(env)


def test_a_runs_own_draw_uses_no_key_the_run_uses():
    seen = {}
    KeyProbe(seen=seen).run_own_draw(presets.adam(), jax.random.key(7))
    draw, run = seen["draw"], seen["run"]
    assert np.array_equal(run, jax.random.key_data(jax.random.key(7)))  # the run keeps the seed's key
    run_key = jax.random.wrap_key_data(run)
    # Every key `train` derives directly from its key: split(key, n)[i] (== fold_in(key, i) under jax's
    # partitionable threefry; `train` resets its environments with split(key, 3)[1]).
    derived = [jax.random.key_data(jax.random.split(run_key, n)) for n in range(1, 9)]
    derived += [jax.random.key_data(jax.random.fold_in(run_key, i))[None] for i in range(256)]
    assert not np.array_equal(draw, run)
    assert not any((np.asarray(keys) == np.asarray(draw)).all(axis=-1).any() for keys in derived)


def test_sweep_trials_train_every_seed_on_its_own_draw():
    keys = jax.random.split(jax.random.key(0), 4)
    trials = [presets.handcrafted("adam", anneal=False, learning_rate=lr) for lr in (1e-3, 2e-3, 3e-3)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *trials)
    final, curves = map(np.asarray, _train_batch(UniformDraws(), stacked, keys))
    assert final.shape == (3, 4) and curves.shape == (3, 4, CONFIG.num_iterations)
    assert len(np.unique(final[0])) == 4  # one draw per seed, not one for the whole sweep
    assert (final == final[0]).all()  # every trial meets the same draws
    own = [float(UniformDraws().run_own_draw(trials[0], k).final_return) for k in keys]
    np.testing.assert_allclose(final[0], own, rtol=1e-6)
