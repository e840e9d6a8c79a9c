"""The paper's learned baselines: Optim4RL (close to sign(Adam) at initialisation) and VeLO (published format)."""

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

import openrl as orl
from openrl import plugins
from openrl.meta import MetaConfig, OpenES, Task, meta_train
from openrl.optim import presets
from openrl.optim.features import FeatureInputs
from openrl.optim.optim4rl import Optim4RLHead, Optim4RLNetwork
from openrl.optim.velo import VeLO, init_theta, load_velo, save_velo, theta_shapes
from openrl.rl.agent import ActorCritic
from openrl.rl.ppo import PPOConfig, TrainResult, train

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from probe_envs import OneStepProbe  # noqa: E402

CURVATURE = jnp.array([1.0, 10.0, 0.1, 3.0, 0.5, 2.0])
TARGET = jnp.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.0])
TINY = PPOConfig(total_timesteps=8 * 16 * 4, num_envs=8, num_steps=16, num_minibatches=2, width=8)
BANDIT = PPOConfig(total_timesteps=8 * 16 * 30, num_envs=8, num_steps=16, num_minibatches=4, width=16)


@eqx.filter_jit
def quadratic_step(optimizer, state, params, key):
    """One step of `optimizer` on 0.5·Σ a (x - t)²."""
    grads = jax.grad(lambda p: 0.5 * jnp.sum(CURVATURE * (p["x"] - TARGET) ** 2))(params)
    return optimizer.update(grads, state, params, ctx=orl.Context(), key=key)


def quadratic_updates(optimizer, steps):
    """Updates of `optimizer` over `steps` steps from x = 5, where every gradient is positive."""
    params = {"x": jnp.full(6, 5.0)}
    state, updates = optimizer.init(params), []
    for t in range(steps):
        update, state = quadratic_step(optimizer, state, params, jax.random.key(t))
        params = optax.apply_updates(params, update)
        updates.append(np.asarray(update["x"]))
    return np.stack(updates)


def perturbed(optimizer, sigma, seed=0):
    """`optimizer` with Gaussian noise of scale `sigma` on every meta-parameter (an ES population member)."""
    theta, static = eqx.partition(optimizer, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(theta)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [leaf + sigma * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys)]
    return eqx.combine(jax.tree.unflatten(treedef, noisy), static)


def test_optim4rl_starts_as_sign_adam():
    optim4rl = presets.optim4rl("breakout")
    lr = optim4rl.head.learning_rate
    adam = orl.OptaxOptimizer(optax.adam, learning_rate=lr, eps=1e-8)
    ours, theirs = quadratic_updates(optim4rl, 10), quadratic_updates(adam, 10)
    # Adam's first step is lr·g/(|g| + ε); at zero meta-parameters Optim4RL's every step is lr·sign(g).
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-4)
    np.testing.assert_array_equal(ours, lr * np.sign(theirs))
    # An ES-sized perturbation (the paper's σ = 0.03) stays within 1% of sign(Adam).
    noisy = quadratic_updates(perturbed(optim4rl, 0.03), 10)
    np.testing.assert_allclose(noisy, lr * np.sign(theirs), rtol=0.01)


def test_optim4rl_head_by_hand():
    head = Optim4RLHead(0.5)
    # (gate, log|m|, log v) and sign g from the gradient: m = sign·1[gate + 1 >= 0]·|m|, update = lr·m/√v.
    outputs = jnp.array([[0.0, 0.0, -1.5], [np.log(3.0), 0.0, 0.0], [np.log(4.0), 0.0, 0.0]])
    inputs = FeatureInputs(jnp.array([2.0, -0.3, 1.0]), jnp.zeros(3), orl.Context(), orl.ParamLayout(((3,),)))
    np.testing.assert_allclose(head.deterministic(outputs, inputs), [0.5 * 3.0 / 2.0, -0.5, 0.0], rtol=1e-6)


def test_optim4rl_preset_sizes_and_learning_rates():
    optimizer = presets.optim4rl("breakout")
    theta, _ = eqx.partition(optimizer, eqx.is_inexact_array)
    # m-network GRU(2->8) 272 + 8x16 144 + 16x16 272 + 16x2 34; v-network GRU(1->8) 248 + 144 + 272 + 16x1 17.
    assert sum(x.size for x in jax.tree.leaves(theta)) == 722 + 681
    assert optimizer.network.hidden_size == 16 and not optimizer.zero_mean
    assert presets.optim4rl("breakout", orl.optim.LARGE).network.hidden_size == 32
    table4 = {"asterix": 0.0003, "freeway": 0.0001, "breakout": 0.001, "space_invaders": 0.0007, "ant": 0.00003}
    for env, lr in table4.items():
        assert presets.optim4rl(env).head.learning_rate == pytest.approx(lr)
    assert plugins.load("openrl.optimizers", "optim4rl")("asterix").head.learning_rate == pytest.approx(0.0003)


