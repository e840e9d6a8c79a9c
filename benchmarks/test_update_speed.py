"""Time of one optimizer update on a MinAtar-sized agent (~60k parameters), as ratios to Adam."""

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import openrl as orl
from openrl.optim import presets
from openrl.rl.agent import ActorCritic

UPDATES = 100


def seconds_per_update(optimizer, params, layout, grads, ctx) -> float:
    state = optimizer.init(params, layout)

    @eqx.filter_jit
    def run(state, params):
        def body(carry, key):
            state, params = carry
            updates, state = optimizer.update(grads, state, params, ctx=ctx, key=key)
            return (state, eqx.apply_updates(params, updates)), None

        return jax.lax.scan(body, (state, params), jax.random.split(jax.random.key(0), UPDATES))[0]

    jax.block_until_ready(run(state, params))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(run(state, params))
        best = min(best, (time.perf_counter() - start) / UPDATES)
    return best


@pytest.mark.timeout(900)
def test_update_time_relative_to_adam(record):
    agent = ActorCritic(400, 3, discrete=True, width=64, depth=2, key=jax.random.key(0))
    params, layout = eqx.filter(agent, eqx.is_inexact_array), agent.layout()
    _, _, activity = agent(jax.random.normal(jax.random.key(1), (1024, 400)))
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(2), p.shape), params)
    ctx = orl.Context(iteration=jnp.asarray(3), epoch=jnp.asarray(1), activations=activity, num_iterations=10,
                      num_epochs=4)
    times = {name: seconds_per_update(opt, params, layout, grads, ctx) for name, opt in [
        ("adam", presets.adam()), ("open", presets.open_(key=jax.random.key(1))),
        ("no_features", presets.no_features(key=jax.random.key(1)))]}
    record("update_speed", {
        "num_params": layout.num_params,
        **{f"{k}_ms": round(v * 1e3, 3) for k, v in times.items()},
        "open_over_adam": round(times["open"] / times["adam"], 1),
        "no_features_over_adam": round(times["no_features"] / times["adam"], 1),
    })
    assert times["open"] < 0.05, "an OPEN update on 60k parameters should take well under 50 ms on a CPU"
