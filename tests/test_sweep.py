"""Optuna sweeps of the handcrafted baselines: the paper's search spaces, batched trials, a resumable SQLite
study, pruning on the return curve, presets, killed sweeps and clear errors."""

import json
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest

from openrl.cli import main
from openrl.eval import sweep as sw
from openrl.meta.tasks import EnvTask
from openrl.optim import presets
from openrl.rl.ppo import PPOConfig

TESTS = __file__.rsplit("/", 1)[0]
sys.path.insert(0, TESTS)
from probe_envs import OneStepProbe  # noqa: E402

COMPLETE, PRUNED, RUNNING, FAIL = (optuna.trial.TrialState[s] for s in ("COMPLETE", "PRUNED", "RUNNING", "FAIL"))
TINY = dict(num_envs=8, num_steps=4, num_minibatches=2, num_epochs=1, width=8, depth=1)
CONSTANT = EnvTask(env=OneStepProbe("constant"), config=PPOConfig(total_timesteps=128, **TINY), name="probe-constant")
BANDIT = EnvTask(env=OneStepProbe("bandit"), name="probe-bandit",
                 config=PPOConfig(total_timesteps=8 * 16 * 30, num_envs=8, num_steps=16, num_minibatches=4, width=16))
TABLE_SPACE = {"asterix": "minatar", "freeway": "minatar", "breakout": "minatar", "space_invaders": "minatar",
               "ant": "ant", "gridworld": "gridworld"}


def test_search_spaces_are_the_papers_and_hold_its_tuned_values():
    for optimizer, table in presets.TUNED.items():
        for env, tuned in table.items():
            space = sw.search_space(optimizer, TABLE_SPACE[env])
            assert set(tuned) == {"learning_rate", "anneal", *space.decays}
            assert space.learning_rate[0] <= tuned["learning_rate"] <= space.learning_rate[1]
            assert all(low <= tuned[name] <= high for name, (low, high) in space.decays.items())
    assert sw.SPACES["ant"]["rmsprop"].learning_rate == (1e-4, 5e-3)
    assert sw.SPACES["minatar"]["lion"].learning_rate == (1e-4, 1e-3)
    assert [sw.SPACES[s]["adam"].seeds for s in ("minatar", "ant", "gridworld")] == [4, 4, 8]
    assert [sw.space_for(e) for e in ("SpaceInvaders-MinAtar", "ant")] == ["minatar", "ant"]
    fixed = optuna.trial.FixedTrial({"learning_rate": 0.002, "decay": 0.99, "anneal": False})
    assert sw.SPACES["minatar"]["rmsprop"].suggest(fixed) == ({"learning_rate": 0.002, "decay": 0.99}, False)


def test_each_trial_of_a_batch_trains_with_its_own_values(tmp_path):
    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    points = [(5e-5, True), (1e-3, False), (1e-3, True), (5e-5, False)]
    queued = optuna.create_study(storage=storage, study_name="bandit", direction="maximize")
    for learning_rate, anneal in points:
        queued.enqueue_trial({"learning_rate": learning_rate, "b1": 0.9, "b2": 0.99, "anneal": anneal})
    study = sw.run_sweep("adam", BANDIT, storage=storage, study_name="bandit", space="gridworld", n_trials=4,
                     batch_size=4, seeds=2, pruner="none")
    trials = study.trials
    assert [(t.params["learning_rate"], t.params["anneal"]) for t in trials] == points
    # On the bandit, Adam at 1e-3 learns to pull the paying arm within 30 iterations; at 5e-5 it stays near chance.
    for t in trials:
        assert t.state == COMPLETE and t.value == pytest.approx(np.mean(t.user_attrs["final_returns"]))
        assert (t.value > 0.95) if t.params["learning_rate"] == 1e-3 else (t.value < 0.7)
        assert sorted(t.intermediate_values) == [128 * (i + 1) for i in (0, 3, 6, 10, 13, 16, 19, 23, 26, 29)]


