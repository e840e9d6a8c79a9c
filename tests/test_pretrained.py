"""The seven released OPEN optimizers ship with openrl, load by name with their checksums, and updates
match an independent NumPy reading of the released format (`numpy_open_update`): the GRU in Flax's
`GRUCell` convention, the LayerNorm MLP, the 19 inputs and the update of the paper's Appendix B.1."""

import dataclasses
import hashlib
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import openrl as orl
from openrl.optim import from_vector, presets, to_vector
from openrl.optim.pretrained import RELEASED
from openrl.rl import envs
from openrl.rl.agent import ActorCritic

DECAYS = np.array([0.1, 0.5, 0.9, 0.99, 0.999, 0.9999])


def unpack(vector: np.ndarray) -> dict:
    """The flat vector read in the documented order (keys sorted, bias before kernel): GRU of 8 (small)
    or 16 (large) units, MLP of width 16 or 32."""
    h = {1211: 8, 3571: 16}[vector.size]
    w = 2 * h
    shapes = [
        ("hn.bias", (h,)), ("hn.kernel", (h, h)), ("hr.kernel", (h, h)), ("hz.kernel", (h, h)),
        ("in.bias", (h,)), ("in.kernel", (19, h)), ("ir.bias", (h,)), ("ir.kernel", (19, h)),
        ("iz.bias", (h,)), ("iz.kernel", (19, h)),
        ("l0.bias", (w,)), ("l0.kernel", (h, w)), ("ln1.bias", (w,)), ("ln1.scale", (w,)),
        ("l3.bias", (w,)), ("l3.kernel", (w, w)), ("ln4.bias", (w,)), ("ln4.scale", (w,)),
        ("l6.bias", (3,)), ("l6.kernel", (w, 3)),
    ]
    out, at = {}, 0
    for name, shape in shapes:
        size = int(np.prod(shape))
        out[name] = vector[at : at + size].reshape(shape).astype(np.float64)
        at += size
    assert at == vector.size
    return out


