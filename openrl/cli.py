"""`openrl ...`: the only place names become objects."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Sequence

from openrl import distributed
from openrl.shell import (
    RECORD,
    HelpFormatter,
    Invocation,
    UserError,
    add_config_flag,
    add_learner_flags,
    add_logger_flag,
    add_meta_flags,
    add_ppo_flags,
    apply_record,
    config_dict,
    open_loggers,
    positive_int,
    print_budget,
    read_record,
    resolve_learner,
    resolve_meta,
    resolve_ppo,
    user_input,
)

META_TRAIN_LEARNER = {"population_size": 16}
"""`openrl meta-train`'s value for a learner field without a class default."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openrl", description="Learned optimization for reinforcement learning.")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=functools.partial(argparse.ArgumentParser,
                                                                    formatter_class=HelpFormatter))

    quick = commands.add_parser("quickstart", help="meta-train OPEN on a small task, then compare it with Adam")
    quick.add_argument("--out", default="runs/quickstart", help="output directory (default: runs/quickstart)")
    quick.add_argument("--generations", type=positive_int, default=None, help="ES generations (default: preset's)")
    quick.add_argument("--population", type=positive_int, default=None, help="population size (even)")
    quick.add_argument("--seeds", type=positive_int, default=None, help="held-out evaluation seeds")
    quick.add_argument("--resume", action="store_true", help="continue an interrupted quickstart in --out")
    quick.add_argument("--env", default="CartPole-v1", help="environment to meta-train and compare on")
    quick.add_argument("--total-timesteps", type=positive_int, default=None,
                       help="environment steps per run (default: 32768 on CartPole-v1, else the PPO preset's)")
    quick.add_argument("--adam", default=None, help="Adam preset written by `openrl sweep` at exactly this task and "
                                                    "budget (default: the shipped one for CartPole-v1 at 32768 steps)")
    add_config_flag(quick)

    meta = commands.add_parser("meta-train", help="meta-train a learned optimizer with an evolution strategy")
    target = meta.add_mutually_exclusive_group(required=True)
    target.add_argument("--env", action="append",
                        help="environment name (see `openrl envs`); repeat it to meta-train on several at once, "
                             "ranked by the mean of returns divided by tuned Adam's (paper Section 5.2)")
    target.add_argument("--distribution", help="gridworld distribution: a new task per run, antithetic pairs sharing "
                                               "one (e.g. all, the paper's; see openrl.meta.suites.GRIDWORLDS)")
    add_ppo_flags(meta)
    meta.add_argument("--optimizer", default="open",
                      help="learned optimizer to meta-train: a preset (open, no_features, ...: see `openrl plugins`) "
                           "or a comma-separated feature list")
    meta.add_argument("--head", default=None, help="update head of a feature list (default: StochasticHead); "
                                                   "an error with a preset, which has its own")
    meta.add_argument("--init", default=None,
                      help="start the search from this optimizer: a released OPEN (see `openrl pretrained`), a "
                           ".npy weights file or a saved optimizer (e.g. a run's best.eqx) instead of --optimizer")
    meta.add_argument("--normaliser", action="append", default=[], metavar="ENV=VALUE",
                      help="with several --env: ENV's return that counts as 1 (default: tuned Adam's mean final "
                           "return, measured once and stored in OUT/normalisers.json)")
    add_learner_flags(meta, defaults=META_TRAIN_LEARNER)
    add_meta_flags(meta)
    meta.add_argument("--out", required=True, help="output directory")
    meta.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_logger_flag(meta)
    add_config_flag(meta)
    distributed.add_arguments(meta)

    sweep = commands.add_parser("sweep", help="tune Adam, RMSprop or Lion with Optuna (paper Appendix C.2)")
    sweep.add_argument("--optimizer", required=True, help="adam, rmsprop or lion")
    sweep.add_argument("--env", required=True, help="environment name (see `openrl envs`)")
    sweep.add_argument("--storage", required=True, help="Optuna database URL, e.g. sqlite:///sweeps.db")
    sweep.add_argument("--study", default=None, help="study name (default: OPTIMIZER-ENV); resumed if it exists")
    sweep.add_argument("--n-trials", type=positive_int, default=16, help="trials to add to the study")
    sweep.add_argument("--batch", type=positive_int, default=4, help="trials trained per compiled call")
    sweep.add_argument("--space", default=None, help="search space: minatar, ant, gridworld or cartpole "
                                                     "(default: from --env)")
    add_ppo_flags(sweep)
    sweep.add_argument("--seeds", type=positive_int, default=None, help="runs per trial (default: 4; 8 on gridworld)")
    sweep.add_argument("--pruner", default="median", choices=["median", "none"],
                       help="stop trials whose return falls below the median of earlier trials' at the same step")
    sweep.add_argument("--seed", type=int, default=0, help="seed of the sampler and of the runs' keys")
    sweep.add_argument("--preset", default=None, help="where to write the best values (default: STUDY.json)")
    distributed.add_arguments(sweep)

    from openrl.eval.commands import add_commands

    add_commands(commands)
    commands.add_parser("plugins", help="list installed features, heads, optimizers, meta-learners and envs")
    commands.add_parser("envs", help="list registered environments")
    commands.add_parser("pretrained", help="list the paper's released OPEN optimizers: what each was trained on, "
                                           "its tuned Adam and Adam normaliser (use with --optimizer OPEN=NAME)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `openrl ARGV`; bad input (a `UserError`, or a file that is missing or in the way) is one line on
    stderr and exit code 2, anything else (a bug) keeps its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command = argv[0] if argv else None
    try:
        replayed = _replay(parser, argv)
        args = parser.parse_args(argv)
        run = Invocation(args, argv, replayed)
        if hasattr(args, "coordinator"):  # before anything starts JAX
            with user_input():
                distributed.initialize_from_args(args)
        if args.command == "quickstart":
            from openrl.quickstart import run_quickstart

            flags = {"env": "--env", "name": "--env", "adam": "--adam", "population_size": "--population",
                     "generations": "--generations", "total_timesteps": "--total-timesteps"}
            with user_input(flags, only_named=True):
                run_quickstart(args.out, env=args.env, total_timesteps=args.total_timesteps, adam=args.adam,
                               generations=args.generations, population=args.population, seeds=args.seeds,
                               resume=args.resume)
            run.finish(args.out, {})
        elif args.command == "meta-train":
            _meta_train(run)
        elif args.command == "sweep":
            _sweep(args)
        elif args.command in ("evaluate", "ablate", "deep-sea"):
            from openrl.eval.commands import run_command

            run_command(run)
        elif args.command == "plugins":
            from openrl.plugins import format_plugins

            print(format_plugins())
        elif args.command == "envs":
            from openrl.rl import envs

            print("\n".join(envs.names()))
        elif args.command == "pretrained":
            from openrl.optim.pretrained import format_released

            print(format_released())
    except (UserError, FileExistsError, FileNotFoundError) as error:
        print(f"openrl {command}: error: {error}", file=sys.stderr)
        return 2
    return 0


def _replay(parser: argparse.ArgumentParser, argv: list[str]) -> dict | None:
    """With `--config FILE`, the recorded run's arguments become the command's defaults; returns the record."""
    paths = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    paths += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if not paths or not argv or argv[0] not in subparsers:
        return None
    record = read_record(paths[-1], argv[0])
    apply_record(subparsers[argv[0]], record)
    return record


def learned_optimizer(spec: str, head: str | None = None):
    """A learned optimizer from a registered preset name or a comma-separated list of feature names with
    `head` (default: StochasticHead); a head given with a preset is an error (a preset has its own)."""
    from openrl import plugins

    if "," not in spec and spec in plugins.available("openrl.optimizers"):
        if head is not None:
            raise ValueError(f"head: {head!r} applies only to a feature list; the preset {spec!r} has its own head")
        return plugins.load("openrl.optimizers", spec)()
    from openrl.optim.optimizer import Optimizer

    features = [plugins.load("openrl.features", name.strip())() for name in spec.split(",") if name.strip()]
    return Optimizer(features, plugins.load("openrl.heads", head or "StochasticHead")())


def _normalisers(given: list[str], envs: list[str]) -> dict[str, float]:
    """`--normaliser ENV=VALUE` flags as a mapping, checked against the `--env` flags."""
    values = {}
    for text in given:
        env, sep, value = text.partition("=")
        try:
            values[env] = float(value) if sep else float("nan")
        except ValueError:
            values[env] = float("nan")
        if not values[env] > 0:
            raise UserError(f"--normaliser: expected ENV=VALUE with a positive VALUE, got {text!r}")
    if values and len(envs) < 2:
        raise UserError("--normaliser: applies only when meta-training on several --env")
    unknown = sorted(set(values) - set(envs))
    if unknown:
        raise UserError(f"--normaliser: {unknown} are not among the --env flags {envs}")
    return values


def _warm_start(args: argparse.Namespace):
    """`--init`: a released OPEN by name, a .npy weights file, or an optimizer saved with `openrl.save`."""
    from openrl.optim.pretrained import load_pretrained
    from openrl.optim.saving import load

    if args.optimizer != "open" or args.head is not None:
        raise UserError("--init: the optimizer to start from has its own architecture; drop --optimizer/--head")
    source = args.init
    if os.path.isfile(source) and not source.endswith(".npy"):
        return load(source)
    return load_pretrained(source)


def _meta_train(run: Invocation) -> None:
    from openrl.eval.plots import plot_fitness
    from openrl.meta import MultiTask, make_task, meta_train, resumable, suites
    from openrl.meta.checkpoint import CheckpointError
    from openrl.meta.tasks import NORMALISERS, adam_normalisers

    args = run.args
    envs = args.env or []
    config = resolve_ppo(args, envs[0] if envs else "gridworld")
    learner = resolve_learner(args, META_TRAIN_LEARNER)
    meta_config = resolve_meta(args)
    normalisers = _normalisers(args.normaliser, envs)
    with user_input({"spec": "--optimizer", "head": "--head", "name": "--env", "source": "--init"}):
        optimizer = learned_optimizer(args.optimizer, args.head) if args.init is None else _warm_start(args)
        tasks = [make_task(env, resolve_ppo(args, env)) for env in envs]
        task = tasks[0] if len(tasks) == 1 else None
    if args.distribution is not None:
        with user_input({"name": "--distribution"}):
            task = suites.gridworld_task(args.distribution, config)
    if args.resume and not resumable(args.out):
        raise UserError(f"--resume: {args.out} holds no checkpoint to continue; run without --resume to start")
    if resumable(args.out) and not args.resume:
        raise UserError(f"--out: {args.out} already holds a run; pass --resume to continue it, or another directory")
    if len(tasks) > 1:
        with user_input({"env": "--env", "normalisers": "--normaliser"}, only_named=True):
            task = MultiTask(tasks, adam_normalisers(tasks, normalisers, args.out))
        print("normalisers (tuned Adam's return on each task; " + f"{args.out}/{NORMALISERS}): "
              + ", ".join(f"{t.name} {float(n):.2f}" for t, n in zip(tasks, task.normalisers)))
    resolved = {"ppo": config_dict(config), "meta": config_dict(meta_config),
                "learner": {"name": args.learner, **config_dict(learner)},
                "optimizer": {"spec": args.optimizer, "head": args.head, "init": args.init}}
    validations = len([g for g in range(1, meta_config.generations + 1) if meta_config.eval_every and (
        g % meta_config.eval_every == 0 or g == meta_config.generations)])
    per_task = [("tasks", len(tasks))] if len(tasks) > 1 else []
    print_budget("meta-training", [("generations", meta_config.generations), ("members", learner.population_size),
                                   ("rollouts", meta_config.num_rollouts), *per_task], config.total_timesteps)
    if validations:
        print_budget("validation", [("validations", validations), ("seeds", meta_config.eval_seeds), *per_task],
                     config.total_timesteps)
    if distributed.is_main():
        run.start(args.out, resolved)
    try:
        with open_loggers(args) as loggers:
            result = meta_train(learner, optimizer, task, meta_config, out_dir=args.out, resume=args.resume,
                                loggers=loggers)
    except CheckpointError as error:
        raise UserError(f"--resume: {error}") from error
    if distributed.is_main():
        plot_fitness(result.history, os.path.join(args.out, "fitness.png"))
        run.finish(args.out, resolved)
    best = max((r for r in result.history if "validation" in r), key=lambda r: r["validation"], default=None)
    if best is not None:
        print(f"best validated generation: {best['generation']} (mean final return {best['validation']:.2f})")
    print(f"wrote {args.out}/best.eqx, metrics.jsonl, fitness.png, {RECORD}")


def _sweep(args: argparse.Namespace) -> None:
    from openrl.eval.sweep import (
        best_preset,
        default_study_name,
        run_sweep,
        search_space,
        space_for,
        write_preset,
    )
    from openrl.meta import make_task

    with user_input({"env": "--env", "optimizer": "--optimizer", "space": "--space", "name": "--env"}):
        space = space_for(args.env) if args.space is None else args.space
        search = search_space(args.optimizer, space)
    config = resolve_ppo(args, args.env)
    with user_input({"name": "--env"}):
        task = make_task(args.env, config)
    study_name = args.study or default_study_name(args.optimizer, args.env)
    preset_path = args.preset or f"{study_name}.json"
    if not os.path.isdir(os.path.dirname(os.path.abspath(preset_path))):
        raise UserError(f"--preset: the directory of {preset_path!r} does not exist")
    seeds = search.seeds if args.seeds is None else args.seeds
    print_budget("the sweep (pruned trials stop early)", [("trials", args.n_trials), ("seeds", seeds)],
                 config.total_timesteps)
    with user_input({"storage": "--storage", "study_name": "--study"}, only_named=True):
        study = run_sweep(args.optimizer, task, storage=args.storage, n_trials=args.n_trials, space=space,
                          study_name=study_name, batch_size=args.batch, seeds=args.seeds, seed=args.seed,
                          pruner=args.pruner)
    preset = write_preset(study, preset_path) if distributed.is_main() else best_preset(study)
    print(f"study {study_name!r}: {len(study.trials)} trials; best mean final return "
          f"{preset['sweep']['mean_final_return']:.2f} with {preset['hyperparams']}, anneal={preset['anneal']}")
    print(f"wrote {preset_path} (load it with openrl.presets.from_sweep)")


if __name__ == "__main__":
    sys.exit(main())
