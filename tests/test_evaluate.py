"""A tiny evaluation writes every promised file, reuses stored runs, and rejects bad input."""

import datetime
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from PIL import Image

from openrl.eval import evaluation as evaluate_module
from openrl.eval import stats
from openrl.eval.evaluation import evaluate
from openrl.meta import EnvTask
from openrl.optim import presets
from openrl.rl.analysis import STAT_NAMES
from openrl.rl.ppo import PPOConfig

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from probe_envs import OneStepProbe  # noqa: E402

TASK = EnvTask(name="bandit", config=PPOConfig(total_timesteps=8 * 16 * 6, num_envs=8, num_steps=16,
                                               num_minibatches=2, width=8), env=OneStepProbe("bandit"))
OPTIMIZERS = {"Adam": presets.adam(), "Lion": presets.lion()}
PNGS = ("final_return_iqm.png", "normalised_aggregate.png", "returns.png", "dormancy.png", "cosine_similarity.png",
        "update_magnitude.png", "noise_magnitude.png")


def test_tiny_evaluation_writes_its_report_and_reuses_runs(tmp_path, monkeypatch):
    # A commit made after openrl was imported (a job queued behind another) does not rename its runs.
    monkeypatch.setattr(evaluate_module, "_code", lambda: "openrl 9.9.9, git committed-after-import")
    report = evaluate(OPTIMIZERS, TASK, seeds=3, out_dir=tmp_path, progress=False)
    assert {p.name for p in tmp_path.iterdir()} == {"results.jsonl", "summary.md", *PNGS}
    for png in PNGS:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / png).stat().st_size > 5000
        with Image.open(tmp_path / png) as image:
            pixels = np.asarray(image.convert("L"))
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 10  # drawn on, not blank
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted((r["optimizer"], r["seed"]) for r in rows) == sorted((o, s) for o in OPTIMIZERS for s in range(3))
    assert all(len(r["returns"]) == TASK.config.num_iterations for r in rows)
    assert all(set(r["stats"]) == set(STAT_NAMES) and len(r["stats"]["cosine_gradient"]) == TASK.config.num_iterations
               for r in rows)
    summary = (tmp_path / "summary.md").read_text()
    assert "| Adam |" in summary and "| Lion |" in summary
    # Each row names where and when it was trained, and the summary counts the runs per machine.
    assert {r["machine"] for r in rows} == {evaluate_module._machine()} and rows[0]["machine"].startswith("cpu, ")
    days = sorted({datetime.datetime.fromisoformat(r["finished"]).astimezone(datetime.timezone.utc).date().isoformat()
                   for r in rows})
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    assert {r["code"] for r in rows} == {evaluate_module._IMPORTED_CODE} and rows[0]["code"].startswith("openrl ")
    assert f"- {rows[0]['machine']}; {rows[0]['code']}: 6 runs, {when}" in summary.split("## Where the runs were trained")[1]
    # Adam is the reference: it normalises to an IQM of 1 on average; Lion's P(Lion > Adam) matches the stats.
    adam, lion = report.scores("Adam", "bandit"), report.scores("Lion", "bandit")
    poi = stats.probability_of_improvement(lion, adam)
    assert f"| Lion | {poi.estimate:.3g} [{poi.lower:.3g}, {poi.upper:.3g}] |" in summary
    assert f"| Adam | {stats.iqm(adam / adam.mean()):.3g} [" in summary.split("Normalised by Adam")[1]
    iqm = report.summary["Adam"]["iqm"]
    assert iqm.lower <= iqm.estimate <= iqm.upper

    def no_training(*args, **kwargs):
        raise AssertionError("stored runs were recomputed")

    monkeypatch.setattr(evaluate_module, "_train_seeds", no_training)
    again = evaluate(OPTIMIZERS, TASK, seeds=3, out_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.scores("Adam", "bandit"), report.scores("Adam", "bandit"))
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 6
    # Rows stored before runs named their code, or their machine, are still reused and counted as not recorded.
    (tmp_path / "results.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "code"}) + "\n"
                                                    for r in rows))
    evaluate(OPTIMIZERS, TASK, seeds=3, out_dir=tmp_path, progress=False)
    assert (f"- {rows[0]['machine']}; openrl version not recorded: 6 runs"
            in (tmp_path / "summary.md").read_text())
    (tmp_path / "results.jsonl").write_text("".join(
        json.dumps({k: v for k, v in r.items() if k not in ("machine", "finished", "code")}) + "\n" for r in rows))
    older = evaluate(OPTIMIZERS, TASK, seeds=3, out_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(older.scores("Lion", "bandit"), report.scores("Lion", "bandit"))
    assert "- not recorded (stored before runs named their machine): 6 runs" in (tmp_path / "summary.md").read_text()
    with pytest.raises(ValueError, match="holds runs of 'Adam' on 'bandit' made with other optimizer values"):
        evaluate({"Adam": presets.adam("asterix")}, TASK, seeds=3, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="holds runs of 'Adam' on 'bandit'"):
        evaluate(OPTIMIZERS, TASK, seeds=3, seed=1, out_dir=tmp_path, progress=False)


def test_evaluation_in_calls_of_fewer_seeds_keeps_each_call_and_resumes(tmp_path, monkeypatch):
    whole = evaluate({"Adam": presets.adam()}, TASK, seeds=3, progress=False)
    train_seeds, calls = evaluate_module._train_seeds, []

    def counted(task, optimizer, keys, mesh):
        calls.append(len(keys))
        if calls == [2, 2]:
            raise KeyboardInterrupt
        return train_seeds(task, optimizer, keys, mesh)

    monkeypatch.setattr(evaluate_module, "_train_seeds", counted)
    with pytest.raises(KeyboardInterrupt):
        evaluate({"Adam": presets.adam()}, TASK, seeds=3, out_dir=tmp_path, progress=False, seeds_per_call=2,
                 analysis=False)
    assert [json.loads(line)["seed"] for line in (tmp_path / "results.jsonl").read_text().splitlines()] == [0, 1]
    calls.clear()
    resumed = evaluate({"Adam": presets.adam()}, TASK, seeds=3, out_dir=tmp_path, progress=False, seeds_per_call=2,
                       analysis=False)
    assert calls == [2]  # only the call holding the missing seed, at the same batch shape
    # The same seeds give the same runs however they are batched, and the analysis does not change them.
    np.testing.assert_allclose(resumed.scores("Adam", "bandit"), whole.scores("Adam", "bandit"), rtol=1e-5)
    assert all(r.stats == {} for r in resumed.runs)
    assert not (tmp_path / "cosine_similarity.png").exists() and (tmp_path / "returns.png").exists()
    assert "cosine_similarity.png" not in (tmp_path / "summary.md").read_text()
    # The last call's extra seed is stored, so a larger evaluation at the same batch shape reuses it.
    assert sorted(json.loads(line)["seed"] for line in (tmp_path / "results.jsonl").read_text().splitlines()) == [
        0, 1, 2, 3]


def test_the_analysis_switch_reuses_stored_runs_and_the_batch_shape_does_not(tmp_path, monkeypatch):
    plain = evaluate({"Adam": presets.adam()}, TASK, seeds=2, out_dir=tmp_path, progress=False, analysis=False)
    # Asking for the analysis retrains the runs that lack it: the same numbers, now with the curves.
    recorded = evaluate({"Adam": presets.adam()}, TASK, seeds=2, out_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(recorded.scores("Adam", "bandit"), plain.scores("Adam", "bandit"))
    assert all(set(r.stats) == set(STAT_NAMES) for r in recorded.runs)
    assert (tmp_path / "cosine_similarity.png").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("stored runs were recomputed")

    monkeypatch.setattr(evaluate_module, "_train_seeds", no_training)
    again = evaluate({"Adam": presets.adam()}, TASK, seeds=2, out_dir=tmp_path, progress=False, analysis=False)
    assert all(set(r.stats) == set(STAT_NAMES) for r in again.runs)
    # Runs trained two seeds per call are not reused by an evaluation one seed per call.
    with pytest.raises(ValueError, match="trained 2 seeds per call.*pass seeds_per_call=2"):
        evaluate({"Adam": presets.adam()}, TASK, seeds=2, out_dir=tmp_path, progress=False, seeds_per_call=1)


def test_runs_name_the_openrl_that_trained_them(monkeypatch):
    checkout = pathlib.Path(evaluate_module.__file__).resolve().parents[2]
    version = evaluate_module.importlib.metadata.version("openrl")
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=checkout, capture_output=True, text=True,
                              check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "openrl"], cwd=checkout, capture_output=True,
                                 text=True, check=True).stdout.strip()
        expected = f"openrl {version}, git {head}" + (" with uncommitted changes to openrl/" if changed else "")
    except (OSError, subprocess.CalledProcessError):  # a copy of the package outside any git checkout
        expected = f"openrl {version}"
    assert evaluate_module._code() == expected
    # A package pip installed from a git URL names the commit pip recorded.
    direct_url = {"url": "https://example.org/openrl.git", "vcs_info": {"vcs": "git", "commit_id": "0123456789abcdef" * 2}}

    class FromGit:
        version = "9.9.9"

        def read_text(self, name):
            return json.dumps(direct_url) if name == "direct_url.json" else None

    monkeypatch.setattr(evaluate_module.importlib.metadata, "distribution", lambda name: FromGit())
    assert evaluate_module._code() == "openrl 9.9.9, git 0123456789ab"

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    # Without git, the version alone.
    direct_url = {"url": "file:///src/openrl", "dir_info": {"editable": True}}
    monkeypatch.setattr(evaluate_module.subprocess, "run", no_git)
    assert evaluate_module._code() == "openrl 9.9.9"

    def not_installed(name):
        raise evaluate_module.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(evaluate_module.importlib.metadata, "distribution", not_installed)
    assert evaluate_module._code() == "openrl (not installed)"