def test_optim4rl_solves_a_bandit_inside_ppo():
    result = eqx.filter_jit(train)(BANDIT, presets.optim4rl(), OneStepProbe("bandit"), jax.random.key(0))
    assert float(result.returns[0]) < 0.75 and float(result.final_return) > 0.9


class DoubleStepTask(Task):
    """Fitness: how close Optim4RL's first two steps on the quadratic come to 2·lr·sign(g) (no PPO)."""

    name: str = eqx.field(static=True, default="double-step")
    config: PPOConfig = TINY

    def sample(self, key):
        return None

    def run(self, optimizer, env, key):
        params = {"x": jnp.full(6, 5.0)}
        state, error = optimizer.init(params), 0.0
        for _ in range(2):
            update, state = quadratic_step.__wrapped__(optimizer, state, params, key)
            error = error + jnp.sum((update["x"] + 2.0 * optimizer.head.learning_rate) ** 2)
        fitness = -error / optimizer.head.learning_rate**2
        agent = ActorCritic(1, 2, discrete=True, width=2, depth=1, key=key)
        return TrainResult(agent=agent, opt_state=None, returns=fitness[None], dormancy=jnp.zeros(1),
                           final_return=fitness, stats={})


def test_optim4rl_is_meta_trainable_by_openes():
    learner = OpenES(population_size=8, sigma_init=0.1)
    meta = meta_train(learner, presets.optim4rl(), DoubleStepTask(), MetaConfig(generations=15, eval_every=0),
                      progress=False)
    # At zero meta-parameters each step is -lr: fitness -12·(1)² summed over two steps = -12.
    assert meta.history[0]["fitness_mean"] == pytest.approx(-12.0, abs=0.5)
    final = DoubleStepTask().run(meta.final, None, jax.random.key(0)).final_return
    assert float(final) > -3.0, "the ES mean learned to take about twice Adam's first step"


def test_optim4rl_bad_input():
    with pytest.raises(ValueError, match="learning_rate"):
        Optim4RLHead(-0.1)
    with pytest.raises(ValueError, match="env"):
        presets.optim4rl("pong")
    with pytest.raises(ValueError, match="head"):
        orl.Optimizer([orl.optim.SignLogGradient()], orl.MagnitudeHead(), network=Optim4RLNetwork())


@pytest.fixture
def velo_checkpoint(tmp_path):
    """A small VeLO checkpoint in the published format, built here (the real one cannot be downloaded)."""
    path = tmp_path / "params"
    save_velo(VeLO(init_theta(jax.random.key(7), lstm_hidden_size=16, param_inits=8)), path)
    return path


def small_network():
    keys = jax.random.split(jax.random.key(3), 3)
    return {"w1": jax.random.normal(keys[0], (4, 3)), "b1": jnp.full(3, 0.1), "w2": jax.random.normal(keys[1], (3, 2)),
            "scale": jnp.asarray(0.7)}


@eqx.filter_jit
def velo_step(velo, state, params, t):
    """One VeLO step on fixed gradients cos(3p), with a loss falling as 1 / (t + 1) over a 50-update run."""
    grads = jax.tree.map(lambda p: jnp.cos(3.0 * p), params)
    return velo.update(grads, state, params, ctx=orl.Context(loss=1.0 / (t + 1.0), num_updates=50),
                       key=jax.random.key(0))


def velo_updates(velo, steps):
    params = small_network()
    state, out = velo.init(params), []
    for t in range(steps):
        update, state = velo_step(velo, state, params, jnp.asarray(t, jnp.float32))
        out.append(update)
    return out, state


def test_velo_update_from_a_test_built_checkpoint_is_deterministic_and_finite(velo_checkpoint):
    velo = load_velo(velo_checkpoint)
    assert (velo.lstm_hidden_size, velo.param_inits) == (16, 8)
    first, state = velo_updates(velo, 3)
    again, _ = velo_updates(load_velo(velo_checkpoint), 3)
    assert eqx.tree_equal(first, again)
    for update in first:
        assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(update))
        assert jax.tree.map(jnp.shape, update) == jax.tree.map(jnp.shape, small_network())
    assert int(state.iteration) == 3
    assert not np.allclose(first[0]["w1"], first[2]["w1"]), "accumulators and LSTM state carry over"


