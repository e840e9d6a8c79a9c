"""Our OPEN is the paper's OPEN: the released Breakout weights versus tuned Adam, IQM with 95% CIs."""

import pathlib

import pytest

import openrl as orl
from openrl.meta import make_task

WEIGHTS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "pretrained" / "breakout_OPEN.npy"


@pytest.mark.timeout(6 * 3600)
@pytest.mark.parametrize("total_timesteps", [500_000, 10_000_000])
def test_pretrained_breakout_versus_adam(record, budget, seeds, total_timesteps, tmp_path):
    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} not found: the released weights live in ../shared/pretrained/")
    total = int(total_timesteps * budget)
    task = make_task("Breakout-MinAtar", orl.PPOConfig.minatar(total_timesteps=total))
    report = orl.evaluate({"OPEN (released)": orl.load_pretrained(WEIGHTS), "Adam (tuned)": orl.presets.adam("breakout")},
                          task, seeds=seeds or 16, out_dir=pathlib.Path(__file__).parent / "results" / f"fidelity_{total}",
                          seeds_per_call=4, analysis=False)
    numbers = {"total_timesteps": total, "seeds": seeds or 16}
    for name, intervals in report.summary.items():
        i = intervals["iqm"]
        numbers[f"{name} IQM"] = f"{i.estimate:.1f} [{i.lower:.1f}, {i.upper:.1f}]"
    record(f"fidelity_breakout_{total}", numbers)
    print(report.table())