def test_bad_evaluation_input(tmp_path):
    with pytest.raises(ValueError, match="seeds: expected a positive int, got 0"):
        evaluate(OPTIMIZERS, TASK, seeds=0)
    with pytest.raises(ValueError, match="seeds_per_call: expected a positive int or None, got 0"):
        evaluate(OPTIMIZERS, TASK, seeds=2, seeds_per_call=0)
    # Our message; under the tests' runtime type checking (conftest), beartype's, naming the parameter.
    with pytest.raises(TypeError, match=r"tasks\[0\]: expected an openrl Task, got 'breakout'|parameter 'tasks'"):
        evaluate(OPTIMIZERS, ["breakout"], seeds=2)
    with pytest.raises(TypeError, match=r"optimizers\['Adam'\]: expected an openrl optimizer|parameter 'optimizers'"):
        evaluate({"Adam": "adam"}, TASK, seeds=2)
    with pytest.raises(ValueError, match=r"reference: 'Adamw' is not one of the optimizers \['Adam', 'Lion'\]"):
        evaluate(OPTIMIZERS, TASK, seeds=2, reference="Adamw")
    (tmp_path / "results.jsonl").write_text(json.dumps({"version": 0, "optimizer": "Adam"}) + "\n")
    with pytest.raises(ValueError, match="results.jsonl:1: results of format version 0, expected 4"):
        evaluate(OPTIMIZERS, TASK, seeds=2, out_dir=tmp_path, progress=False)
