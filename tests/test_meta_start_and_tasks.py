"""Warm starts (the ES centred on a given optimizer) and multi-task meta-training from the shell."""

import argparse
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from openrl.cli import _warm_start, main
from openrl.meta import MetaConfig, OpenES, Task, meta_train
from openrl.optim import presets
from openrl.optim.pretrained import load_pretrained
from openrl.rl.agent import ActorCritic
from openrl.rl.ppo import PPOConfig, TrainResult

SEEN: list[np.ndarray] = []


def _flat(optimizer) -> np.ndarray:
    return np.asarray(jax.flatten_util.ravel_pytree(eqx.filter(optimizer, eqx.is_inexact_array))[0])


class ParameterRecordingTask(Task):
    """Records every member's meta-parameters; fitness is their sum (no PPO)."""

    name: str = eqx.field(static=True, default="recording")
    config: PPOConfig = PPOConfig(total_timesteps=1024, num_envs=8, num_steps=128)

    def sample(self, key):
        return jnp.zeros(())

    def run(self, optimizer, env, key):
        theta = jax.flatten_util.ravel_pytree(eqx.filter(optimizer, eqx.is_inexact_array))[0]
        jax.debug.callback(lambda x: SEEN.append(np.asarray(x)), theta)
        value = jnp.sum(theta)
        agent = ActorCritic(1, 2, discrete=True, width=2, depth=1, key=jax.random.key(0))
        return TrainResult(agent=agent, opt_state=None, returns=value[None], dormancy=jnp.zeros(1),
                           final_return=value, stats={})


def test_generation_zero_is_centred_on_the_given_optimizer():
    released = load_pretrained("breakout")
    SEEN.clear()
    meta_train(OpenES(population_size=4, sigma_init=0.1), released, ParameterRecordingTask(),
               MetaConfig(generations=1, eval_every=0), progress=False)
    jax.effects_barrier()
    members = np.stack(SEEN).reshape(4, -1)  # in callback order, which interleaves when devices run in parallel
    # Antithetic members of generation 0 are mean ± sigma * eps: each has a partner whose average with it is
    # the released optimizer.
    centre = _flat(released)
    for i, member in enumerate(members):
        partner_error = min(np.abs((member + other) / 2 - centre).max() for j, other in enumerate(members) if j != i)
        assert partner_error < 1e-6, (i, partner_error)
    assert np.abs(members - centre).max(axis=1).min() > 0.01


def test_init_flag_loads_released_weights_and_saved_optimizers(tmp_path):
    from openrl.optim.saving import save

    def args(init, optimizer="open", head=None):
        return argparse.Namespace(init=init, optimizer=optimizer, head=head)

    np.testing.assert_array_equal(_flat(_warm_start(args("breakout"))), _flat(load_pretrained("breakout")))
    saved = presets.open_(key=jax.random.key(3))
    save(saved, tmp_path / "best.eqx")
    np.testing.assert_array_equal(_flat(_warm_start(args(str(tmp_path / "best.eqx")))), _flat(saved))
    from openrl.shell import UserError

    with pytest.raises(UserError, match="--init: the optimizer to start from has its own architecture"):
        _warm_start(args("breakout", optimizer="no_features"))


def test_multi_task_meta_train_normalises_checkpoints_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["meta-train", "--env", "CartPole-v1", "--env", "DeepSea-bsuite", "--normaliser", "DeepSea-bsuite=0.5",
            "--num-envs", "8", "--total-timesteps", "2048", "--population", "2", "--eval-every", "1",
            "--eval-seeds", "1", "--checkpoint-every", "1", "--out", str(out)]
    assert main([*base, "--generations", "1"]) == 0
    stored = json.loads((out / "normalisers.json").read_text())["normalisers"]
    assert stored["DeepSea-bsuite"] == {"value": 0.5, "optimizer": "given"}
    # measured once with the closest tuned Adam, and labelled with how it was tuned
    assert stored["CartPole-v1"]["value"] > 0
    assert stored["CartPole-v1"]["optimizer"] == "Adam (swept at 32768 steps, not tuned at this budget)"
    assert main([*base, "--generations", "2", "--resume"]) == 0
    assert json.loads((out / "normalisers.json").read_text())["normalisers"] == stored  # not measured again
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in history] == [1, 2]
    # Fitness is the mean over tasks of return / normaliser: CartPole's ~20 / Adam's ~20 and Deep Sea's
    # return in [-1, 1] / 0.5 keep it far below CartPole's raw return.
    assert all(abs(r["fitness_mean"]) < 5 for r in history)
    assert "normalisers" in capsys.readouterr().out
    assert main([*base[:-2], "--out", str(tmp_path / "x"), "--normaliser", "Breakout-MinAtar=1"]) == 2
    assert "--normaliser: ['Breakout-MinAtar'] are not among the --env flags" in capsys.readouterr().err
