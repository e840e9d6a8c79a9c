"""One process of a multi-process test run (tests/test_distributed.py): meta-train a small task, then evaluate.

`python distributed_worker.py --out DIR --result FILE [--evaluate-out DIR] [--die-at G] [distributed flags]`.
Every process saves what it computed to its own `--result` file (NumPy .npz) for the test to compare.
"""

import argparse
import itertools
import os
import signal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from openrl import distributed
from openrl.meta import MetaConfig, OpenES, Task
from openrl.optim import presets
from openrl.rl.agent import ActorCritic
from openrl.rl.ppo import PPOConfig, TrainResult
from openrl.tracking import Logger

LEARNER = OpenES(population_size=4, sigma_init=0.5, learning_rate=0.05)
EVALUATION_SEEDS = 5
"""Not a multiple of two devices: the last device's shard is padded."""


def config(generations: int) -> MetaConfig:
    return MetaConfig(generations=generations, eval_every=1, eval_seeds=2, checkpoint_every=1)


class NoisyQuadratic(Task):
    """Return -(mean of (theta - 0.5)^2) over the optimizer's arrays plus noise from the run's key; no PPO, so it
    compiles in seconds and every member and seed gets a distinct return."""

    name: str = eqx.field(static=True, default="noisy-quadratic")
    config: PPOConfig = PPOConfig(total_timesteps=64, num_envs=4, num_steps=16, num_minibatches=1)

    def sample(self, key):
        return jnp.zeros(())

    def run(self, optimizer, env, key):
        theta = jax.flatten_util.ravel_pytree(eqx.filter(optimizer, eqx.is_inexact_array))[0]
        value = -jnp.mean((theta - 0.5) ** 2) + 0.1 * jax.random.normal(key) + env
        iterations = self.config.num_iterations
        agent = ActorCritic(1, 2, discrete=True, width=2, depth=1, key=jax.random.key(0))
        return TrainResult(agent=agent, opt_state=None, returns=value + jnp.arange(iterations, dtype=jnp.float32),
                           dormancy=jnp.zeros(iterations), final_return=value, stats={})


class Announce(Logger):
    """Prints each finished generation (only process 0 gets loggers called)."""

    def log(self, metrics, step):
        print(f"generation {step} done", flush=True)

    def close(self):
        pass


def die_at(generation: int) -> None:
    """SIGKILL this process as it starts `generation` (1-based), after the previous generation's checkpoint."""
    from openrl.meta import train

    original, calls = train._generation, itertools.count(1)

    def dying(*args, **kwargs):
        if next(calls) == generation:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    train._generation = dying


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die-at", type=int, default=None)
    parser.add_argument("--evaluate-out", default=None)
    distributed.add_arguments(parser)
    args = parser.parse_args()
    distributed.initialize_from_args(args)
    from openrl.eval.evaluation import evaluate
    from openrl.meta import meta_train

    if args.die_at is not None:
        die_at(args.die_at)
    result = meta_train(LEARNER, presets.no_features(), NoisyQuadratic(), config(args.generations), out_dir=args.out,
                        resume=args.resume, progress=False, loggers=[Announce()])
    arrays = {"fitness": [r["fitness_mean"] for r in result.history],
              **{f"final{i}": x for i, x in enumerate(jax.tree.leaves(eqx.filter(result.final, eqx.is_array)))}}
    if args.evaluate_out:
        report = evaluate({"nf": result.final}, NoisyQuadratic(), EVALUATION_SEEDS, out_dir=args.evaluate_out,
                          progress=False)
        arrays["returns"] = report.scores("nf", "noisy-quadratic")
    np.savez(args.result, **{k: np.asarray(v) for k, v in arrays.items()})
    print(f"process {jax.process_index()} of {jax.process_count()} finished", flush=True)


if __name__ == "__main__":
    main()
