"""`openrl ...`: the only place names become objects."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openrl", description="Learned optimization for reinforcement learning.")
    commands = parser.add_subparsers(dest="command", required=True)

    quick = commands.add_parser("quickstart", help="meta-train OPEN on a small task, then compare it with Adam")
    quick.add_argument("--out", default="runs/quickstart", help="output directory (default: runs/quickstart)")
    quick.add_argument("--generations", type=_positive_int, default=None, help="ES generations (default: preset's)")
    quick.add_argument("--population", type=_positive_int, default=None, help="population size (even)")
    quick.add_argument("--seeds", type=_positive_int, default=None, help="held-out evaluation seeds")
    quick.add_argument("--resume", action="store_true", help="continue an interrupted quickstart in --out")

    meta = commands.add_parser("meta-train", help="meta-train a learned optimizer with OpenAI-ES")
    meta.add_argument("--env", required=True, help="environment name (see `openrl envs`)")
    meta.add_argument("--ppo", default="minatar", choices=["minatar", "ant", "gridworld", "cartpole"],
                      help="PPO preset (paper Table 3, or the quickstart's cartpole)")
    meta.add_argument("--total-timesteps", type=_positive_int, default=None, help="environment steps per run")
    meta.add_argument("--optimizer", default="open",
                      help="learned optimizer preset (open, no_features, ...) or a comma-separated feature list")
    meta.add_argument("--head", default="StochasticHead", help="update head, with a feature list")
    meta.add_argument("--population", type=_positive_int, default=16)
    meta.add_argument("--generations", type=_positive_int, default=20)
    meta.add_argument("--sigma", type=_positive_float, default=0.03, help="initial ES sigma")
    meta.add_argument("--sigma-decay", type=_positive_float, default=0.999)
    meta.add_argument("--lr", type=_positive_float, default=0.03, help="ES learning rate (Adam on the mean)")
    meta.add_argument("--lr-decay", type=_positive_float, default=0.999)
    meta.add_argument("--rollouts", type=_positive_int, default=1, help="training runs averaged per member")
    meta.add_argument("--eval-every", type=int, default=5, help="validate every N generations (0: never)")
    meta.add_argument("--eval-seeds", type=_positive_int, default=4)
    meta.add_argument("--checkpoint-every", type=_positive_int, default=5)
    meta.add_argument("--seed", type=int, default=0)
    meta.add_argument("--out", required=True, help="output directory")
    meta.add_argument("--resume", action="store_true", help="continue the run in --out")

    commands.add_parser("plugins", help="list installed features, heads, optimizers, meta-learners and envs")
    commands.add_parser("envs", help="list registered environments")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "quickstart":
            from openrl.quickstart import run_quickstart

            run_quickstart(args.out, generations=args.generations, population=args.population, seeds=args.seeds,
                           resume=args.resume)
        elif args.command == "meta-train":
            _meta_train(args)
        elif args.command == "plugins":
            from openrl.plugins import format_plugins

            print(format_plugins())
        elif args.command == "envs":
            from openrl.rl import envs

            print("\n".join(envs.names()))
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as error:
        print(f"openrl {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


def learned_optimizer(spec: str, head: str):
    """A learned optimizer from a registered preset name or a comma-separated list of feature names."""
    from openrl import plugins

    if "," not in spec and spec in plugins.available("openrl.optimizers"):
        return plugins.load("openrl.optimizers", spec)()
    from openrl.optim.optimizer import Optimizer

    features = [plugins.load("openrl.features", name.strip())() for name in spec.split(",") if name.strip()]
    return Optimizer(features, plugins.load("openrl.heads", head)())


def _meta_train(args: argparse.Namespace) -> None:
    from openrl.meta import MetaConfig, OpenES, make_task, meta_train
    from openrl.rl.ppo import PPOConfig

    overrides = {} if args.total_timesteps is None else {"total_timesteps": args.total_timesteps}
    config = getattr(PPOConfig, args.ppo)(**overrides)
    learner = OpenES(population_size=args.population, sigma_init=args.sigma, sigma_decay=args.sigma_decay,
                     learning_rate=args.lr, lr_decay=args.lr_decay)
    optimizer = learned_optimizer(args.optimizer, args.head)
    task = make_task(args.env, config)
    meta_config = MetaConfig(generations=args.generations, seed=args.seed, num_rollouts=args.rollouts,
                             eval_every=args.eval_every, eval_seeds=args.eval_seeds,
                             checkpoint_every=args.checkpoint_every)
    result = meta_train(learner, optimizer, task, meta_config, out_dir=args.out, resume=args.resume)
    best = max((r for r in result.history if "validation" in r), key=lambda r: r["validation"], default=None)
    if best is not None:
        print(f"best validated generation: {best['generation']} (mean final return {best['validation']:.2f})")
    print(f"wrote {args.out}/best.eqx, metrics.jsonl, fitness.png")


if __name__ == "__main__":
    sys.exit(main())
