"""Section 7 studies (ablations, separated optimizers for Deep Sea) and the evaluation commands."""

import json
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import openrl as orl
from openrl.cli import main
from openrl.eval import evaluation, stats
from openrl.eval.ablation import ABLATIONS, run_ablations
from openrl.eval.deep_sea import deep_sea_study, separated_open
from openrl.eval.commands import optimizer_from_spec
from openrl.meta import EnvTask, MetaConfig, OpenES
from openrl.optim.heads import MagnitudeHead, StochasticHead
from openrl.optim.layout import Context
from openrl.optim.separated import Separated
from openrl.rl.ppo import PPOConfig

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from probe_envs import OneStepProbe  # noqa: E402

TASK = EnvTask(name="bandit", config=PPOConfig(total_timesteps=8 * 16 * 2, num_envs=8, num_steps=16,
                                               num_minibatches=2, width=8), env=OneStepProbe("bandit"))


def test_difference_by_hand():
    assert stats.difference([3.0, 3.0, 3.0], [1.0, 1.0]) == stats.Interval(2.0, 2.0, 2.0)
    x, y = np.array([[1.0, 2.0], [3.0, 6.0]]), np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])
    gap = stats.difference(x, y, stats.mean, reps=500)
    assert gap.estimate == pytest.approx(3.0 - 1.0)
    assert gap.lower <= gap.estimate <= gap.upper
    with pytest.raises(ValueError, match="same number of tasks"):
        stats.difference(x, y[:, :1])


def test_ablations_remove_exactly_one_part():
    channels = {name: build().features.num_channels for name, build in ABLATIONS.items()}
    assert channels == {"OPEN": 19, "no training proportion": 18, "no batch proportion": 18, "no dormancy": 18,
                        "no layer proportion": 18, "no stochasticity": 19}
    heads = {name: type(build().head) for name, build in ABLATIONS.items()}
    assert heads.pop("no stochasticity") is MagnitudeHead and set(heads.values()) == {StochasticHead}


def _agent_inputs():
    agent = orl.ActorCritic(3, 2, discrete=True, width=4, depth=1, key=jax.random.key(0))
    params = eqx.filter(agent, eqx.is_inexact_array)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 2.0), params)
    ctx = Context(iteration=jnp.array(0), epoch=jnp.array(0), num_iterations=2, num_epochs=2,
                  activations=tuple(jnp.ones(w) for w in (4, 2, 4, 1)))
    return agent.layout(), params, grads, ctx


def test_separated_gives_each_network_its_optimizers_update():
    layout, params, grads, ctx = _agent_inputs()
    mask = layout.actor_mask()
    sgd = lambda lr: orl.OptaxOptimizer(optax.sgd, learning_rate=lr)  # noqa: E731
    for zero_mean in (False, True):
        separated = Separated(actor=sgd(1.0), critic=sgd(0.0), zero_mean=zero_mean)
        updates, _ = separated.update(grads, separated.init(params, layout), params, ctx=ctx, key=jax.random.key(0))
        flat = np.asarray(jax.flatten_util.ravel_pytree(updates)[0])
        expected = -2.0 * mask  # the actor's SGD step is -g; the critic's is 0
        np.testing.assert_allclose(flat, expected - expected.mean() if zero_mean else expected, rtol=1e-6)
    with pytest.raises(ValueError, match="layout: Separated needs"):
        separated.init(params)
    for noise in (True, False):
        optimizer = separated_open(noise, key=jax.random.key(1))
        _, _, out = eqx.filter_jit(type(optimizer).update_with_stats)(
            optimizer, grads, optimizer.init(params, layout), params, ctx=ctx, key=jax.random.key(2)
        )
        std = np.asarray(out["noise_std"])
        assert np.all(std[mask == 0] == 0) and (np.all(std[mask == 1] > 0) if noise else np.all(std == 0))


