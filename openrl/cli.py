"""`openrl ...`: the only place names become objects."""

from __future__ import annotations

import argparse
import os
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
    target = meta.add_mutually_exclusive_group(required=True)
    target.add_argument("--env", help="environment name (see `openrl envs`)")
    target.add_argument("--distribution", help="gridworld distribution: a new task per run, antithetic pairs sharing "
                                               "one (e.g. all, the paper's; see openrl.meta.suites.GRIDWORLDS)")
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

    sweep = commands.add_parser("sweep", help="tune Adam, RMSprop or Lion with Optuna (paper Appendix C.2)")
    sweep.add_argument("--optimizer", required=True, help="adam, rmsprop or lion")
    sweep.add_argument("--env", required=True, help="environment name (see `openrl envs`)")
    sweep.add_argument("--storage", required=True, help="Optuna database URL, e.g. sqlite:///sweeps.db")
    sweep.add_argument("--study", default=None, help="study name (default: OPTIMIZER-ENV); resumed if it exists")
    sweep.add_argument("--n-trials", type=int, default=16, help="trials to add to the study")
    sweep.add_argument("--batch", type=int, default=4, help="trials trained per compiled call")
    sweep.add_argument("--space", default=None, help="search space: minatar, ant or gridworld (default: from --env)")
    sweep.add_argument("--ppo", default=None, choices=["minatar", "ant", "gridworld", "cartpole"],
                       help="PPO preset (default: the search space's)")
    sweep.add_argument("--total-timesteps", type=_positive_int, default=None, help="environment steps per run")
    sweep.add_argument("--seeds", type=int, default=None, help="runs per trial (default: 4; 8 on gridworld)")
    sweep.add_argument("--pruner", default="median", help="median or none")
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--preset", default=None, help="where to write the best values (default: STUDY.json)")

    from openrl.eval.commands import add_commands

    add_commands(commands)
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
        elif args.command == "sweep":
            _sweep(args)
        elif args.command in ("evaluate", "ablate", "deep-sea"):
            from openrl.eval.commands import run_command

            run_command(args)
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
    from openrl.meta import MetaConfig, OpenES, make_task, meta_train, suites
    from openrl.rl.ppo import PPOConfig

    overrides = {} if args.total_timesteps is None else {"total_timesteps": args.total_timesteps}
    config = getattr(PPOConfig, args.ppo)(**overrides)
    learner = OpenES(population_size=args.population, sigma_init=args.sigma, sigma_decay=args.sigma_decay,
                     learning_rate=args.lr, lr_decay=args.lr_decay)
    optimizer = learned_optimizer(args.optimizer, args.head)
    if args.distribution is not None:
        task = suites.gridworld_task(args.distribution, config)
    else:
        task = make_task(args.env, config)
    meta_config = MetaConfig(generations=args.generations, seed=args.seed, num_rollouts=args.rollouts,
                             eval_every=args.eval_every, eval_seeds=args.eval_seeds,
                             checkpoint_every=args.checkpoint_every)
    result = meta_train(learner, optimizer, task, meta_config, out_dir=args.out, resume=args.resume)
    best = max((r for r in result.history if "validation" in r), key=lambda r: r["validation"], default=None)
    if best is not None:
        print(f"best validated generation: {best['generation']} (mean final return {best['validation']:.2f})")
    print(f"wrote {args.out}/best.eqx, metrics.jsonl, fitness.png")


def _sweep(args: argparse.Namespace) -> None:
    from openrl.eval.sweep import default_study_name, run_sweep, search_space, space_for, write_preset
    from openrl.meta import make_task
    from openrl.rl.ppo import PPOConfig

    space = space_for(args.env) if args.space is None else args.space
    search_space(args.optimizer, space)
    study_name = args.study or default_study_name(args.optimizer, args.env)
    preset_path = args.preset or f"{study_name}.json"
    if not os.path.isdir(os.path.dirname(os.path.abspath(preset_path))):
        raise ValueError(f"--preset: the directory of {preset_path!r} does not exist")
    overrides = {} if args.total_timesteps is None else {"total_timesteps": args.total_timesteps}
    config = getattr(PPOConfig, args.ppo or space)(**overrides)
    study = run_sweep(args.optimizer, make_task(args.env, config), storage=args.storage, n_trials=args.n_trials,
                      space=space, study_name=study_name, batch_size=args.batch, seeds=args.seeds, seed=args.seed,
                      pruner=args.pruner)
    preset = write_preset(study, preset_path)
    print(f"study {study_name!r}: {len(study.trials)} trials; best mean final return "
          f"{preset['sweep']['mean_final_return']:.2f} with {preset['hyperparams']}, anneal={preset['anneal']}")
    print(f"wrote {preset_path} (load it with openrl.presets.from_sweep)")


if __name__ == "__main__":
    sys.exit(main())
