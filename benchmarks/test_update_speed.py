"""Time of one optimizer update on a MinAtar-sized agent (~60k parameters), as ratios to Adam, and the
FLOP rate the learned updates reach as a fraction of this machine's matmul rate, measured in the same run.

Also the per-parameter network alone (GRU and MLP on given inputs, no features, no head): its time is the
floor of a learned update under XLA on this backend, which `docs/benchmarks.md` compares with PPO's own
time per update."""

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from profile_update import minatar_problem

import openrl as orl
from openrl.optim import presets

UPDATES = 100
REPEATS = 5
INPUTS = 20


def best_seconds(run, *args) -> float:
    """Best of `REPEATS` timed calls of a jitted `run` (compiled by a first call), per scan step."""
    jax.block_until_ready(run(*args))
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        jax.block_until_ready(run(*args))
        best = min(best, (time.perf_counter() - start) / UPDATES)
    return best


def seconds_per_update(optimizer, params, layout, grads, ctx) -> float:
    state = optimizer.init(params, layout)

    @eqx.filter_jit
    def run(state, params):
        def body(carry, key):
            state, params = carry
            updates, state = optimizer.update(grads, state, params, ctx=ctx, key=key)
            return (state, eqx.apply_updates(params, updates)), None

        return jax.lax.scan(body, (state, params), jax.random.split(jax.random.key(0), UPDATES))[0]

    return best_seconds(run, state, params)


def network_seconds(optimizer: orl.Optimizer, num_params: int) -> float:
    """One step of `optimizer`'s per-parameter network, carrying its GRU state, on inputs that change every
    step (`INPUTS` random ones in turn: a constant input would let XLA hoist the input matmul out of the loop)."""
    net = optimizer.network
    xs = jax.random.normal(jax.random.key(0), (INPUTS, net.in_size, num_params))
    hidden = jnp.zeros((net.hidden_size, num_params))

    @jax.jit
    def run(xs, hidden):
        def step(carry, x):
            outputs, hidden = net(x, carry)
            return hidden + 1e-9 * outputs[:1], None

        return jax.lax.fori_loop(0, UPDATES // INPUTS, lambda _, h: jax.lax.scan(step, h, xs)[0], hidden)

    return best_seconds(run, xs, hidden)


def network_flops(optimizer: orl.Optimizer, num_params: int) -> int:
    """Multiply-adds x 2 of the per-parameter network (GRU input and recurrent matmuls, MLP layers)."""
    net = optimizer.network
    gru = net.gru.weight_ih.size + net.gru.weight_hh.size
    mlp = sum(layer.weight.size for layer in net.hidden_layers) + net.output.weight.size
    return 2 * (gru + mlp) * num_params


def matmul_flops_per_second(flops: int) -> float:
    """This machine's rate on PPO's own matmul shape (`[m, 400] @ [400, 64]`, MinAtar's first layer), with
    `m` chosen so one product costs about `flops`: the rate Adam's PPO update runs at."""
    m = max(1, round(flops / (2 * 400 * 64)))
    a = jax.random.normal(jax.random.key(0), (m, 400))
    b = jax.random.normal(jax.random.key(1), (400, 64))

    @jax.jit
    def run(a, b):
        return jax.lax.scan(lambda x, _: (x + 1e-9 * jnp.dot(jnp.dot(x, b), b.T), None), a, length=UPDATES)[0]

    # Two products per step: one [m, 400] @ [400, 64], one [m, 64] @ [64, 400].
    return 2 * (2 * m * 400 * 64) / best_seconds(run, a, b)


@pytest.mark.timeout(900)
def test_update_time_relative_to_adam(record):
    params, layout, grads, ctx = minatar_problem()
    learned = {"open": presets.open_(key=jax.random.key(1)), "no_features": presets.no_features(key=jax.random.key(1))}
    times = {name: seconds_per_update(opt, params, layout, grads, ctx)
             for name, opt in [("adam", presets.adam()), *learned.items()]}
    network = {name: network_seconds(opt, layout.num_params) for name, opt in learned.items()}
    flops = {name: network_flops(opt, layout.num_params) for name, opt in learned.items()}
    matmul_rate = matmul_flops_per_second(flops["open"])
    record("update_speed", {
        "backend": jax.default_backend(),
        "num_params": layout.num_params,
        **{f"{k}_ms": round(v * 1e3, 3) for k, v in times.items()},
        "open_over_adam": round(times["open"] / times["adam"], 1),
        "no_features_over_adam": round(times["no_features"] / times["adam"], 1),
        "matmul_gflop_per_s": round(matmul_rate / 1e9, 1),
        **{f"{name}_network_gflop_per_update": round(f / 1e9, 4) for name, f in flops.items()},
        **{f"{name}_gflop_per_s": round(flops[name] / times[name] / 1e9, 1) for name in learned},
        **{f"{name}_fraction_of_matmul_rate": round(flops[name] / times[name] / matmul_rate, 3) for name in learned},
        **{f"{name}_network_alone_ms": round(network[name] * 1e3, 3) for name in learned},
        **{f"{name}_network_alone_gflop_per_s": round(flops[name] / network[name] / 1e9, 1) for name in learned},
    })
    assert times["open"] < 0.05, "an OPEN update on 60k parameters should take well under 50 ms on a CPU"
