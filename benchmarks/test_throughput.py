"""Environment steps per second of whole PPO runs on Breakout-MinAtar: Adam vs OPEN, 1/4/16 seeds."""

import time

import equinox as eqx
import jax
import pytest

from openrl.optim import presets
from openrl.rl import envs
from openrl.rl.ppo import PPOConfig, train


def steps_per_second(optimizer, num_seeds: int, total_timesteps: int) -> tuple[float, float]:
    config = PPOConfig.minatar(total_timesteps=total_timesteps)
    env = envs.make("Breakout-MinAtar", num_envs=config.num_envs)
    run = eqx.filter_jit(eqx.filter_vmap(lambda k: train(config, optimizer, env, k).final_return))
    keys = jax.random.split(jax.random.key(0), num_seeds)
    start = time.perf_counter()
    jax.block_until_ready(run(keys))
    compile_and_run = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(run(keys))
    elapsed = time.perf_counter() - start
    steps = num_seeds * config.num_iterations * config.batch_size
    return steps / elapsed, compile_and_run - elapsed


@pytest.mark.timeout(3600)
def test_breakout_throughput(record, budget):
    total = int(131_072 * budget)
    numbers = {"steps_per_seed": total}
    for seeds in (1, 4, 16):
        for name, optimizer in (("adam", presets.adam("breakout")), ("open", presets.open_(key=jax.random.key(0)))):
            rate, compile_s = steps_per_second(optimizer, seeds, total)
            numbers[f"{name}_{seeds}_seeds_steps_per_s"] = round(rate)
            numbers[f"{name}_{seeds}_seeds_compile_s"] = round(compile_s, 1)
        numbers[f"open_over_adam_time_{seeds}_seeds"] = round(
            numbers[f"adam_{seeds}_seeds_steps_per_s"] / numbers[f"open_{seeds}_seeds_steps_per_s"], 2
        )
    record("breakout_throughput", numbers)
    assert numbers["adam_4_seeds_steps_per_s"] > numbers["adam_1_seeds_steps_per_s"], "vmapping seeds must pay"
