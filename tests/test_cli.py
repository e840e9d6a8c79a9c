"""The command line: names become objects, bad input is a clear error with exit code 2."""

import json

import numpy as np
import pytest

from openrl.cli import learned_optimizer, main
from openrl.optim import presets


def test_lists_environments_and_plugins(capsys):
    assert main(["envs"]) == 0
    assert {"Breakout-MinAtar", "CartPole-v1", "DeepSea-bsuite"} <= set(capsys.readouterr().out.split())
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "openrl.features" in out and "Dormancy" in out and "OpenES" in out


def test_optimizer_names_and_feature_lists():
    assert learned_optimizer("open", "StochasticHead").network.in_size == presets.open_().network.in_size
    custom = learned_optimizer("Gradient,Momentum,Dormancy", "StochasticHead")
    assert [type(f).__name__ for f in custom.features.features] == ["Gradient", "Momentum", "Dormancy"]


def test_meta_train_runs_and_resumes(tmp_path, capsys):
    args = ["meta-train", "--env", "CartPole-v1", "--ppo", "cartpole", "--total-timesteps", "2048",
            "--population", "4", "--eval-every", "0", "--checkpoint-every", "1", "--out", str(tmp_path)]
    assert main(args + ["--generations", "1"]) == 0
    assert main(args + ["--generations", "2", "--resume"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in lines] == [1, 2]
    assert main(args + ["--generations", "2"]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_meta_train_on_a_gridworld_distribution(tmp_path, capsys):
    args = ["meta-train", "--distribution", "rand_dense", "--ppo", "gridworld", "--total-timesteps", "20480",
            "--population", "2", "--generations", "1", "--eval-every", "0", "--out", str(tmp_path)]
    assert main(args) == 0
    (line,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert line["generation"] == 1 and np.isfinite(line["fitness_mean"])
    assert main(["meta-train", "--distribution", "mazes", "--ppo", "gridworld", "--out", str(tmp_path / "x")]) == 2
    assert "unknown gridworld distribution 'mazes'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit):
        main(["meta-train", "--distribution", "all", "--env", "CartPole-v1", "--out", str(tmp_path / "x")])
    assert "not allowed with argument" in capsys.readouterr().err


def test_bad_arguments_are_named(tmp_path, capsys):
    base = ["meta-train", "--env", "CartPole-v1", "--out", str(tmp_path)]
    assert main(base + ["--population", "7"]) == 2
    assert "population_size: antithetic sampling needs an even number >= 2, got 7" in capsys.readouterr().err
    assert main(["meta-train", "--env", "Pong-Atari", "--out", str(tmp_path / "x")]) == 2
    assert "Pong-Atari" in capsys.readouterr().err
    assert main(base + ["--optimizer", "Gradient,Nonsense"]) == 2
    assert "Nonsense" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
