"""`openrl quickstart`: meta-train OPEN from scratch on CartPole, then compare it with Adam."""

from __future__ import annotations

import os
import time

from openrl.eval.evaluation import evaluate
from openrl.meta import MetaConfig, OpenES, make_task, meta_train
from openrl.optim import presets
from openrl.optim.optimizer import OptaxOptimizer
from openrl.rl.ppo import PPOConfig

QUICKSTART_ADAM = dict(learning_rate=0.01, b1=0.9, b2=0.99, anneal=True)
"""Adam for the quickstart task: the paper's Breakout values, the best of our small grid on CartPole at 65k steps."""


def run_quickstart(out_dir: str, *, generations: int | None = None, population: int | None = None,
                   seeds: int | None = None, resume: bool = False) -> str:
    """Meta-train, evaluate on held-out seeds, print the table; returns the summary's path."""
    generations = 20 if generations is None else generations
    population = 16 if population is None else population
    seeds = 16 if seeds is None else seeds
    task = make_task("CartPole-v1", PPOConfig.cartpole())
    # From zero the first updates are ~1e-5: a larger step and sigma than the paper's 0.03 (Table 7)
    # make learning visible within minutes on a CPU.
    learner = OpenES(population_size=population, sigma_init=0.1, learning_rate=0.1)
    start = time.perf_counter()
    print(f"Meta-training OPEN from zero on CartPole-v1 ({task.config.total_timesteps} steps per run), "
          f"population {population}, {generations} generations")
    result = meta_train(learner, presets.open_(), task, MetaConfig(generations=generations, eval_every=5, eval_seeds=8),
                        out_dir=os.path.join(out_dir, "meta"), resume=resume)
    import optax

    adam = OptaxOptimizer(optax.adam, eps=presets.ADAM_EPS, **QUICKSTART_ADAM)
    print(f"Evaluating on {seeds} held-out seeds")
    report = evaluate({"OPEN (learned)": result.best, "OPEN (initial)": presets.open_(), "Adam (tuned)": adam},
                      task, seeds, seed=12345, out_dir=os.path.join(out_dir, "eval"))
    print(report.table())
    print(f"\nwall time {time.perf_counter() - start:.0f} s; report: {out_dir}/eval/summary.md, returns.png; "
          f"meta-training curve: {out_dir}/meta/fitness.png")
    return os.path.join(out_dir, "eval", "summary.md")
