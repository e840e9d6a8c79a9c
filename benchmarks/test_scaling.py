"""Sharding efficiency of a meta-training generation: population 16 on 2 CPU devices, in one process and in two.

Three layouts, each in fresh processes, measured in one run: 1 process x 1 device on one core (the reference),
1 process x 2 fake devices on two cores, and 2 processes x 1 device, each on its own core, joined over 127.0.0.1
by `openrl.distributed`. Each meta-trains No Features on CartPole (PPO, `--budget` x 8,192 steps per member)
for 4 generations; a generation's time is the median of generations 2-4 (the first compiles). Efficiency =
time on 1 device / (2 x time on 2 devices): 1.0 is perfect halving, 0.5 no gain at all.

Every layout gets one core per device (`os.sched_setaffinity` before JAX starts, so XLA sizes its thread
pool to it): an XLA CPU device is not tied to a core, so pinned, the benchmark asks what sharding is for:
do two compute units halve a generation? This benchmark found that they did not (2026-12-01: 2.50 s per
generation on 1 device, 2.93 s on 2, 4.17 s in 2 processes): `jit`'s partitioner split the population, but
the CPU per-member rule of `openrl.optim.batching` then picked members out of the sharded axis, so every
device fetched every member. Populations and seeds now run per device under `jax.shard_map`
(`openrl.distributed.map_shards`); the same benchmark then measured 3.39 s on 1 device and 1.74 s on 2
devices and in 2 processes: efficiency 0.97 for both (2026-12-02, idle machine).

Bound: efficiency > 0.6 for both 2-device layouts. The generation's communication is a gather of 16 fitness
values (plus, with two processes, the gloo transport and a barrier), negligible beside 16 PPO runs, so
anything near 0.5 means the population is not really split. Needs two cores; run it on an otherwise idle
machine: other load on the cores lowers the 2-device numbers directly.

This file is also the worker: `python test_scaling.py --result FILE [distributed flags]`.
"""

import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

GENERATIONS = 4
POPULATION = 16
STEPS = 8192
TIMEOUT = 900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path: pathlib.Path, name: str, devices: int, processes: int, budget: float, cores: list[int]) -> float:
    """Median seconds per generation of one layout; process i is pinned to `cores[i]` alone when there are
    several processes, else to all of `cores`."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu",
           "JAX_CPU_ENABLE_ASYNC_DISPATCH": "false"}
    port = _free_port()
    commands = []
    for i in range(processes):
        command = [sys.executable, __file__, "--result", str(tmp_path / f"{name}.json"),
                   "--steps", str(int(STEPS * budget)),
                   "--cores", ",".join(map(str, [cores[i]] if processes > 1 else cores))]
        if processes > 1:
            command += ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes),
                        "--process-id", str(i), "--heartbeat-timeout", "30"]
        commands.append(command)
    workers = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for c in commands]
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=TIMEOUT)
            assert worker.returncode == 0, f"{name} failed:\n{out}\n{err[-4000:]}"
    finally:
        for worker in workers:
            worker.kill()
    seconds = json.loads((tmp_path / f"{name}.json").read_text())["seconds"]
    return float(np.median(seconds[1:]))


@pytest.mark.timeout(3 * TIMEOUT)
def test_sharding_efficiency_of_a_generation(tmp_path, budget, record):
    cores = sorted(os.sched_getaffinity(0))[:2]
    if len(cores) < 2:
        pytest.skip(f"needs two CPU cores, this process may use {len(cores)}")
    one = _run(tmp_path, "1x1", devices=1, processes=1, budget=budget, cores=cores[:1])
    shared = _run(tmp_path, "1x2", devices=2, processes=1, budget=budget, cores=cores)
    split = _run(tmp_path, "2x1", devices=1, processes=2, budget=budget, cores=cores)
    efficiency = {"one_process_two_devices": one / (2 * shared), "two_processes_one_device_each": one / (2 * split)}
    record("scaling", {"population": POPULATION, "steps_per_member": int(STEPS * budget), "cores_per_device": 1,
                       "seconds_per_generation": {"1 process x 1 device": round(one, 3),
                                                  "1 process x 2 devices": round(shared, 3),
                                                  "2 processes x 1 device": round(split, 3)},
                       "efficiency": {k: round(v, 3) for k, v in efficiency.items()}})
    for layout, value in efficiency.items():
        assert value > 0.6, f"{layout}: sharding efficiency {value:.2f} <= 0.6"


def _worker() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--result", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--cores", required=True, help="comma-separated CPU cores this process may use")
    args, _ = parser.parse_known_args()
    os.sched_setaffinity(0, {int(c) for c in args.cores.split(",")})  # before JAX sizes its thread pool
    from openrl import distributed

    distributed.add_arguments(parser)
    args = parser.parse_args()
    distributed.initialize_from_args(args)
    from openrl.meta import MetaConfig, OpenES, make_task, meta_train
    from openrl.optim import presets
    from openrl.rl.ppo import PPOConfig

    task = make_task("CartPole-v1", PPOConfig.cartpole(total_timesteps=args.steps))
    result = meta_train(OpenES(population_size=POPULATION), presets.no_features(), task,
                        MetaConfig(generations=GENERATIONS, eval_every=0), progress=False)
    if distributed.is_main():
        pathlib.Path(args.result).write_text(json.dumps({"seconds": [r["seconds"] for r in result.history]}))


if __name__ == "__main__":
    _worker()
