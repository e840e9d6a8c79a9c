"""The command line: names become objects, bad input is a clear error with exit code 2."""

import json
import subprocess
import sys

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
    a = tmp_path / "a"
    assert main(_meta_train_args(a, "--generations", "1", "--seed", "3")) == 0
    out = capsys.readouterr().out
    assert "budget of meta-training: 1 generations x 4 members x 1 rollouts x 2,048 steps = 8,192" in out
    record = json.loads((a / "config.json").read_text())
    assert record["argv"][:2] == ["openrl", "meta-train"]
    # --ppo defaults to the environment's preset: CartPole's, not MinAtar's 1e7 steps
    assert record["resolved"]["ppo"]["num_steps"] == PPOConfig.cartpole().num_steps
    assert record["resolved"]["learner"] == {"name": "OpenES", **{k: getattr(OpenES(4), k) for k in settable_fields(OpenES)}}
    assert main(_meta_train_args(a, "--generations", "2", "--seed", "3", "--resume")) == 0
    lines = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in lines] == [1, 2]
    assert (a / "fitness.png").exists()
    assert main(_meta_train_args(a, "--generations", "2")) == 2
    assert "--out: " in capsys.readouterr().err


def test_a_replayed_run_gives_identical_numbers(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(_meta_train_args(a, "--generations", "2", "--seed", "3")) == 0
    assert main(["meta-train", "--config", str(a / "config.json"), "--out", str(b)]) == 0
    numbers = [[{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (a, b)]
    assert numbers[0] == numbers[1] and len(numbers[0]) == 2
    records = [json.loads((d / "config.json").read_text()) for d in (a, b)]
    assert records[0]["resolved"] == records[1]["resolved"]
    assert main(["evaluate", "--config", str(a / "config.json"), "--out", str(tmp_path / "c")]) == 2
    assert "records `openrl meta-train`" in capsys.readouterr().err


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(_meta_train_args(tmp_path / "new", "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume: " in err and "holds no checkpoint" in err
    assert not (tmp_path / "new").exists()


def test_meta_train_on_a_gridworld_distribution(tmp_path, monkeypatch, capsys):
    import openrl.meta

    seen = {}

    def fake_meta_train(learner, optimizer, task, config, **kwargs):
        seen.update(task=task, config=config)
        return openrl.meta.MetaTrainResult(optimizer, optimizer, [])

    monkeypatch.setattr(openrl.meta, "meta_train", fake_meta_train)
    assert main(["meta-train", "--distribution", "rand_dense", "--population", "2", "--out", str(tmp_path)]) == 0
    assert seen["task"].config == PPOConfig.gridworld()  # the preset follows the environment
    assert json.loads((tmp_path / "config.json").read_text())["resolved"]["ppo"]["width"] == 16
    assert "x 30,000,000 steps" in capsys.readouterr().out
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
    err = capsys.readouterr().err
    assert "--total-timesteps: 2,048 steps give 1 PPO iteration of a 2,048-step batch" in err
    assert "use at least 4,096 (2 iterations)" in err
    assert not any(tmp_path.iterdir())
    assert main(["meta-train", *TINY_CARTPOLE[:-1], "3000", "--out", str(tmp_path), "--generations", "0"]) == 2
    assert "not a multiple of the batch (1,024 steps): PPO runs 2 iterations, 2,048 steps; nearest valid values: " \
           "2,048 or 3,072" in capsys.readouterr().out


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


def test_evaluate_tunes_every_environment_with_its_own_values(tmp_path, monkeypatch, capsys):
    import openrl.eval.evaluation

    seen = {}

    def fake_evaluate(optimizers, tasks, seeds, **kwargs):
        seen.update(optimizers=optimizers, tasks=tasks, reference=kwargs["reference"])
        raise KeyboardInterrupt  # stop before training

    monkeypatch.setattr(openrl.eval.evaluation, "evaluate", fake_evaluate)
    with pytest.raises(KeyboardInterrupt):
        main(["evaluate", "--env", "Breakout-MinAtar", "--env", "Asterix-MinAtar", "--optimizer", "adam",
              "--optimizer", "open", "--optimizer", "open:untrained", "--seeds", "2", "--out", str(tmp_path)])
    adam = seen["optimizers"]["Adam"]
    rates = {env: float(adam[env].hyperparams["learning_rate"]) for env in adam}
    assert rates == pytest.approx({"Breakout-MinAtar": 0.01, "Asterix-MinAtar": 0.003})  # paper Table 4
    assert set(seen["optimizers"]) == {"Adam", "OPEN", "OPEN (untrained)"}
    assert [t.config.total_timesteps for t in seen["tasks"]] == [PPOConfig.minatar().total_timesteps] * 2
    out = capsys.readouterr().out
    assert "budget of Breakout-MinAtar: 3 optimizers x 2 seeds x 10,000,000 steps = 60,000,000" in out


def test_evaluate_distribution_builds_the_gridworld_benchmark(tmp_path, monkeypatch):
    """`--distribution` gives each run its own draw, as Figure 4 and `benchmarks/test_gridworld.py` do: the
    same tasks and optimizers, so the same fingerprints (the benchmark's stored runs are read back)."""
    import openrl.eval.evaluation
    from openrl.eval.evaluation import _fingerprint
    from openrl.meta import suites
    from openrl.optim.pretrained import load_pretrained

    seen = {}

    def fake_evaluate(optimizers, tasks, seeds, **kwargs):
        seen.update(optimizers=optimizers, tasks=tasks)
        raise KeyboardInterrupt  # stop before training

    monkeypatch.setattr(openrl.eval.evaluation, "evaluate", fake_evaluate)
    with pytest.raises(KeyboardInterrupt):
        main(["evaluate", "--distribution", "all", "--distribution", "labyrinth", "--optimizer",
              "OPEN (released)=gridworld", "--optimizer", "Adam (tuned)=adam", "--optimizer", "open",
              "--total-timesteps", "30000000", "--seeds", "2", "--out", str(tmp_path)])
    benchmark = suites.suite(["all", "labyrinth"], PPOConfig.gridworld(total_timesteps=30_000_000))
    assert [t.name for t in seen["tasks"]] == ["all", "labyrinth"]
    released, adam = load_pretrained("gridworld"), presets.adam("gridworld")
    for ours, theirs in zip(seen["tasks"], benchmark):
        optimizers = {label: o[ours.name] if isinstance(o, dict) else o for label, o in seen["optimizers"].items()}
        assert _fingerprint(optimizers["OPEN (released)"], ours, 0) == _fingerprint(released, theirs, 0)
        assert _fingerprint(optimizers["Adam (tuned)"], ours, 0) == _fingerprint(adam, theirs, 0)
        assert _fingerprint(optimizers["OPEN"], ours, 0) == _fingerprint(released, theirs, 0)


@pytest.mark.parametrize("flags, message", [
    ([], "--env/--distribution: expected one or more tasks, got none"),
    (["--distribution", "maze"], "--distribution: unknown gridworld distribution 'maze'; expected one of ['all',"),
    (["--distribution", "all", "--distribution", "all"],
     "--env/--distribution: expected each task once, got ['all'] more than once"),
])
def test_evaluate_task_errors_name_the_flag(tmp_path, capsys, flags, message):
    assert main(["evaluate", *flags, "--optimizer", "adam", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"openrl evaluate: error: {message}")
    assert not (tmp_path / "out").exists()


def test_open_means_the_released_optimizer_and_untrained_says_so(tmp_path, capsys):
    from openrl.eval.commands import optimizer_from_spec
    from openrl.eval.evaluation import is_untrained

    label, released = optimizer_from_spec("open", envs=["Breakout-MinAtar"])
    assert label == "OPEN" and not is_untrained(released["Breakout-MinAtar"])
    label, untrained = optimizer_from_spec("open:untrained")
    assert label == "OPEN (untrained)" and is_untrained(untrained)
    assert optimizer_from_spec("no_features")[0] == "No Features (untrained)"
    assert main(["evaluate", "--env", "CartPole-v1", "--optimizer", "open", "--out", str(tmp_path)]) == 2
    assert "released no OPEN optimizer for ['CartPole-v1']; give open:untrained" in capsys.readouterr().err


def test_tuned_for_errors_name_the_flag(tmp_path, capsys):
    args = ["evaluate", "--env", "CartPole-v1", "--optimizer", "adam", "--out", str(tmp_path)]
    assert main(args + ["--tuned-for", "cartpole"]) == 2
    assert capsys.readouterr().err.startswith("openrl evaluate: error: --tuned-for: no tuned adam values for 'cartpole'")
    assert not any(tmp_path.iterdir())


def test_evaluating_an_all_zero_learned_optimizer_warns(tmp_path):
    from openrl.eval.evaluation import evaluate
    from openrl.meta import make_task

    task = make_task("CartPole-v1", PPOConfig.cartpole())
    (tmp_path / "file").write_text("")
    warning = pytest.warns(UserWarning, match=r"\['OPEN'\]: a learned optimizer whose meta-parameters are all zero")
    with warning, pytest.raises(FileExistsError):  # stops before training: the warning comes first
        evaluate({"OPEN": presets.open_(), "Adam": presets.adam()}, task, 1, out_dir=tmp_path / "file")


def test_the_reference_is_adam_whatever_its_label():
    from openrl.eval.evaluation import default_reference

    learned = presets.open_()
    # the quickstart's labels: the normaliser is Adam, not the first optimizer
    assert default_reference({"OPEN (learned)": learned, "Adam (tuned)": presets.adam()}) == "Adam (tuned)"
    assert default_reference({"OPEN": learned, "Adam (paper's values for breakout)": presets.adam()}).startswith("Adam")
    assert default_reference({"OPEN": learned, "mine": presets.adam()}) == "mine"  # by kind
    assert default_reference({"OPEN": learned, "Lion": presets.lion()}) == "OPEN"


def test_ablate_uses_the_environments_ppo_preset(tmp_path, monkeypatch, capsys):
    import openrl.eval.ablation

    seen = {}

    def fake_ablations(task, learner, out_dir, **kwargs):
        seen.update(task=task, learner=learner, **kwargs)
        return []

    monkeypatch.setattr(openrl.eval.ablation, "run_ablations", fake_ablations)
    assert main(["ablate", "--env", "CartPole-v1", "--ablation", "OPEN", "--out", str(tmp_path)]) == 0
    assert seen["task"].config == PPOConfig.cartpole()
    assert seen["learner"].population_size == 4 and seen["meta_config"].generations == 2
    assert "budget of meta-training: 1 trainings x 2 generations x 4 members" in capsys.readouterr().out
