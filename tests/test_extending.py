"""Extension points: abstract bases cannot be instantiated, heads compose and read feature inputs,
FeatureSet takes several instances of a class, and Context carries a loop's extras."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import openrl as orl
from openrl.optim import AbstractDeterministicHead, FeatureInputs, presets
from openrl.optim.optim4rl import Optim4RLHead


def inputs_for(n: int, grad=None, ctx=None) -> FeatureInputs:
    grad = jnp.linspace(-1.0, 1.0, n) if grad is None else grad
    return FeatureInputs(grad, jnp.zeros(n), orl.Context() if ctx is None else ctx, orl.ParamLayout(((n,),)))


@pytest.mark.parametrize("base", [orl.Feature, orl.UpdateHead, AbstractDeterministicHead, orl.meta.MetaLearner])
def test_abstract_bases_cannot_be_instantiated(base):
    with pytest.raises(TypeError, match="abstract"):
        base()


def test_a_head_that_forgets_its_noise_is_abstract():
    class Half(orl.UpdateHead):
        num_outputs: ClassVar[int] = 1

        def deterministic(self, outputs, inputs):
            return outputs[0]

    with pytest.raises(TypeError, match="abstract"):
        Half()


def test_stochastic_head_is_a_magnitude_head_plus_actor_noise():
    head = orl.StochasticHead(alpha1=0.5, alpha2=0.25, alpha3=0.1)
    assert head.magnitude == orl.MagnitudeHead(alpha1=0.5, alpha2=0.25)
    assert (head.alpha1, head.alpha2) == (0.5, 0.25)
    outputs = jax.random.normal(jax.random.key(0), (3, 6))
    layout = orl.ParamLayout.from_tree([jnp.zeros(4), jnp.zeros(2)],
                                       [orl.LeafInfo("actor", 0, 1), orl.LeafInfo("critic", 0, 1)])
    inputs = FeatureInputs(jnp.zeros(6), jnp.zeros(6), orl.Context(), layout)
    np.testing.assert_array_equal(head.deterministic(outputs, inputs),
                                  orl.MagnitudeHead(alpha1=0.5, alpha2=0.25).deterministic(outputs[:2], inputs))
    noise = head(outputs, inputs, key=jax.random.key(1)) - head.deterministic(outputs, inputs)
    assert np.all(np.asarray(noise)[:4] != 0) and np.all(np.asarray(noise)[4:] == 0)


def test_optim4rl_head_reads_the_gradient_sign_from_its_inputs():
    """sign g no longer passes through the network: the network gives three outputs, the head reads the gradient."""
    optimizer = presets.optim4rl("breakout")
    assert optimizer.network.out_size == optimizer.head.num_outputs == 3
    head = Optim4RLHead(0.5)
    outputs = jnp.zeros((3, 3))  # gate 0 (open), |m| = 1, v = 1
    np.testing.assert_allclose(head.deterministic(outputs, inputs_for(3, jnp.array([-2.0, 0.0, 3.0]))),
                               0.5 * np.array([-1.0, 0.0, 1.0]) / np.sqrt(1.0 + 1e-18))


def test_feature_set_takes_two_momentums_and_refuses_an_exact_repeat():
    fast, slow = orl.Momentum(decays=(0.5,)), orl.Momentum(decays=(0.99,))
    optimizer = orl.Optimizer([fast, slow, orl.Gradient()], orl.MagnitudeHead(), key=jax.random.key(0))
    assert optimizer.network.in_size == 2 + 2 + 2
    params = {"w": jnp.ones((3, 2))}
    state = optimizer.init(params)
    updates, state = optimizer.update({"w": jnp.full((3, 2), 0.1)}, state, params, ctx=orl.Context(), key=jax.random.key(1))
    np.testing.assert_allclose(state.features[0], np.full((1, 6), 0.05))
    np.testing.assert_allclose(state.features[1], np.full((1, 6), 0.001), rtol=1e-5)
    with pytest.raises(ValueError, match=r"features\[1\]: Momentum\(.*\) repeats features\[0\] with the same settings"):
        orl.FeatureSet([orl.Momentum(), orl.Momentum()])


class LossScale(orl.Feature):
    """A feature reading a named signal only a custom loop provides."""

    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ("loss_scale",)

    def __call__(self, inputs, state):
        return jnp.broadcast_to(inputs.ctx.extras["loss_scale"], (1, inputs.layout.num_params)), state


def test_context_extras_reach_features_and_missing_ones_are_named():
    optimizer = orl.Optimizer([LossScale(), orl.Gradient()], orl.MagnitudeHead(), zero_mean=False, key=jax.random.key(0))
    params = {"w": jnp.ones(4)}
    state = optimizer.init(params)
    grads = {"w": jnp.full(4, 0.1)}

    def update(scale):
        ctx = orl.Context(extras={"loss_scale": jnp.asarray(scale)})
        return optimizer.update(grads, state, params, ctx=ctx, key=jax.random.key(1))[0]

    assert not eqx.tree_equal(update(1.0), update(5.0))
    with pytest.raises(ValueError, match=r"ctx: LossScale needs Context extras \['loss_scale'\].*extras=\{'loss_scale': ...\}"):
        optimizer.update(grads, state, params, ctx=orl.Context(), key=jax.random.key(1))
