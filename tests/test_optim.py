"""The optimizer contract over every optimizer, feature values, heads, and bad input."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import openrl as orl
from openrl import plugins
from openrl.optim import presets
from openrl.optim.features import FeatureInputs, neuron_scores
from openrl.rl.agent import ActorCritic

OPTIMIZERS = {
    "open": lambda: presets.open_(key=jax.random.key(1)),
    "no_features": lambda: presets.no_features(key=jax.random.key(2)),
    "open_large": lambda: presets.open_(orl.optim.LARGE, key=jax.random.key(3)),
    "adam": presets.adam,
    "rmsprop": presets.rmsprop,
    "lion": presets.lion,
    "optim4rl": lambda: presets.optim4rl(key=jax.random.key(6)),
}


def _plugin_optimizers() -> dict:
    """Every installed third-party feature and head inside an optimizer, so the contract covers plugins too.

    Plugin features and heads are built with their defaults; features sit beside `Gradient`, heads
    take the same inputs as `MagnitudeHead`'s network.
    """
    found = {}
    for group in ("openrl.features", "openrl.heads"):
        for name, info in plugins.available(group).items():
            if info.package == "openrl":
                continue
            if group == "openrl.features":
                make = lambda name=name: orl.Optimizer(  # noqa: E731
                    [plugins.load("openrl.features", name)(), orl.Gradient()], orl.MagnitudeHead(), key=jax.random.key(7))
            else:
                make = lambda name=name: orl.Optimizer(  # noqa: E731
                    [orl.Momentum(), orl.Gradient()], plugins.load("openrl.heads", name)(), key=jax.random.key(7))
            found[f"{info.package}:{name}"] = make
    return found


OPTIMIZERS.update(_plugin_optimizers())
LEARNED = ["open", "no_features", "open_large"]


def tiny_agent(discrete=True):
    return ActorCritic(5, 3, discrete=discrete, width=8, depth=2, key=jax.random.key(0))


def problem(discrete=True):
    """Parameters, layout, gradients and a full context for a tiny actor-critic."""
    agent = tiny_agent(discrete)
    params = eqx.filter(agent, eqx.is_inexact_array)
    obs = jax.random.normal(jax.random.key(4), (16, 5))
    _, _, activity = agent(obs)
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(p.size), p.shape), params)
    ctx = orl.Context(iteration=jnp.asarray(3), epoch=jnp.asarray(1), activations=activity,
                      num_iterations=10, num_epochs=4, extras=plugin_extras())
    return params, agent.layout(), grads, ctx


def plugin_extras() -> dict:
    """A value for every `Context.extras` name an installed feature reads (a training loop would add them)."""
    fields = {field.name for field in dataclasses.fields(orl.Context)}
    names = {name for cls in plugins.load_all("openrl.features").values() for name in cls.requires} - fields
    return {name: jnp.asarray(0.5) for name in sorted(names)}


def leaves_by_network(tree, layout, network):
    return [leaf for leaf, info in zip(jax.tree.leaves(tree), layout.infos) if info.network == network]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_contract(name):
    optimizer = OPTIMIZERS[name]()
    params, layout, grads, ctx = problem()
    traces = []

    @eqx.filter_jit
    def step(opt, state, params, key):
        traces.append(1)
        updates, state = opt.update(grads, state, params, ctx=ctx, key=key)
        return eqx.apply_updates(params, updates), state, updates

    state0 = optimizer.init(params, layout)
    params1, state1, updates1 = step(optimizer, state0, params, jax.random.key(0))
    params2, state2, _ = step(optimizer, state1, params1, jax.random.key(1))
    assert len(traces) == 1, "the second step recompiled"
    for s in (state1, state2):
        assert jax.tree.structure(s) == jax.tree.structure(state0)
        assert [(x.shape, x.dtype) for x in jax.tree.leaves(s)] == [(x.shape, x.dtype) for x in jax.tree.leaves(state0)]
    assert jax.tree.structure(updates1) == jax.tree.structure(params)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates1))
    assert any(float(jnp.abs(u).max()) > 0 for u in jax.tree.leaves(updates1))

    again, _, _ = step(optimizer, state0, params, jax.random.key(0))
    assert all(jnp.array_equal(a, b) for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(params1)))

    keys = jax.random.split(jax.random.key(5), 3)
    batched = eqx.filter_vmap(lambda k: step(optimizer, state0, params, k)[2])(keys)
    single = step(optimizer, state0, params, keys[1])[2]
    for b, s in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
        np.testing.assert_allclose(b[1], s, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", LEARNED)
def test_noise_only_on_actor_and_zero_mean(name):
    optimizer = OPTIMIZERS[name]()
    params, layout, grads, ctx = problem()
    state = optimizer.init(params, layout)
    u1, _ = optimizer.update(grads, state, params, ctx=ctx, key=jax.random.key(0))
    u2, _ = optimizer.update(grads, state, params, ctx=ctx, key=jax.random.key(1))
    flat1, flat2 = jax.flatten_util.ravel_pytree(u1)[0], jax.flatten_util.ravel_pytree(u2)[0]
    np.testing.assert_allclose(float(flat1.mean()), 0.0, atol=1e-7)
    critic_diff = [a - b for a, b in zip(leaves_by_network(u1, layout, "critic"), leaves_by_network(u2, layout, "critic"))]
    actor_diff = [a - b for a, b in zip(leaves_by_network(u1, layout, "actor"), leaves_by_network(u2, layout, "actor"))]
    spread = max(float(jnp.abs(d - d.mean()).max()) for d in critic_diff)
    actor_spread = max(float(jnp.abs(d).max()) for d in actor_diff)
    if isinstance(optimizer.head, orl.StochasticHead):
        # Zero-meaning shifts every parameter by the same amount, so the critic differs only by a constant.
        assert spread < 1e-9
        assert actor_spread > 1e-6
    else:
        assert jnp.array_equal(flat1, flat2)


def test_zero_mean_can_be_switched_off():
    optimizer = orl.Optimizer([orl.Gradient()], orl.MagnitudeHead(), zero_mean=False, key=jax.random.key(0))
    params, layout, grads, ctx = problem()
    updates, _ = optimizer.update(grads, optimizer.init(params, layout), params, ctx=ctx, key=jax.random.key(0))
    assert abs(float(jax.flatten_util.ravel_pytree(updates)[0].mean())) > 1e-6


def test_meta_parameters_are_the_network_only():
    optimizer = presets.open_(key=jax.random.key(0))
    meta, static = eqx.partition(optimizer, eqx.is_inexact_array)
    assert len(jax.tree.leaves(meta)) == len(jax.tree.leaves(eqx.filter(optimizer.network, eqx.is_inexact_array)))
    assert sum(x.size for x in jax.tree.leaves(meta)) == 1211
    assert static.features.features[1].decays == (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)
    assert static.head.alpha1 == static.head.alpha2 == static.head.alpha3 == 1e-3
    assert eqx.tree_equal(eqx.combine(meta, static), optimizer)


def test_zero_initialisation_gives_zero_update():
    optimizer = presets.open_()
    params, layout, grads, ctx = problem()
    updates, _ = optimizer.update(grads, optimizer.init(params, layout), params, ctx=ctx, key=jax.random.key(0))
    assert all(float(jnp.abs(u).max()) == 0.0 for u in jax.tree.leaves(updates))


def test_network_sizes_are_derived():
    assert presets.open_().network.in_size == 19
    assert presets.no_features().network.in_size == 14
    assert presets.open_().network.out_size == 3
    assert presets.no_features().network.out_size == 2
    assert presets.open_(orl.optim.LARGE).network.hidden_size == 16


# Feature values against hand-computed numbers.

def hand_layout():
    params = {"w": jnp.array([[1.0, -2.0], [3.0, 0.5]]), "b": jnp.array([0.0, -4.0])}
    infos = {"w": orl.LeafInfo("actor", 1, 3, 1, 0), "b": orl.LeafInfo("critic", 0, 3, 0, 0)}
    return params, orl.ParamLayout.from_tree(params, infos)


def feature_inputs(grad, param, layout, ctx=orl.Context()):
    return FeatureInputs(jnp.asarray(grad, jnp.float32), jnp.asarray(param, jnp.float32), ctx, layout)


def test_per_tensor_normalisation():
    params, layout = hand_layout()
    flat = jnp.array([0.0, -4.0, 1.0, -2.0, 3.0, 0.5])  # leaves sorted: b, then w
    x, _ = orl.FeatureSet([orl.ParamValue()])(feature_inputs(flat, flat, layout), (None,))
    b, w = np.array([0.0, -4.0]), np.array([1.0, -2.0, 3.0, 0.5])
    expected = np.concatenate([b / np.sqrt(1e-5 + np.mean(b**2)), w / np.sqrt(1e-5 + np.mean(w**2))])
    np.testing.assert_allclose(x[0], expected, rtol=1e-6)


def test_gradient_and_momentum_sign_log():
    _, layout = hand_layout()
    grad = np.array([0.0, -4.0, 1.0, -2.0, 3.0, 1e-20])
    x, _ = orl.Gradient()(feature_inputs(grad, grad, layout), None)
    np.testing.assert_allclose(x[0], np.sign(grad))
    np.testing.assert_allclose(x[1], np.log(np.abs(grad).astype(np.float32) + 1e-13), rtol=1e-6)
    assert x[1, 0] == pytest.approx(np.log(1e-13), rel=1e-6)

    momentum = orl.Momentum(decays=(0.5, 0.9))
    state = momentum.init(layout)
    _, state = momentum(feature_inputs(grad, grad, layout), state)
    x, state = momentum(feature_inputs(2 * grad, grad, layout), state)
    m = np.stack([0.5 * 0.5 * grad + 0.5 * 2 * grad, 0.9 * 0.1 * grad + 0.1 * 2 * grad])
    np.testing.assert_allclose(state, m, rtol=1e-6)
    np.testing.assert_allclose(x, np.concatenate([np.sign(m), np.log(np.abs(m) + 1e-13)]), rtol=1e-5)
    assert momentum.num_channels == 4


def test_training_batch_and_layer_proportion():
    _, layout = hand_layout()
    ctx = orl.Context(iteration=jnp.asarray(3), epoch=jnp.asarray(2), num_iterations=7, num_epochs=5)
    inputs = feature_inputs(np.zeros(6), np.zeros(6), layout, ctx)
    np.testing.assert_allclose(orl.TrainingProp()(inputs, None)[0][0], 3 / 6)
    np.testing.assert_allclose(orl.BatchProp()(inputs, None)[0][0], 2 / 4)
    np.testing.assert_allclose(orl.LayerProp()(inputs, None)[0][0], [0, 0, 0.5, 0.5, 0.5, 0.5])


def test_proportions_follow_the_released_step_counter():
    """With t counting updates, TP = (t // (E*M)) / (N - 1) and BP = ((t // M) % E) / (E - 1)."""
    num_iterations, epochs, minibatches = 5, 4, 3
    _, layout = hand_layout()
    for t in range(num_iterations * epochs * minibatches):
        ctx = orl.Context(iteration=jnp.asarray(t // (epochs * minibatches)), epoch=jnp.asarray((t // minibatches) % epochs),
                          num_iterations=num_iterations, num_epochs=epochs)
        inputs = feature_inputs(np.zeros(6), np.zeros(6), layout, ctx)
        assert float(orl.TrainingProp()(inputs, None)[0][0, 0]) == pytest.approx((t // (epochs * minibatches)) / (num_iterations - 1))
        assert float(orl.BatchProp()(inputs, None)[0][0, 0]) == pytest.approx(((t // minibatches) % epochs) / (epochs - 1))


def test_dormancy_maps_to_downstream_neuron():
    _, layout = hand_layout()
    # Layer 0 has neurons with activity (1, 3); layer 1 has (0, 2, 4) is not used here.
    activity = (jnp.array([1.0, 3.0]), jnp.array([2.0, 6.0]))
    inputs = feature_inputs(np.zeros(6), np.zeros(6), layout, orl.Context(activations=activity))
    x, _ = orl.Dormancy()(inputs, None)
    # b (critic, neuron layer 0): [1, 3] / 2; w (neuron layer 1, axis 0 = rows): rows map to [2, 6] / 4.
    np.testing.assert_allclose(x[0], [0.5, 1.5, 0.5, 0.5, 1.5, 1.5])
    np.testing.assert_allclose(neuron_scores((jnp.zeros(3),)), np.zeros(3))


def test_gaussian_policy_layout_follows_opens_code():
    """OPEN's code counts the log-std as the actor's last layer and gives it dormancy 1."""
    agent = ActorCritic(3, 2, discrete=False, width=4, key=jax.random.key(0))
    layout, params = agent.layout(), eqx.filter(agent, eqx.is_inexact_array)
    parts = lambda a: (*a.actor.layers, a.log_std, *a.critic.layers)  # noqa: E731

    def per_element(values):
        tree = eqx.tree_at(parts, params, tuple(jax.tree.map(lambda x: jnp.full(x.shape, float(v)), part)
                                                for v, part in zip(values, parts(params))))
        return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])

    _, _, activity = agent(jnp.ones((5, 3)))
    zeros = np.zeros(layout.num_params)
    inputs = feature_inputs(zeros, zeros, layout, orl.Context(activations=activity))
    np.testing.assert_allclose(orl.LayerProp()(inputs, None)[0][0], per_element((0, 1 / 3, 2 / 3, 1, 0, 0.5, 1)),
                               rtol=1e-6)
    dormancy, log_std = orl.Dormancy()(inputs, None)[0][0], per_element((0, 0, 0, 1, 0, 0, 0)) == 1
    np.testing.assert_array_equal(dormancy[log_std], 1.0)
    # Every other parameter takes the score of a real neuron.
    scores = np.asarray(neuron_scores(activity))
    assert np.abs(np.asarray(dormancy)[~log_std, None] - scores[None, :]).min(axis=1).max() < 1e-6


# Bad input.

def test_feature_set_rejects_bad_features():
    # Under the tests' beartype hook the annotation check may answer first; both name the culprit.
    with pytest.raises(TypeError, match=r"(?s)features.*Feature"):
        orl.FeatureSet([orl.Gradient(), "momentum"])
    with pytest.raises(ValueError, match=r"features\[1\]: Gradient\(\) repeats features\[0\] with the same settings"):
        orl.FeatureSet([orl.Gradient(), orl.Gradient()])
    with pytest.raises(ValueError, match="at least one"):
        orl.FeatureSet([])
    with pytest.raises(ValueError, match="decays"):
        orl.Momentum(decays=(0.5, 1.5))


def test_head_must_be_a_head():
    with pytest.raises(TypeError, match=r"(?s)head.*UpdateHead"):
        orl.Optimizer([orl.Gradient()], head="metz")


def test_head_incompatible_with_network_outputs():
    network = presets.no_features().network
    with pytest.raises(ValueError, match="head: StochasticHead needs 3 network outputs, the network gives 2"):
        orl.Optimizer([orl.Momentum(), orl.Gradient()], orl.StochasticHead(), network=network)
    with pytest.raises(ValueError, match="features: give 15 inputs, the network takes 14"):
        orl.Optimizer([orl.ParamValue(), orl.Momentum(), orl.Gradient()], orl.MagnitudeHead(), network=network)


def test_missing_context_is_named():
    optimizer = presets.open_()
    params, layout, grads, ctx = problem()
    state = optimizer.init(params, layout)
    with pytest.raises(ValueError, match=r"ctx: TrainingProp needs Context fields \['iteration', 'num_iterations'\]"):
        optimizer.update(grads, state, params, ctx=orl.Context(epoch=ctx.epoch, num_epochs=4,
                                                                activations=ctx.activations), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"Dormancy needs Context fields \['activations'\]"):
        optimizer.update(grads, state, params, ctx=orl.Context(iteration=ctx.iteration, num_iterations=10,
                                                                epoch=ctx.epoch, num_epochs=4), key=jax.random.key(0))
    with pytest.raises(ValueError, match="annealing needs Context"):
        adam = presets.adam()
        adam.update(grads, adam.init(params), params, ctx=orl.Context(), key=jax.random.key(0))


def test_layout_needed_for_layer_features_and_noise():
    params, _, _, _ = problem()
    with pytest.raises(ValueError, match="LayerProp, Dormancy needs to know each parameter's network"):
        orl.Optimizer([orl.LayerProp(), orl.Dormancy()], orl.MagnitudeHead()).init(params)
    with pytest.raises(ValueError, match="StochasticHead needs"):
        orl.Optimizer([orl.Gradient()], orl.StochasticHead()).init(params)


def test_unknown_tuned_environment():
    with pytest.raises(ValueError, match="env: no tuned rmsprop values for 'gridworld'"):
        presets.rmsprop("gridworld")


def test_as_optax_in_a_plain_optax_loop():
    """A learned optimizer drops into an ordinary optax loop and minimises a quadratic."""
    params = {"x": jnp.array([3.0, -2.0])}
    optimizer = orl.Optimizer([orl.Gradient(), orl.Momentum()], orl.MagnitudeHead(alpha1=0.1, alpha2=0.0),
                              zero_mean=False)
    # A hand-set network that outputs m = -sign(g) channel: update = 0.1 * sign(g).
    net = optimizer.network
    w_ih = jnp.zeros_like(net.gru.weight_ih).at[2 * net.hidden_size, 0].set(10.0)
    net = eqx.tree_at(lambda n: n.gru.weight_ih, net, w_ih)
    out = jnp.zeros_like(net.output.weight)
    layers = [eqx.tree_at(lambda l: l.weight, l, jnp.zeros_like(l.weight).at[0, 0].set(1.0)) for l in net.hidden_layers]
    net = eqx.tree_at(lambda n: (n.output.weight, *n.hidden_layers), net, (out.at[0, 0].set(1.0), *layers))
    net = eqx.tree_at(lambda n: [x.weight for x in n.norms], net, [jnp.ones(16), jnp.ones(16)])
    tx = eqx.tree_at(lambda o: o.network, optimizer, net).as_optax()
    state = tx.init(params)
    loss = lambda p: jnp.sum(p["x"] ** 2)  # noqa: E731
    start = loss(params)
    for i in range(20):
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params, key=jax.random.key(i))
        params = eqx.apply_updates(params, updates)
    assert loss(params) < 0.5 * start
