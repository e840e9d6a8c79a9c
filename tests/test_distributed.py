"""Several processes on JAX's distributed runtime, over 127.0.0.1: meta-training, a lost peer, resume, evaluation.

Each multi-process case launches tests/distributed_worker.py twice (one fake CPU device per process),
joined through `openrl.distributed`'s flags, and compares what they computed with this process
(conftest: one process, two fake CPU devices).
"""

import argparse
import os
import pathlib
import socket
import subprocess
import sys
import time

import equinox as eqx
import jax
import numpy as np
import pytest

from openrl import distributed
from openrl.eval.evaluation import evaluate
from openrl.meta import meta_train
from openrl.optim import presets

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import distributed_worker as worker

WORKER = pathlib.Path(worker.__file__)
GENERATIONS = 3
HEARTBEAT = 60
"""Seconds of silence before JAX's runtime declares a process dead. 5 s and 20 s proved too short on a 2-core
machine at load average 15-29: a process starved of CPU missed its own heartbeats and the run ended."""
LOST_PEER_BOUND = 90
"""Seconds process 0 may take to stop after process 1 dies. A collective with a dead peer fails at once (we
measured about 4 s from the kill to the exit) and JAX's runtime gives up on a silent peer after HEARTBEAT
seconds; the rest is margin for a loaded machine. A hang would meet the subprocess timeout instead."""
SUBPROCESS_TIMEOUT = 480


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path: pathlib.Path, name: str, *args: str, process_1: tuple[str, ...] = ()) -> list[subprocess.Popen]:
    """Two worker processes, one CPU device each, joined over loopback; `process_1`: extra flags of process 1."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu",
           "JAX_CPU_ENABLE_ASYNC_DISPATCH": "false"}
    port = _free_port()
    return [
        subprocess.Popen(
            [sys.executable, str(WORKER), "--result", str(tmp_path / f"{name}-{i}.npz"), *args,
             "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i),
             "--heartbeat-timeout", str(HEARTBEAT), "--init-timeout", "120", *(process_1 if i else ())],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]


def _finish(processes: list[subprocess.Popen]) -> list[str]:
    outputs = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            raise
        assert process.returncode == 0, f"worker failed ({process.returncode}):\n{out}\n{err[-4000:]}"
        outputs.append(out)
    return outputs


def _final(result) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(result.final, eqx.is_array))]


def _saved_final(path: pathlib.Path) -> list[np.ndarray]:
    saved = np.load(path)
    return [saved[f"final{i}"] for i in range(sum(k.startswith("final") for k in saved.files))]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """An uninterrupted 2-process run of GENERATIONS generations, then a 2-process evaluation of its result."""
    tmp_path = tmp_path_factory.mktemp("whole")
    _finish(_launch(tmp_path, "whole", "--out", str(tmp_path / "run"), "--generations", str(GENERATIONS),
                    "--evaluate-out", str(tmp_path / "evaluation")))
    return tmp_path


def test_two_processes_meta_train_as_one_process_with_two_devices_or_one(two_process_run):
    results = [np.load(two_process_run / f"whole-{i}.npz") for i in range(2)]
    for key in results[0].files:
        assert np.array_equal(results[0][key], results[1][key]), f"processes disagree on {key}"
    config = worker.config(GENERATIONS)
    two_devices = meta_train(worker.LEARNER, presets.no_features(), worker.NoisyQuadratic(), config, progress=False)
    one_device = meta_train(worker.LEARNER, presets.no_features(), worker.NoisyQuadratic(), config, progress=False,
                            devices=jax.devices()[:1])
    # The same two-device layout: the same program, bit for bit.
    np.testing.assert_array_equal(results[0]["fitness"], [r["fitness_mean"] for r in two_devices.history])
    for ours, theirs in zip(_saved_final(two_process_run / "whole-0.npz"), _final(two_devices), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # One device: members are batched 4 instead of 2 per device, so fitness sums may round differently (we
    # measured at most 3.4e-8). A member lost or misplaced between processes would move the mean by about the
    # ES step, learning_rate = 0.05: 1e-6 is far below that and far above rounding.
    for ours, theirs in zip(_saved_final(two_process_run / "whole-0.npz"), _final(one_device), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_only_process_0_writes(two_process_run):
    run = two_process_run / "run"
    assert {p.name for p in run.iterdir()} == {"checkpoints", "metrics.jsonl", "best.eqx", "best.eqx.json"}
    assert len((run / "metrics.jsonl").read_text().splitlines()) == GENERATIONS
    written = [p.relative_to(run) for p in run.rglob("*")]
    assert written and not [p for p in written if "process_1" in str(p)], "process 1 wrote checkpoint files"
    assert len((two_process_run / "evaluation" / "results.jsonl").read_text().splitlines()) == worker.EVALUATION_SEEDS


def test_two_process_evaluation_gives_the_single_process_returns(two_process_run):
    saved = np.load(two_process_run / "whole-0.npz")
    assert saved["returns"].shape == (worker.EVALUATION_SEEDS,) and len(set(saved["returns"].tolist())) > 1
    params, static = eqx.partition(presets.no_features(), eqx.is_array)
    leaves = [jax.numpy.asarray(x) for x in _saved_final(two_process_run / "whole-0.npz")]
    trained = eqx.combine(jax.tree.unflatten(jax.tree.structure(params), leaves), static)
    report = evaluate({"nf": trained}, worker.NoisyQuadratic(), worker.EVALUATION_SEEDS, progress=False)
    np.testing.assert_array_equal(saved["returns"], report.scores("nf", "noisy-quadratic"))


def test_a_killed_process_stops_the_other_and_the_run_resumes_exactly(two_process_run, tmp_path):
    out = tmp_path / "run"
    first, second = _launch(tmp_path, "killed", "--out", str(out), "--generations", str(GENERATIONS),
                            process_1=("--die-at", "3"))
    try:
        second.wait(timeout=SUBPROCESS_TIMEOUT)
        died = time.monotonic()
        assert second.returncode == -9
        first.wait(timeout=LOST_PEER_BOUND)
        stopped = time.monotonic() - died
        _, err = first.communicate()
    finally:
        for p in (first, second):
            p.kill()
    assert first.returncode != 0
    assert "PeerError: process 0 of 2: lost contact with another process" in err, err[-4000:]
    assert stopped < LOST_PEER_BOUND
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    _finish(_launch(tmp_path, "resumed", "--out", str(out), "--generations", str(GENERATIONS), "--resume"))
    resumed, whole = np.load(tmp_path / "resumed-0.npz"), np.load(two_process_run / "whole-0.npz")
    np.testing.assert_array_equal(resumed["fitness"], whole["fitness"])
    for a, b in zip(_saved_final(tmp_path / "resumed-0.npz"), _saved_final(two_process_run / "whole-0.npz"),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_import_leaves_jax_free_to_start_the_distributed_runtime():
    code = ("import openrl, openrl.cli, openrl.distributed\nfrom jax._src import xla_bridge\n"
            "assert not xla_bridge.backends_are_initialized(), 'importing openrl started a JAX backend'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=SUBPROCESS_TIMEOUT)
    # evosax computes on a device when imported, so openrl writes out the strategies it offers instead.
    from evosax.algorithms import distribution_based_algorithms

    from openrl.meta.learners import EVOSAX_STRATEGIES, EXCLUDED_STRATEGIES

    assert set(EVOSAX_STRATEGIES) == set(distribution_based_algorithms) - set(EXCLUDED_STRATEGIES)


def _args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    distributed.add_arguments(parser)
    return parser.parse_args(list(flags))


def test_flags_are_checked_before_anything_starts():
    assert not distributed.config_from_args(_args()).enabled
    assert distributed.config_from_args(_args("--distributed")).enabled
    config = distributed.config_from_args(_args("--coordinator", "10.0.0.1:1234", "--num-processes", "2",
                                                "--process-id", "1", "--heartbeat-timeout", "7"))
    assert (config.coordinator, config.num_processes, config.process_id, config.heartbeat_timeout) == (
        "10.0.0.1:1234", 2, 1, 7)
    with pytest.raises(ValueError, match=r"--num-processes, --process-id: needed with --coordinator"):
        distributed.config_from_args(_args("--coordinator", "10.0.0.1:1234"))
    with pytest.raises(ValueError, match=r"--process-id: expected 0 to 1 for --num-processes=2, got 2"):
        distributed.config_from_args(_args("--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"))
    with pytest.raises(ValueError, match=r"--coordinator: expected HOST:PORT"):
        distributed.config_from_args(_args("--coordinator", "10.0.0.1", "--num-processes", "2", "--process-id", "0"))
    with pytest.raises(ValueError, match=r"--heartbeat-timeout: expected a positive int, got 0"):
        distributed.config_from_args(_args("--distributed", "--heartbeat-timeout", "0"))
    # Our message; under the tests' runtime type checking (conftest), beartype's, naming the parameter.
    with pytest.raises(TypeError, match="expected an openrl.distributed.DistributedConfig|parameter 'config'"):
        distributed.initialize({"coordinator": "h:1"})
    # Not enabled: nothing starts, whatever the backend's state.
    distributed.initialize(distributed.DistributedConfig())
    assert jax.process_count() == 1