def test_velo_checkpoint_round_trips_in_the_published_layout(velo_checkpoint):
    raw = serialization.msgpack_restore(velo_checkpoint.read_bytes())
    assert set(raw) == {"params", "gen_id", "step"}
    assert set(raw["params"]) == {"lstm_init_state", "rnn_params", "ff_mod_stack"}
    assert raw["params"]["rnn_params"]["rnn/~/linear"]["w"].shape == (32, 64)
    assert raw["params"]["ff_mod_stack"]["~"]["w0__3"].shape == (8, 3, 4)
    # Older flax wrote the LSTM state namedtuple as {name, fields, values}; both load the same.
    state = raw["params"]["lstm_init_state"]
    raw["params"]["lstm_init_state"] = {"name": "LSTMState", "fields": {"0": "hidden", "1": "cell"},
                                        "values": {"0": state["hidden"] + 1.0, "1": state["cell"]}}
    legacy = velo_checkpoint.parent / "legacy"
    legacy.write_bytes(serialization.msgpack_serialize(raw))
    np.testing.assert_array_equal(load_velo(legacy).theta["lstm_init_state"]["hidden"], state["hidden"] + 1.0)
    # The published sizes: an LSTM of 512 over 30 per-tensor features, 256 MLPs to interpolate.
    published = theta_shapes()
    assert published[("rnn_params", "rnn/~/linear", "w")] == (1024, 2048)
    assert published[("ff_mod_stack", "~", "w2")] == (256, 4, 3)


def test_velo_step_by_hand():
    """All-zero MLPs but a direction bias β and unit controls: the step is 100·β·1e-3·s·rms(p) per tensor."""
    theta = jax.tree.map(jnp.zeros_like, init_theta(jax.random.key(0), lstm_hidden_size=4, param_inits=2))
    theta["rnn_params"]["rnn_to_controls"]["b"] = jnp.ones(2)
    theta["rnn_params"]["step_size"]["b"] = jnp.full(1, 3.0)
    theta["ff_mod_stack"]["~"]["b2"] = jnp.array([[0.2, 0.0, 0.0], [0.6, 0.0, 0.0]])
    velo, params = VeLO(theta), {"w": small_network()["w1"], "scale": jnp.asarray(0.7)}
    ctx = orl.Context(loss=jnp.asarray(1.0), num_updates=10)
    update, _ = eqx.filter_jit(velo.update)(jax.tree.map(jnp.ones_like, params), velo.init(params), params,
                                            ctx=ctx, key=jax.random.key(0))
    for name, p in params.items():
        expected = -100.0 * 0.4 * 1e-3 * 3.0 * np.sqrt(np.mean(np.square(p)) + 1e-9)
        np.testing.assert_allclose(update[name], np.full(p.shape, expected), rtol=1e-5)


def test_velo_runs_inside_ppo(velo_checkpoint):
    result = eqx.filter_jit(train)(TINY, presets.velo(velo_checkpoint), OneStepProbe("bandit"), jax.random.key(0))
    assert np.isfinite(np.asarray(result.returns)).all()
    assert int(result.opt_state.iteration) == TINY.num_iterations * TINY.num_epochs * TINY.num_minibatches


def test_velo_bad_checkpoints_are_clear_errors(velo_checkpoint, tmp_path):
    raw = serialization.msgpack_restore(velo_checkpoint.read_bytes())
    raw["params"]["rnn_params"]["step_size"]["w"] = np.zeros((16, 2), np.float32)
    wrong = tmp_path / "wrong"
    wrong.write_bytes(serialization.msgpack_serialize(raw))
    with pytest.raises(ValueError, match=r"rnn_params/step_size/w: got \(16, 2\), expected \(16, 1\)"):
        load_velo(wrong)
    del raw["params"]["ff_mod_stack"]["~"]["b1"]
    wrong.write_bytes(serialization.msgpack_serialize(raw))
    with pytest.raises(ValueError, match="missing.*ff_mod_stack/~/b1"):
        load_velo(wrong)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00not msgpack")
    with pytest.raises(ValueError, match="garbage"):
        load_velo(garbage)
    with pytest.raises(FileNotFoundError, match="storage.googleapis.com"):
        presets.velo(tmp_path / "absent")
    velo, params = load_velo(velo_checkpoint), small_network()
    with pytest.raises(ValueError, match="Context"):
        velo.update(params, velo.init(params), params, ctx=orl.Context(), key=jax.random.key(0))