def test_study_resumes_without_losing_trials_and_prunes_on_the_curve(tmp_path):
    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    run = dict(storage=storage, space="minatar", batch_size=2, seeds=2)
    first = sw.run_sweep("lion", CONSTANT, n_trials=3, **run)
    # Every episode pays exactly 1, so every curve point and final return is 1 whatever the optimizer.
    assert [t.value for t in first.trials] == [1.0, 1.0, 1.0]
    assert all(t.intermediate_values == {32: 1.0, 64: 1.0, 96: 1.0, 128: 1.0} for t in first.trials)
    snapshot = [(t.number, t.params, t.value) for t in first.trials]

    again = sw.run_sweep("lion", CONSTANT, n_trials=2, **run)
    assert again.study_name == "lion-probe-constant" and len(again.trials) == 5
    assert [(t.number, t.params, t.value) for t in again.trials[:3]] == snapshot

    # Five completed trials whose curves lie at 2: from half of training (64 steps) the median (1.5) beats 1.
    template = again.trials[0]
    for _ in range(5):
        again.add_trial(optuna.trial.create_trial(params=template.params, distributions=template.distributions,
                                                  value=2.0, intermediate_values={32: 2.0, 64: 2.0, 96: 2.0, 128: 2.0}))
    pruned = sw.run_sweep("lion", CONSTANT, n_trials=1, **run).trials[-1]
    assert pruned.state == PRUNED and pruned.intermediate_values == {32: 1.0, 64: 1.0}

    with pytest.raises(ValueError, match=r"was run with different settings \(differs in \['seeds'\]\)"):
        sw.run_sweep("lion", CONSTANT, n_trials=1, **(run | {"seeds": 3}))


def test_cli_sweep_resumes_the_sqlite_study_and_writes_a_preset(tmp_path, capsys):
    name = "rmsprop-CartPole-v1"  # the default study name: optimizer-env
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    preset_path = tmp_path / "best.json"
    args = ["sweep", "--optimizer", "rmsprop", "--env", "CartPole-v1", "--space", "minatar", "--ppo", "cartpole",
            "--num-envs", "8", "--total-timesteps", "2048", "--seeds", "2", "--batch", "1", "--storage", url, "--preset", str(preset_path)]
    assert main(args + ["--n-trials", "2"]) == 0
    before = [(t.number, t.params, t.value) for t in optuna.load_study(study_name=name, storage=url).trials]
    assert main(args + ["--n-trials", "1"]) == 0
    study = optuna.load_study(study_name=name, storage=url)
    assert [(t.number, t.params, t.value) for t in study.trials[:2]] == before and len(study.trials) == 3
    assert "3 trials" in capsys.readouterr().out

    best = study.best_trial
    preset = json.loads(preset_path.read_text())
    assert preset["hyperparams"] == {"learning_rate": best.params["learning_rate"], "decay": best.params["decay"]}
    assert preset["anneal"] == best.params["anneal"] and preset["sweep"]["mean_final_return"] == best.value
    optimizer = presets.from_sweep(preset_path)
    assert optimizer.factory is presets.HANDCRAFTED["rmsprop"][0] and optimizer.anneal == best.params["anneal"]
    assert float(optimizer.hyperparams["learning_rate"]) == pytest.approx(best.params["learning_rate"])


LONG = dict(total_timesteps=2**21, **TINY)
KILLED_SWEEP = """
import sys
sys.path.insert(0, {tests!r})
from probe_envs import OneStepProbe
from openrl.eval.sweep import run_sweep
from openrl.meta.tasks import EnvTask
from openrl.rl.ppo import PPOConfig
task = EnvTask(env=OneStepProbe("constant"), config=PPOConfig(**{config!r}), name="probe-constant")
run_sweep("adam", task, storage={storage!r}, space="minatar", n_trials=100, batch_size=1, seeds=2)
"""


