"""Every baseline of the paper on Breakout-MinAtar: final-return IQM with 95% CIs, and wall time relative to Adam.

`pytest benchmarks/test_baselines.py --budget 1 --seeds 16` trains for 1e5 x budget steps per seed.
Optim4RL and No Features have no released weights, so they run at their initialisation (Optim4RL:
sign descent at 0.1 x Adam's rate; No Features: all-zero, i.e. no update). VeLO's returns need the
published checkpoint (path in `OPENRL_VELO_CHECKPOINT`, see `openrl.optim.velo`); without it only its
wall time is measured, with random weights of the published size (speed does not depend on the weights).

Asserted: every IQM is finite; OPEN runs faster than VeLO ("a significant speedup over VeLO",
paper Appendix J.1); and at the default length (`--budget 1`, 1e5 steps) tuned Adam, RMSprop and
Lion and the released OPEN learn: the lower end of each one's IQM CI is above the upper end of the
untrained No Features optimizer's, which makes no update.
"""

import math
import os
import time

import jax
import pytest

from openrl.eval import evaluate
from openrl.meta import make_task
from openrl.optim import load_pretrained, presets
from openrl.optim.velo import VeLO, init_theta, load_velo
from openrl.rl.ppo import PPOConfig


def timed_evaluate(name, optimizer, task, seeds):
    """The evaluation report, and the seconds of a second, already compiled, identical evaluation."""
    report = evaluate({name: optimizer}, task, seeds, progress=False)
    start = time.perf_counter()
    evaluate({name: optimizer}, task, seeds, progress=False)
    return report, time.perf_counter() - start


@pytest.mark.timeout(7200)
def test_baselines_on_breakout(record, budget, seeds):
    seeds = seeds or 16
    config = PPOConfig.minatar(total_timesteps=int(100_000 * budget))
    task = make_task("Breakout-MinAtar", config)
    optimizers = {
        "Adam": presets.adam("breakout"), "RMSprop": presets.rmsprop("breakout"), "Lion": presets.lion("breakout"),
        "No Features (untrained)": presets.no_features(), "Optim4RL (initialisation)": presets.optim4rl("breakout"),
        "OPEN (pretrained)": load_pretrained("breakout"),
    }
    skipped = {}
    velo_path = os.environ.get("OPENRL_VELO_CHECKPOINT")
    if velo_path:
        optimizers["VeLO"] = load_velo(velo_path)
    else:
        skipped["VeLO"] = "no checkpoint (set OPENRL_VELO_CHECKPOINT); timed with random published-size weights"
    rows, seconds, iqms = [], {}, {}
    for name, optimizer in optimizers.items():
        report, seconds[name] = timed_evaluate(name, optimizer, task, seeds)
        rows.append(report.table().splitlines()[-1])
        iqms[name] = report.summary[name]["iqm"]
    if not velo_path:
        _, seconds["VeLO (random weights)"] = timed_evaluate("VeLO", VeLO(init_theta(jax.random.key(0))), task, seeds)
    table = "\n".join(["| optimizer | IQM [95% CI] | mean [95% CI] | median [95% CI] |", "|---|---|---|---|", *rows])
    relative = {name: round(s / seconds["Adam"], 2) for name, s in seconds.items()}
    print(f"\nBreakout-MinAtar, {config.total_timesteps} steps x {seeds} seeds\n{table}\nwall time / Adam: {relative}")
    record("baselines_breakout", {
        "steps_per_seed": config.total_timesteps, "seeds": seeds, "table": table,
        "seconds": {name: round(s, 2) for name, s in seconds.items()}, "time_relative_to_adam": relative,
        "skipped": skipped,
    })
    assert all(s > 0 for s in seconds.values())
    assert all(math.isfinite(i.estimate) for i in iqms.values()), iqms
    velo = seconds.get("VeLO", seconds.get("VeLO (random weights)"))
    assert velo > seconds["OPEN (pretrained)"], f"VeLO ({velo:.1f} s) should be slower than OPEN (paper J.1)"
    if config.total_timesteps >= 100_000:
        floor = iqms["No Features (untrained)"].upper
        behind = {n: f"{iqms[n].lower:.2f}" for n in ("Adam", "RMSprop", "Lion", "OPEN (pretrained)")
                  if not iqms[n].lower > floor}
        assert not behind, f"IQM CI not above the no-update baseline's ({floor:.2f}): {behind}"