def numpy_open_update(w, leaves, infos, grads, momenta, hidden, activity, t, E, M, N, eps):
    """README formulas: inputs, GRU, MLP, update u and zero-meaning; returns (-u per leaf, momenta, hidden)."""
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731

    def layer_norm(x, scale, bias):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-6) * scale + bias

    def normalise(x):
        return x / np.sqrt(1e-5 + np.mean(x**2, axis=0, keepdims=True))

    scores = [a / a.mean() for a in activity]
    rows, new_momenta = [], []
    for p, g, m, info in zip(leaves, grads, momenta, infos):
        p, g = p.reshape(-1), g.reshape(-1)
        m = DECAYS[None] * m + (1 - DECAYS[None]) * g[:, None]
        new_momenta.append(m)
        neuron = np.indices(info["shape"])[0].reshape(-1)
        cols = [normalise(p[:, None]), normalise(np.sign(m)), normalise(np.log(np.abs(m) + 1e-13)),
                normalise(np.sign(g)[:, None]), normalise(np.log(np.abs(g) + 1e-13)[:, None])]
        n = p.size
        cols += [
            np.full((n, 1), (t // (E * M)) / (N - 1)),
            np.full((n, 1), info["layer"] / (info["layers"] - 1)),
            np.full((n, 1), ((t // M) % E) / (E - 1)),
            (np.ones(n) if info["neuron_layer"] is None else scores[info["neuron_layer"]][neuron])[:, None],
        ]
        rows.append(np.concatenate(cols, axis=1))
    x = np.concatenate(rows)
    h = hidden
    r = sigmoid(x @ w["ir.kernel"] + w["ir.bias"] + h @ w["hr.kernel"])
    z = sigmoid(x @ w["iz.kernel"] + w["iz.bias"] + h @ w["hz.kernel"])
    nn = np.tanh(x @ w["in.kernel"] + w["in.bias"] + r * (h @ w["hn.kernel"] + w["hn.bias"]))
    h = (1 - z) * nn + z * h
    y = np.maximum(layer_norm(h @ w["l0.kernel"] + w["l0.bias"], w["ln1.scale"], w["ln1.bias"]), 0)
    y = np.maximum(layer_norm(y @ w["l3.kernel"] + w["l3.bias"], w["ln4.scale"], w["ln4.bias"]), 0)
    m_out, e_out, d_out = (y @ w["l6.kernel"] + w["l6.bias"]).T
    actor = np.concatenate([np.full(int(np.prod(i["shape"])), i["network"] == "actor") for i in infos])
    u = m_out * 0.001 * np.exp(0.001 * e_out) + 0.001 * d_out * eps * actor
    u = u - u.mean()
    split = np.split(-u, np.cumsum([int(np.prod(i["shape"])) for i in infos])[:-1])
    return [s.reshape(i["shape"]) for s, i in zip(split, infos)], new_momenta, h


def sha256(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("name", list(RELEASED))
def test_every_released_optimizer_ships_and_loads_by_name(name):
    entry = RELEASED[name]
    assert entry.path().is_file() and sha256(entry.path()) == entry.sha256
    vector = np.load(entry.path())
    optimizer = orl.load_pretrained(name)
    assert np.array_equal(to_vector(optimizer), vector)
    assert eqx.tree_equal(optimizer, orl.load_pretrained(entry.path()))
    size = {"small": orl.optim.SMALL, "large": orl.optim.LARGE}[entry.size]
    _, static = eqx.partition(optimizer, eqx.is_inexact_array)
    _, open_static = eqx.partition(presets.open_(size), eqx.is_inexact_array)
    assert jax.tree.structure(static) == jax.tree.structure(open_static)
    assert vector.size == {"small": 1211, "large": 3571}[entry.size]
    for adam in entry.adam:
        presets.adam(adam)
    assert getattr(orl.PPOConfig, entry.ppo)().total_timesteps == entry.total_timesteps


def test_registry_metadata_is_the_papers():
    assert sorted(RELEASED) == ["ant", "asterix", "breakout", "freeway", "gridworld", "multi", "spaceinvaders"]
    normalisers = {env: n for r in RELEASED.values() for env, n in zip(r.envs, r.normalisers)}
    assert normalisers == {"Asterix-MinAtar": 15.04, "Freeway-MinAtar": 61.84, "Breakout-MinAtar": 50.08,
                           "SpaceInvaders-MinAtar": 167.09, "ant": 6517.31, "gridworld-all": 1.0}
    assert RELEASED["multi"].size == "large" and all(r.size == "small" for n, r in RELEASED.items() if n != "multi")
    assert RELEASED["multi"].adam == ("asterix", "breakout", "freeway", "space_invaders")
    known = set(envs.names())
    assert {env for r in RELEASED.values() for env in r.envs} <= known
    assert (RELEASED["ant"].ppo, RELEASED["gridworld"].ppo, RELEASED["asterix"].ppo) == ("ant", "gridworld", "minatar")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="'asterx'; known: ant, asterix, breakout, freeway, gridworld, multi"):
        orl.load_pretrained("asterx")


def test_a_damaged_packaged_file_is_refused(monkeypatch):
    entry = RELEASED["breakout"]
    monkeypatch.setitem(RELEASED, "breakout", dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(ValueError, match=f"breakout_OPEN.npy: sha256 {entry.sha256} does not match"):
        orl.load_pretrained("breakout")


def test_large_format_round_trip(tmp_path):
    optimizer = presets.open_(orl.optim.LARGE, key=jax.random.key(0))
    orl.save_pretrained(optimizer, tmp_path / "large.npy")
    assert np.load(tmp_path / "large.npy").shape == (3571,)
    loaded = orl.load_pretrained(tmp_path / "large.npy")
    assert eqx.tree_equal(loaded, optimizer)


def test_bad_pretrained_files(tmp_path):
    np.save(tmp_path / "short.npy", np.zeros(1000, np.float32))
    with pytest.raises(ValueError, match=r"short.npy: expected a flat float32 vector of length 1211 or 3571.*\(1000,\)"):
        orl.load_pretrained(tmp_path / "short.npy")
    np.save(tmp_path / "double.npy", np.zeros(1211, np.float64))
    with pytest.raises(ValueError, match="double.npy.*got dtype float64"):
        orl.load_pretrained(tmp_path / "double.npy")
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        orl.load_pretrained(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match=r"vector: expected shape \(1211,\)"):
        from_vector(np.zeros(3571, np.float32), presets.open_())


def random_vector(size: int) -> np.ndarray:
    """Random weights of the released format, scaled so every part of the network matters."""
    return np.asarray(0.5 * np.random.default_rng(size).standard_normal(size), np.float32)


@pytest.mark.parametrize(
    "weights, discrete",
    [("breakout", True), ("multi", True), ("ant", False), (1211, True), (3571, True), (1211, False)],
    ids=["breakout", "multi-large", "ant-gaussian", "random-small", "random-large", "random-small-gaussian"],
)
def test_two_updates_match_numpy(weights, discrete):
    """Two consecutive OPEN updates (momenta and GRU state carried) equal the NumPy reading, for the
    released small, large (multi-task) and Ant weights, and for random vectors of both sizes. The Ant
    case has a Gaussian policy: its log-std is the actor's last layer, with dormancy score 1."""
    vector = np.load(RELEASED[weights].path()) if isinstance(weights, str) else random_vector(weights)
    optimizer = from_vector(vector, presets.open_({1211: orl.optim.SMALL, 3571: orl.optim.LARGE}[vector.size]))
    agent = ActorCritic(6, 3, discrete=discrete, width=8, depth=2, key=jax.random.key(0))
    params = eqx.filter(agent, eqx.is_inexact_array)
    layout = agent.layout()
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(params)]
    infos = [dict(shape=s, network=i.network, layer=i.layer, layers=i.num_layers, neuron_layer=i.neuron_layer)
             for s, i in zip(layout.shapes, layout.infos)]
    assert [i["network"] for i in infos] == ["actor"] * 6 + ["critic"] * 6 + ["actor"] * (not discrete)
    if not discrete:  # log-std (the last leaf): the actor's fourth and last layer, no downstream neuron
        assert (infos[12]["shape"], infos[12]["layer"], infos[12]["layers"], infos[12]["neuron_layer"]) == ((3,), 3, 4, None)
        assert [i["layers"] for i in infos[:6]] == [4] * 6

    E, M, N = 4, 2, 5
    state = optimizer.init(params, layout)
    momenta = [np.zeros((x.size, 6)) for x in leaves]
    hidden = np.zeros((sum(x.size for x in leaves), optimizer.network.hidden_size))
    w = unpack(vector)
    for t, seed in [(9, 0), (10, 1)]:
        obs = jax.random.normal(jax.random.key(10 + seed), (32, 6))
        _, _, activity = agent(obs)
        grads = jax.tree.map(lambda p: 0.1 * jax.random.normal(jax.random.key(p.size + seed), p.shape), params)
        key = jax.random.key(seed)
        ctx = orl.Context(iteration=jnp.asarray(t // (E * M)), epoch=jnp.asarray((t // M) % E),
                          activations=activity, num_iterations=N, num_epochs=E)
        updates, state = optimizer.update(grads, state, params, ctx=ctx, key=key)
        eps = np.asarray(jax.random.normal(key, (hidden.shape[0],)), np.float64)
        expected, momenta, hidden = numpy_open_update(
            w, leaves, infos, [np.asarray(g, np.float64) for g in jax.tree.leaves(grads)], momenta, hidden,
            [np.asarray(a, np.float64) for a in activity], t, E, M, N, eps,
        )
        for got, want in zip(jax.tree.leaves(updates), expected):
            np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=1e-7)
        params = eqx.apply_updates(params, updates)
        leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(params)]