def _mid_trial(db) -> bool:
    """Two trials are complete and a running one has a heartbeat (read with sqlite3 alone)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            done = connection.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
            beating = connection.execute(
                "SELECT COUNT(*) FROM trials JOIN trial_heartbeats USING (trial_id) WHERE state = 'RUNNING'"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or locked by the sweep
        return False
    return done >= 2 and beating > 0


def test_killed_sweep_leaves_a_readable_study_that_retries_the_lost_trial(tmp_path):
    db = tmp_path / "sweep.db"
    url = f"sqlite:///{db}"
    script = KILLED_SWEEP.format(tests=TESTS, config=LONG, storage=url)
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 240
        while not _mid_trial(db):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    study = optuna.load_study(study_name="adam-probe-constant", storage=url)
    done = [t for t in study.trials if t.state == COMPLETE]
    assert len(done) >= 2 and all(t.value == 1.0 for t in done)
    [killed] = [t for t in study.trials if t.state == RUNNING]

    # Longer than the resuming sweep's grace period (2 x its 1 s heartbeat) plus one second, because
    # SQLite's CURRENT_TIMESTAMP, which Optuna's heartbeats use, has whole-second resolution.
    time.sleep(3.5)
    task = EnvTask(env=OneStepProbe("constant"), config=PPOConfig(**LONG), name="probe-constant")
    resumed = sw.run_sweep("adam", task, storage=url, space="minatar", n_trials=1, batch_size=1, seeds=2,
                       heartbeat_interval=1)
    assert resumed.trials[killed.number].state == FAIL
    [retry] = [t for t in resumed.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.state == COMPLETE and retry.params == killed.params and retry.value == 1.0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--optimizer": "sgd"}, "optimizer: expected one of ['adam', 'lion', 'rmsprop'], got 'sgd'"),
        ({"--env": "Pong-Atari"}, "env: the paper gives no search space for 'Pong-Atari'"),
        ({"--env": "Pong-Atari", "--space": "minatar"}, "unknown environment 'Pong-Atari'"),
        ({"--space": "gridworld"}, "optimizer: the paper tunes only ['adam'] on gridworld, got 'lion'"),
        ({"--n-trials": "0"}, "--n-trials: expected a positive integer, got 0"),
        ({"--batch": "-1"}, "--batch: expected a positive integer, got -1"),
        ({"--pruner": "hyperband"}, "--pruner: invalid choice: 'hyperband'"),
        ({"--storage": "sweeps.db"}, "storage: 'sweeps.db' is not a database URL"),
        ({"--storage": "sqlite://"}, "storage: 'sqlite://' is an in-memory database"),
        ({"--storage": "sqlite:///{tmp}/missing/sweeps.db"}, "missing' of 'sqlite:///"),
    ],
)
def test_bad_input_is_named_before_anything_is_written(tmp_path, capsys, change, message):
    values = {"--optimizer": "lion", "--env": "Breakout-MinAtar", "--storage": "sqlite:///{tmp}/sweeps.db",
              "--preset": "{tmp}/best.json"} | change
    args = ["sweep"] + [part.format(tmp=tmp_path) for item in values.items() for part in item]
    try:
        code = main(args)
    except SystemExit as parse_error:  # argparse refuses a malformed value itself
        code = parse_error.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_presets_from_sweep_refuse_other_files(tmp_path):
    path = tmp_path / "preset.json"
    path.write_text(json.dumps({"version": 1, "optimizer": "adam", "anneal": True, "hyperparams": {"lr": 0.1}}))
    with pytest.raises(ValueError, match=r"hyperparams: optax.adam takes no \['lr'\]"):
        presets.from_sweep(path)
    path.write_text(json.dumps({"optimizer": "adam"}))
    with pytest.raises(ValueError, match="is not a version-1 sweep preset written by `openrl sweep`"):
        presets.from_sweep(path)


def test_foreign_studies_and_bad_tasks_are_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    optuna.create_study(storage=storage, study_name="down", direction="minimize")
    optuna.create_study(storage=storage, study_name="foreign", direction="maximize").add_trial(
        optuna.trial.create_trial(value=1.0)
    )
    run = dict(storage=storage, space="minatar", n_trials=1)
    with pytest.raises(ValueError, match="study 'down' minimises"):
        sw.run_sweep("adam", CONSTANT, study_name="down", **run)
    with pytest.raises(ValueError, match="study 'foreign' here was not made by `openrl sweep`"):
        sw.run_sweep("adam", CONSTANT, study_name="foreign", **run)
    with pytest.raises(TypeError, match="task"):
        sw.run_sweep("adam", "probe-constant", **run)
