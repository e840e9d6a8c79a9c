"""The quickstart compares honestly: held-out seeds disjoint from meta-training's and validation's,
the shipped tuned Adam at exactly its task and budget, and an initial optimizer that makes no update."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from openrl import quickstart as qs
from openrl.meta import Task
from openrl.meta.tasks import shipped_sweep, tuned_adam
from openrl.optim import presets
from openrl.optim.layout import Context
from openrl.rl.agent import ActorCritic
from openrl.rl.ppo import PPOConfig, TrainResult


class KeyRecordingTask(Task):
    """Records the key of every training run (meta-training, validation, evaluation); no PPO."""

    name: str = eqx.field(static=True, default="CartPole-v1")
    config: PPOConfig = PPOConfig(total_timesteps=1024, num_envs=8, num_steps=128)

    def sample(self, key):
        return jnp.zeros(())

    def run(self, optimizer, env, key):
        jax.debug.callback(lambda data: RECORDED[-1].append(np.asarray(data).reshape(-1, 2)), jax.random.key_data(key))
        value = jax.random.uniform(key)
        agent = ActorCritic(1, 2, discrete=True, width=2, depth=1, key=jax.random.key(0))
        return TrainResult(agent=agent, opt_state=None, returns=value[None], dormancy=jnp.zeros(1),
                           final_return=value, stats={})


RECORDED: list[list[np.ndarray]] = []


def _keys(phase: list[np.ndarray]) -> set[tuple[int, int]]:
    return {tuple(int(v) for v in row) for block in phase for row in block}


def test_held_out_seeds_are_disjoint_from_meta_training_and_validation(tmp_path, monkeypatch):
    import openrl.eval.evaluation
    import openrl.meta.train

    phases = {}

    def recorded(name, function):
        def wrapper(*args, **kwargs):
            RECORDED.append([])
            out = function(*args, **kwargs)
            jax.effects_barrier()
            phases.setdefault(name, []).extend(RECORDED.pop())
            return out
        return wrapper

    monkeypatch.setattr(openrl.meta.train, "_generation", recorded("meta", openrl.meta.train._generation))
    monkeypatch.setattr(openrl.meta.train, "_validate", recorded("validation", openrl.meta.train._validate))
    monkeypatch.setattr(openrl.eval.evaluation, "_train_seeds", recorded("eval", openrl.eval.evaluation._train_seeds))
    # The quickstart's own learner, meta-training settings and evaluation, on a task that only records keys.
    qs.meta_learn_and_compare(KeyRecordingTask(), ("Adam (tuned)", presets.adam()), 16, str(tmp_path), progress=False)
    meta, validation, held_out = (_keys(phases[p]) for p in ("meta", "validation", "eval"))
    # Antithetic pairs share keys: population / 2 runs per generation, each with its own key.
    assert len(meta) == qs.META.generations * qs.LEARNER.population_size // 2 * qs.META.num_rollouts
    assert len(validation) == qs.META.eval_seeds and len(held_out) == 32 // 2  # two optimizers on the same 16 seeds
    assert not held_out & meta and not held_out & validation and not validation & meta


def test_tuned_adam_is_the_shipped_sweep_at_exactly_the_quickstart_task():
    preset = shipped_sweep("CartPole-v1")
    task = qs.quickstart_task()
    assert task.config.total_timesteps == qs.TOTAL_TIMESTEPS == preset["sweep"]["ppo"]["total_timesteps"]
    assert preset["sweep"]["task"] == task.name == qs.ENV and preset["sweep"]["seeds"] >= 4
    label, adam = tuned_adam(task)
    assert label == "Adam (tuned)" and adam.anneal == preset["anneal"]
    assert {k: float(v) for k, v in adam.hyperparams.items()} == pytest.approx(
        {"eps": presets.ADAM_EPS, **preset["hyperparams"]})
    label, other = tuned_adam(qs.quickstart_task(total_timesteps=2048))
    assert label == "Adam (swept at 32768 steps, not tuned at this budget)" and other.hyperparams.keys() == adam.hyperparams.keys()
    with pytest.raises(ValueError, match="env: no tuned Adam for DeepSea-bsuite at 2048 steps; run `openrl sweep"):
        tuned_adam(qs.quickstart_task("DeepSea-bsuite", total_timesteps=2048))
    label, _ = tuned_adam(qs.quickstart_task("Breakout-MinAtar", total_timesteps=100_000))
    assert label == "Adam (paper's values for breakout, not tuned at this budget)"


def test_tuned_adam_from_a_sweep_file_must_match_the_task(tmp_path):
    import json

    preset = shipped_sweep("CartPole-v1")
    path = tmp_path / "adam.json"
    path.write_text(json.dumps(preset))
    assert tuned_adam(qs.quickstart_task(), path)[0] == "Adam (tuned)"
    with pytest.raises(ValueError, match=r"adam: .* \(differs in \['total_timesteps'\]\)"):
        tuned_adam(qs.quickstart_task(total_timesteps=65_536), path)


def test_the_initial_optimizer_makes_no_update_but_its_hidden_layers_are_random():
    optimizer = qs.initial_optimizer()
    assert not np.any(np.asarray(optimizer.network.output.weight))
    assert np.std(np.asarray(optimizer.network.hidden_layers[0].weight)) > 0.05
    agent = ActorCritic(3, 2, discrete=True, width=4, depth=1, key=jax.random.key(0))
    params = eqx.filter(agent, eqx.is_inexact_array)
    grads = jax.tree.map(lambda x: 0.1 * x + 0.3, params)
    ctx = Context(iteration=jnp.array(0), epoch=jnp.array(0), num_iterations=2, num_epochs=2,
                  activations=tuple(jnp.ones(w) for w in (4, 2, 4, 1)))
    update, _ = optimizer.update(grads, optimizer.init(params, agent.layout()), params, ctx=ctx, key=jax.random.key(1))
    assert not any(np.any(np.asarray(u)) for u in jax.tree.leaves(update))
