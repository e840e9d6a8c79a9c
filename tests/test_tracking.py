"""Experiment tracking: JSONL (the default) and TensorBoard receive meta-training and evaluation metrics;
missing optional trackers are clear errors."""

import json
import struct
import sys

import pytest

from openrl import tracking
from openrl.eval.evaluation import evaluate
from openrl.meta import EnvTask, MetaConfig, OpenES, meta_train
from openrl.optim import presets
from openrl.rl.ppo import PPOConfig

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from probe_envs import OneStepProbe  # noqa: E402
from test_meta import QuadraticTask, small_optimizer  # noqa: E402

BANDIT = EnvTask(name="bandit", config=PPOConfig(total_timesteps=8 * 16 * 2, num_envs=8, num_steps=16,
                                                 num_minibatches=2, width=8), env=OneStepProbe("bandit"))


def tensorboard_scalars(log_dir) -> dict[str, dict[int, float]]:
    """`{tag: {step: value}}` from the TFRecord event files under `log_dir`."""
    from tensorboardX.proto.event_pb2 import Event

    scalars = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = Event.FromString(data[offset + 12:offset + 12 + length])  # 8 length + 4 CRC bytes
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def test_meta_training_logs_each_generation_to_jsonl_and_tensorboard(tmp_path):
    with tracking.TensorBoardLogger(tmp_path / "tb") as tb:
        result = meta_train(OpenES(population_size=4), small_optimizer(), QuadraticTask(),
                            MetaConfig(generations=3, eval_every=2), out_dir=tmp_path / "run", progress=False,
                            loggers=[tb])
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines == result.history
    scalars = tensorboard_scalars(tmp_path / "tb")
    assert set(scalars) == {"fitness_mean", "fitness_max", "non_finite", "sigma", "seconds", "validation"}
    assert scalars["fitness_mean"] == pytest.approx({r["generation"]: r["fitness_mean"] for r in result.history})
    assert sorted(scalars["validation"]) == [2, 3]


def test_evaluation_logs_its_summary(tmp_path):
    jsonl = tracking.JsonlLogger(tmp_path / "eval.jsonl")
    with tracking.TensorBoardLogger(tmp_path / "tb") as tb:
        report = evaluate({"Adam": presets.adam()}, BANDIT, seeds=2, progress=False, analysis=False,
                          loggers=[jsonl, tb])
    (line,) = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    iqm = report.summary["Adam"]["iqm"]
    assert line["step"] == 2
    assert (line["evaluate/Adam/iqm"], line["evaluate/Adam/iqm_lower"], line["evaluate/Adam/iqm_upper"]) == (
        iqm.estimate, iqm.lower, iqm.upper)
    assert line["evaluate/bandit/Adam/iqm"] == pytest.approx(iqm.estimate)
    scalars = tensorboard_scalars(tmp_path / "tb")
    assert scalars["evaluate/Adam/iqm"] == pytest.approx({2: iqm.estimate})


def test_jsonl_resume_rewrites_history_and_checks_input(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"generation": 1}\n{"generation": 2}\n{"generation": 3}\n')
    logger = tracking.JsonlLogger(path, step_key="generation", history=[{"generation": 1, "fitness_mean": 0.5}])
    logger.log({"fitness_mean": 0.75}, step=2)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"generation": 1, "fitness_mean": 0.5}, {"generation": 2, "fitness_mean": 0.75}]
    with pytest.raises(ValueError, match="step: expected an int >= 0, got -1"):
        logger.log({"x": 1.0}, step=-1)
    with pytest.raises(FileNotFoundError, match="the directory of"):
        tracking.JsonlLogger(tmp_path / "missing" / "m.jsonl")
    with tracking.TensorBoardLogger(tmp_path / "tb") as tb, pytest.raises(TypeError, match=r"metrics\['x'\]"):
        tb.log({"x": "high"}, step=0)


@pytest.mark.parametrize("name, module, extra", [("tensorboard", "tensorboardX", "tensorboard"),
                                                  ("wandb", "wandb", "wandb")])
def test_a_missing_optional_tracker_says_what_to_install(tmp_path, monkeypatch, name, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(ImportError, match=rf"pip install 'openrl\[{extra}\]'"):
        tracking.make_logger(name, tmp_path)
    with pytest.raises(ValueError, match=r"logger: expected one of \['tensorboard', 'wandb'\], got 'mlflow'"):
        tracking.make_logger("mlflow", tmp_path)
