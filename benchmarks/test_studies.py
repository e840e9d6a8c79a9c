"""The paper's Section 7 studies at a budget one machine affords: ablations (Figure 5) and Deep Sea (Figures 6, 17).

`--budget` scales the environment steps per run; the numbers of optimizers, generations and seeds
stay small (the paper's: 17 x 250 generations x 64 seeds; 48 generations x 128 seeds).

Asserted, the paper's claims as far as such short meta-training can show them:
- ablations (Figure 5: every part of OPEN helps): no ablation is significantly better than full
  OPEN, i.e. each one's return-IQM CI starts below the top of OPEN's; every interval is finite and
  contains its estimate, and dormancy is a fraction;
- Deep Sea (Figure 6: learned noise helps exploration): learned noise is not significantly worse at
  any size (each improvement CI reaches 0 or above), and every IQM lies within Deep Sea's returns,
  [-0.01, 0.99].
"""

import math
import pathlib

import pytest

from openrl.eval.ablation import run_ablations
from openrl.eval.deep_sea import deep_sea_config, deep_sea_study
from openrl.meta import MetaConfig, OpenES, make_task
from openrl.rl.ppo import PPOConfig

RESULTS = pathlib.Path(__file__).parent / "results"


@pytest.mark.timeout(4 * 3600)
def test_ablations_on_short_breakout(record, budget, seeds):
    total = int(65_536 * budget)
    task = make_task("Breakout-MinAtar", PPOConfig.minatar(total_timesteps=total))
    rows = run_ablations(task, OpenES(population_size=8), RESULTS / f"ablation_{total}", num_optimizers=2,
                         meta_config=MetaConfig(generations=8, eval_every=0), seeds=seeds or 8)
    record(f"ablation_breakout_{total}", {
        row.name: f"return IQM {row.return_iqm.estimate:.2f} [{row.return_iqm.lower:.2f}, {row.return_iqm.upper:.2f}], "
                  f"dormancy {row.dormancy.estimate:.3f}"
        for row in rows
    })
    for row in rows:
        for interval in (row.return_iqm, row.dormancy):
            assert all(map(math.isfinite, (interval.lower, interval.estimate, interval.upper))), row
            assert interval.lower <= interval.estimate <= interval.upper, row
        assert 0.0 <= row.dormancy.estimate <= 1.0, row
    (full,) = [row for row in rows if row.name == "OPEN"]
    better = [row.name for row in rows if row.return_iqm.lower > full.return_iqm.upper]
    assert not better, f"significantly better than full OPEN (paper Figure 5 says every part helps): {better}"


@pytest.mark.timeout(4 * 3600)
def test_deep_sea_learned_noise(record, budget, seeds):
    total = int(32_768 * budget)
    study = deep_sea_study(OpenES(population_size=8), RESULTS / f"deep_sea_{total}", config=deep_sea_config(total),
                           meta_config=MetaConfig(generations=8, eval_every=0), seeds=seeds or 16)
    record(f"deep_sea_{total}", {
        f"size {size}": f"IQM gain of learned noise {gain.estimate:.3f} [{gain.lower:.3f}, {gain.upper:.3f}]"
        for size, gain in zip(study.sizes, study.improvement)
    })
    for name, intervals in study.iqm.items():
        for size, interval in zip(study.sizes, intervals):
            assert -0.01 - 1e-6 <= interval.estimate <= 0.99 + 1e-6, (name, size, interval)
    worse = {size: f"{gain.upper:.3f}" for size, gain in zip(study.sizes, study.improvement) if gain.upper < 0}
    assert not worse, f"learned noise significantly worse than none at sizes {worse} (paper Figure 6)"