def test_tiny_ablation_reports_iqm_and_iqr_dormancy(tmp_path, monkeypatch):
    learner = OpenES(population_size=2, sigma_init=0.1, learning_rate=0.1)
    config = MetaConfig(generations=1, eval_every=0)
    rows = run_ablations(TASK, learner, tmp_path, ablations=["no stochasticity"], num_optimizers=4,
                         meta_config=config, seeds=2, progress=False)
    assert {p.name for p in tmp_path.iterdir()} >= {"ablation.md", "ablation.png", "eval", "no_stochasticity"}
    assert (tmp_path / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = [json.loads(line) for line in (tmp_path / "eval" / "results.jsonl").read_text().splitlines()]
    means = np.array([np.mean([r["final_return"] for r in runs if r["optimizer"] == f"no stochasticity #{i}"])
                      for i in range(4)])
    dormancy = np.array([np.mean([r["dormancy"][-1] for r in runs if r["optimizer"] == f"no stochasticity #{i}"])
                         for i in range(4)])
    (row,) = rows
    np.testing.assert_allclose(row.optimizer_returns, means, rtol=1e-6)
    assert row.return_iqm.estimate == pytest.approx(stats.iqm(means))
    middle = np.argsort(means, kind="stable")[1:3]  # the IQM of 4 keeps the middle two
    assert row.dormancy.estimate == pytest.approx(dormancy[middle].mean())
    assert "| no stochasticity |" in (tmp_path / "ablation.md").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("stored runs were recomputed")

    monkeypatch.setattr(evaluation, "_train_seeds", no_training)
    again = run_ablations(TASK, learner, tmp_path, ablations=["no stochasticity"], num_optimizers=4,
                          meta_config=config, seeds=2, progress=False)
    assert again == rows


def test_bad_study_input(tmp_path):
    learner = OpenES(population_size=2)
    with pytest.raises(ValueError, match="ablations: expected names from"):
        run_ablations(TASK, learner, tmp_path, ablations=["no momentum"])
    with pytest.raises(ValueError, match="num_optimizers: expected a positive int, got 0"):
        run_ablations(TASK, learner, tmp_path, num_optimizers=0)
    with pytest.raises(ValueError, match=r"train_sizes: expected Deep Sea sizes \(ints >= 2\), got \[\]"):
        deep_sea_study(learner, tmp_path, train_sizes=[])
    with pytest.raises(ValueError, match="seeds: expected a positive int, got 0"):
        deep_sea_study(learner, tmp_path, seeds=0)


def test_evaluate_command(tmp_path, capsys):
    saved = orl.presets.no_features(key=jax.random.key(3))
    eqx.tree_serialise_leaves(tmp_path / "nf.eqx", saved)
    label, loaded = optimizer_from_spec(f"no_features:{tmp_path / 'nf.eqx'}", None)
    assert label == "No Features"
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(eqx.filter(loaded, eqx.is_array)),
                                                    jax.tree.leaves(eqx.filter(saved, eqx.is_array))))
    assert optimizer_from_spec("Tuned=adam", "freeway")[0] == "Tuned"
    preset = {"version": 1, "optimizer": "lion", "anneal": False, "hyperparams": {"learning_rate": 3e-4, "b1": 0.9}}
    (tmp_path / "lion-cartpole.json").write_text(json.dumps(preset))
    label, swept = optimizer_from_spec(str(tmp_path / "lion-cartpole.json"), None)
    assert label == "lion-cartpole" and swept.factory is optax.lion and not swept.anneal
    assert float(swept.hyperparams["learning_rate"]) == pytest.approx(3e-4)
    with pytest.raises(ValueError, match="does not hold a 'adam' optimizer"):
        optimizer_from_spec(f"adam:{tmp_path / 'nf.eqx'}", "breakout")

    out = tmp_path / "eval"
    common = ["evaluate", "--ppo", "cartpole", "--num-envs", "8", "--total-timesteps", "2048", "--seeds", "2", "--out", str(out)]
    assert main([*common, "--env", "CartPole-v1", "--optimizer", "adamx"]) == 2
    assert "unknown optimizer 'adamx'" in capsys.readouterr().err
    assert main([*common, "--env", "Pong", "--optimizer", "adam", "--tuned-for", "breakout"]) == 2
    assert "unknown environment 'Pong'" in capsys.readouterr().err
    assert main([*common, "--env", "CartPole-v1", "--optimizer", "adam"]) == 2
    assert "--tuned-for" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common[:-4], "--seeds", "0", "--env", "CartPole-v1", "--optimizer", "adam", "--out", str(out)])
    assert main([*common, "--env", "CartPole-v1", "--optimizer", "Tuned Adam=adam", "--tuned-for", "breakout",
                 "--seeds-per-call", "1", "--no-analysis"]) == 0
    assert "| Tuned Adam |" in (out / "summary.md").read_text()
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 1] and all(r["stats"] == {} for r in rows)
    assert not (out / "cosine_similarity.png").exists()
