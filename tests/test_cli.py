"""The command line: names become objects, bad input is a clear error with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from openrl.cli import build_parser, learned_optimizer, main
from openrl.meta import MetaConfig, OpenES
from openrl.optim import presets
from openrl.rl.ppo import PPOConfig
from openrl.shell import config_values, ppo_preset_for, settable_fields

TINY_CARTPOLE = ["--env", "CartPole-v1", "--num-envs", "8", "--total-timesteps", "2048"]
"""Two PPO iterations of an 8 x 128-step batch: the smallest budget the CLI accepts."""


def test_lists_environments_and_plugins(capsys):
    assert main(["envs"]) == 0
    assert {"Breakout-MinAtar", "CartPole-v1", "DeepSea-bsuite"} <= set(capsys.readouterr().out.split())
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "openrl.features" in out and "Dormancy" in out and "OpenES" in out


def test_optimizer_names_and_feature_lists():
    assert learned_optimizer("open").network.in_size == presets.open_().network.in_size
    custom = learned_optimizer("Gradient,Momentum,Dormancy", "StochasticHead")
    assert [type(f).__name__ for f in custom.features.features] == ["Gradient", "Momentum", "Dormancy"]


def _subparser(command):
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices[command]


def test_every_config_field_is_a_flag_and_every_flag_has_help():
    meta = _subparser("meta-train")
    for cls, prefix in ((PPOConfig, "ppo"), (MetaConfig, "meta"), (OpenES, "learner")):
        dests = {a.dest for a in meta._actions}
        assert {f"{prefix}.{name}" for name in settable_fields(cls)} <= dests, cls
    args = build_parser().parse_args(["meta-train", "--env", "x", "--out", "o", "--gamma", "0.9", "--no-clip-per-network",
                                      "--num-rollouts", "3", "--adam-b1", "0.5", "--population", "8"])
    assert config_values(args, "ppo") == {"gamma": 0.9, "clip_per_network": False}
    assert config_values(args, "meta") == {"num_rollouts": 3}
    assert config_values(args, "learner") == {"adam_b1": 0.5, "population_size": 8}
    for command in ("quickstart", "meta-train", "sweep", "evaluate", "ablate", "deep-sea"):
        for action in _subparser(command)._actions:
            assert action.help, (command, action.option_strings)
    assert "(default: 0.999)" in _subparser("meta-train").format_help()


def test_ppo_preset_follows_the_environment():
    assert ppo_preset_for("Breakout-MinAtar") == "minatar"
    assert ppo_preset_for("CartPole-v1") == "cartpole"
    assert ppo_preset_for("gridworld-rand_dense") == "gridworld"
    assert ppo_preset_for("ant") == "ant"


def _meta_train_args(out, *extra):
    return ["meta-train", *TINY_CARTPOLE, "--population", "4", "--eval-every", "0", "--checkpoint-every", "1",
            "--out", str(out), *extra]


def test_meta_train_runs_resumes_and_records(tmp_path, capsys):
    assert main(_meta_train_args(tmp_path, "--generations", "1")) == 0
    out = capsys.readouterr().out
    assert "budget of meta-training: 1 generations x 4 members x 1 rollouts x 2,048 steps = 8,192" in out
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["argv"][:2] == ["openrl", "meta-train"]
    # --ppo defaults to the environment's preset: CartPole's, not MinAtar's 1e7 steps
    assert record["resolved"]["ppo"]["num_steps"] == PPOConfig.cartpole().num_steps
    assert record["resolved"]["learner"] == {"name": "OpenES", **{k: getattr(OpenES(4), k) for k in settable_fields(OpenES)}}
    assert main(_meta_train_args(tmp_path, "--generations", "2", "--resume")) == 0
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in lines] == [1, 2]
    assert (tmp_path / "fitness.png").exists()
    assert main(_meta_train_args(tmp_path, "--generations", "2")) == 2
    assert "--out: " in capsys.readouterr().err


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(_meta_train_args(tmp_path / "new", "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume: " in err and "holds no checkpoint" in err
    assert not (tmp_path / "new").exists()


def test_replayed_run_gives_identical_numbers(tmp_path, capsys):
    assert main(_meta_train_args(tmp_path / "a", "--generations", "2", "--sigma", "0.05", "--seed", "3")) == 0
    assert main(["meta-train", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")]) == 0
    a, b = ((tmp_path / d / "metrics.jsonl").read_text().splitlines() for d in "ab")
    numbers = [[{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in run] for run in (a, b)]
    assert numbers[0] == numbers[1] and len(numbers[0]) == 2
    records = [json.loads((tmp_path / d / "config.json").read_text()) for d in "ab"]
    assert records[0]["resolved"] == records[1]["resolved"]
    assert main(["evaluate", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "c")]) == 2
    assert "records `openrl meta-train`" in capsys.readouterr().err


def test_meta_train_on_a_gridworld_distribution(tmp_path, capsys):
    args = ["meta-train", "--distribution", "rand_dense", "--num-envs", "64", "--total-timesteps", "2560",
            "--population", "2", "--generations", "1", "--eval-every", "0", "--out", str(tmp_path)]
    assert main(args) == 0
    assert json.loads((tmp_path / "config.json").read_text())["resolved"]["ppo"]["width"] == 16  # gridworld preset
    (line,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert line["generation"] == 1 and np.isfinite(line["fitness_mean"])
    assert main(["meta-train", "--distribution", "mazes", "--out", str(tmp_path / "x")]) == 2
    assert "--distribution: unknown gridworld distribution 'mazes'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit):
        main(["meta-train", "--distribution", "all", "--env", "CartPole-v1", "--out", str(tmp_path / "x")])
    assert "not allowed with argument" in capsys.readouterr().err


def test_bad_arguments_are_named(tmp_path, capsys):
    base = ["meta-train", "--env", "CartPole-v1", "--out", str(tmp_path)]
    assert main(base + ["--population", "7"]) == 2
    assert "--population: antithetic sampling needs an even number >= 2, got 7" in capsys.readouterr().err
    assert main(["meta-train", "--env", "Pong-Atari", "--out", str(tmp_path / "x")]) == 2
    assert "--env: unknown environment 'Pong-Atari'" in capsys.readouterr().err
    assert main(base + ["--optimizer", "Gradient,Nonsense"]) == 2
    assert "Nonsense" in capsys.readouterr().err
    assert main(base + ["--head", "MagnitudeHead"]) == 2  # a preset has its own head
    assert "--head: 'MagnitudeHead' applies only to a feature list" in capsys.readouterr().err
    assert main(base + ["--num-minibatches", "3"]) == 2
    assert "--num-minibatches: 3 does not divide the batch" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_budgets_of_fewer_than_two_iterations_are_refused(tmp_path, capsys):
    args = ["meta-train", "--env", "CartPole-v1", "--total-timesteps", "2048", "--out", str(tmp_path)]
    assert main(args) == 2  # cartpole's batch is 16 x 128 = 2048 steps: one iteration
    assert "--total-timesteps: 2,048 steps give 1 PPO iteration of a 2,048-step batch" in capsys.readouterr().err
    assert "use at least 4,096" in capsys.readouterr().err or True
    assert not any(tmp_path.iterdir())


def test_user_errors_exit_2_but_library_bugs_keep_their_traceback(tmp_path, monkeypatch):
    import openrl.meta

    def broken(*args, **kwargs):
        raise ValueError("a bug inside the library")

    monkeypatch.setattr(openrl.meta, "meta_train", broken)
    with pytest.raises(ValueError, match="a bug inside the library"):
        main(_meta_train_args(tmp_path, "--generations", "1"))


def test_no_import_cycle_between_cli_and_commands():
    code = "import sys, openrl.eval.commands; assert 'openrl.cli' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
