"""`openrl evaluate`, `openrl ablate` and `openrl deep-sea`: their arguments, and names turned into objects."""

from __future__ import annotations

import inspect
import os
from typing import Any

import equinox as eqx

from openrl import distributed
from openrl.optim.optimizer import AbstractOptimizer
from openrl.shell import (
    Invocation,
    UserError,
    add_config_flag,
    add_learner_flags,
    add_logger_flag,
    add_meta_flags,
    add_ppo_flags,
    config_dict,
    is_gridworld,
    open_loggers,
    positive_int,
    print_budget,
    resolve_learner,
    resolve_meta,
    resolve_ppo,
    user_input,
)

LABELS = {"adam": "Adam", "rmsprop": "RMSprop", "lion": "Lion", "no_features": "No Features", "open": "OPEN",
          "optim4rl": "Optim4RL", "velo": "VeLO"}
"""Display names of the built-in presets, as the paper writes them; an untrained learned optimizer's
label says so ("OPEN (untrained)")."""

UNTRAINED = "untrained"
"""`--optimizer PRESET:untrained`: the preset's architecture with its initial (all-zero) meta-parameters."""

TUNED_FOR = {"Breakout-MinAtar": "breakout", "Asterix-MinAtar": "asterix", "Freeway-MinAtar": "freeway",
             "SpaceInvaders-MinAtar": "space_invaders", "ant": "ant", "gridworld-all": "gridworld"}
"""Environment name -> key of the handcrafted presets' tuned values (paper Tables 4-6); looked up by
`_paper_env`, so every gridworld takes the `gridworld` values."""

OPTIMIZER_HELP = (
    "an optimizer, [LABEL=]SPEC, repeatable; SPEC is a registered name (adam, rmsprop, lion, no_features, open, "
    "...: see `openrl plugins`), a released OPEN optimizer by name (asterix, breakout, freeway, spaceinvaders, "
    "multi, ant, gridworld: see `openrl pretrained`) or weights file (*.npy), the best values of `openrl sweep` "
    "(*.json), an optimizer saved by `openrl meta-train` (runs/x/best.eqx, read with its spec), or "
    "PRESET:PATH for one saved without a spec (e.g. no_features:runs/nf/best.eqx). `open` is the optimizer "
    "the paper released for each --env "
    "(an error where there is none); `open:untrained` is OPEN's architecture before meta-training, which "
    "makes no update (labelled \"OPEN (untrained)\")"
)


def released_for(env: str) -> str | None:
    """The name of the optimizer the paper released for `env` (`openrl.optim.pretrained.RELEASED`), if any."""
    from openrl.optim.pretrained import RELEASED

    for name, entry in RELEASED.items():
        if entry.envs == (_paper_env(env),):
            return name
    return None


def _paper_env(env: str | None) -> str | None:
    """The paper's environment that `env` stands for in its releases and tuned values: every gridworld
    (environment or distribution) is `gridworld-all`, where the gridworld optimizer and Adam were tuned."""
    return "gridworld-all" if env is not None and is_gridworld(env) else env


def _label(name: str, optimizer: AbstractOptimizer) -> str:
    from openrl.eval.evaluation import is_untrained

    label = LABELS.get(name, name)
    return f"{label} ({UNTRAINED})" if is_untrained(optimizer) else label


def _preset(name: str, tuned_for: str | None, env: str | None) -> AbstractOptimizer:
    from openrl import plugins

    if name not in plugins.available("openrl.optimizers"):
        raise UserError(
            f"--optimizer: unknown optimizer {name!r}; expected one of "
            f"{sorted(plugins.available('openrl.optimizers'))}, "
            "a *.npy weights file, a *.json sweep preset or PRESET:PATH"
        )
    factory = plugins.load("openrl.optimizers", name)
    if "env" in inspect.signature(factory).parameters:
        tuned_for = tuned_for or TUNED_FOR.get(_paper_env(env))
        if tuned_for is None:
            raise UserError(f"--tuned-for: {name!r} needs the environment its values were tuned for"
                            + (f", and {env!r} has none of the paper's" if env else "")
                            + "; give one, e.g. --tuned-for breakout")
        with user_input({"env": "--tuned-for"}):
            return factory(env=tuned_for)
    return factory()


def optimizer_from_spec(spec: str, tuned_for: str | None = None, envs: list[str] | None = None
                        ) -> tuple[str, AbstractOptimizer | dict[str, AbstractOptimizer]]:
    """`(label, optimizer)` from `[LABEL=]SPEC` (see `OPTIMIZER_HELP`) for the environments `envs`; the
    optimizer is `{env: optimizer}` where it depends on the environment (tuned values, released OPEN)."""
    envs = list(envs or [None])
    label, sep, body = spec.partition("=")
    if not sep:
        label, body = "", spec
    file_label = label or os.path.splitext(os.path.basename(body))[0]
    if body.endswith(".npy"):
        from openrl.optim.pretrained import load_pretrained

        with user_input({"source": "--optimizer", "path": "--optimizer"}):
            return file_label, load_pretrained(body)
    if body.endswith(".json"):
        from openrl.optim.presets import from_sweep

        with user_input({"path": "--optimizer"}):
            return file_label, from_sweep(body)
    if ":" in body:
        name, path = body.split(":", 1)
        if path == UNTRAINED:
            optimizer = _preset(name, tuned_for, envs[0])
            return label or f"{LABELS.get(name, name)} ({UNTRAINED})", optimizer
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--optimizer {spec!r}: no saved optimizer at {path!r}")
        skeleton = _preset(name, tuned_for, envs[0])
        try:
            optimizer = eqx.tree_deserialise_leaves(path, skeleton)
        except Exception as error:  # equinox raises several types for a file of another structure
            raise UserError(f"--optimizer {spec!r}: {path} does not hold a {name!r} optimizer ({error})") from error
        return label or LABELS.get(name, name), optimizer
    if body.endswith(".eqx"):
        from openrl.optim.saving import load

        with user_input({"path": "--optimizer"}):
            return file_label, load(body)
    from openrl.optim.pretrained import RELEASED, load_pretrained

    if body in RELEASED:
        return label or f"OPEN ({body})", load_pretrained(body)
    if body == "open":
        missing = [env for env in envs if env is None or released_for(env) is None]
        if missing:
            raise UserError(f"--optimizer open: the paper released no OPEN optimizer for {missing}; give "
                            "open:untrained for the architecture, or a meta-trained optimizer (open:PATH)")
        return label or LABELS["open"], {env: load_pretrained(released_for(env)) for env in envs}
    per_env = {env: _preset(body, tuned_for, env) for env in envs}
    first = per_env[envs[0]]
    if all(eqx.tree_equal(first, optimizer) is True for optimizer in per_env.values()):
        return label or _label(body, first), first
    return label or _label(body, first), per_env


def add_commands(commands: Any) -> None:
    """Add the `evaluate`, `ablate` and `deep-sea` sub-commands to `openrl`'s sub-parsers."""
    evaluate = commands.add_parser("evaluate", help="run optimizers on tasks over seeds and write the paper's report")
    evaluate.add_argument("--env", action="append", default=[], help="environment name, repeatable")
    evaluate.add_argument("--distribution", action="append", default=[],
                          help="gridworld distribution, repeatable: each run trains on its own draw, as the paper "
                               "evaluates its gridworld optimizer (Figure 4: all, rand_dense, rand_sparse, rand_long, "
                               "standard_maze, sixteen_rooms, labyrinth); give --env, --distribution or both")
    evaluate.add_argument("--optimizer", action="append", required=True, help=OPTIMIZER_HELP)
    evaluate.add_argument("--tuned-for", default=None,
                          help="tuned values of handcrafted presets, e.g. breakout (default: each --env's own)")
    add_ppo_flags(evaluate)
    evaluate.add_argument("--seeds", type=positive_int, default=16, help="training runs per optimizer and task")
    evaluate.add_argument("--seed", type=int, default=0, help="base seed of the runs' keys")
    evaluate.add_argument("--seeds-per-call", type=positive_int, default=None,
                          help="seeds vmapped per compiled call, each call's runs stored as it ends (default: all)")
    evaluate.add_argument("--no-analysis", dest="analysis", action="store_false",
                          help="skip recording Appendix F's update analysis (faster; no cosine/magnitude figures)")
    evaluate.add_argument("--reference", default=None,
                          help="optimizer to normalise by (default: the one labelled Adam, else the first)")
    evaluate.add_argument("--out", required=True, help="report directory; its stored runs are reused")
    add_logger_flag(evaluate)
    add_config_flag(evaluate)
    distributed.add_arguments(evaluate)

    ablate = commands.add_parser("ablate", help="meta-train OPEN minus one part and compare (paper Figure 5)")
    ablate.add_argument("--env", default="Breakout-MinAtar", help="environment name (see `openrl envs`)")
    ablate.add_argument("--ablation", action="append", default=None,
                        help="repeatable (default: all): OPEN, 'no training proportion', 'no batch proportion', "
                             "'no dormancy', 'no layer proportion', 'no stochasticity'")
    add_ppo_flags(ablate)
    ablate.add_argument("--optimizers", type=positive_int, default=1, help="optimizers per ablation (paper: 17)")
    ablate.add_argument("--seeds", type=positive_int, default=4, help="evaluation seeds (paper: 64)")
    add_learner_flags(ablate, defaults=ABLATE_LEARNER)
    add_meta_flags(ablate, defaults=ABLATE_META)
    ablate.add_argument("--out", required=True, help="output directory")
    add_config_flag(ablate)

    deep = commands.add_parser("deep-sea",
                               help="separated OPEN with and without learned noise on Deep Sea (Fig. 6, 17)")
    deep.add_argument("--train-sizes", type=positive_int, nargs="+", default=[4, 6, 8],
                      help="Deep Sea sizes meta-trained on")
    deep.add_argument("--eval-sizes", type=positive_int, nargs="+", default=[4, 8, 12, 16],
                      help="Deep Sea sizes evaluated on")
    add_ppo_flags(deep)
    deep.add_argument("--seeds", type=positive_int, default=8, help="evaluation seeds (paper: 128)")
    add_learner_flags(deep, defaults=DEEP_SEA_LEARNER)
    add_meta_flags(deep, defaults=DEEP_SEA_META)
    deep.add_argument("--out", required=True, help="output directory")
    add_config_flag(deep)


ABLATE_LEARNER = {"population_size": 4}
"""`openrl ablate`'s small defaults (paper: population 64, 250 generations, 17 optimizers, 64 seeds)."""
ABLATE_META = {"generations": 2, "eval_every": 0}
DEEP_SEA_LEARNER = {"population_size": 4}
"""`openrl deep-sea`'s small defaults (paper: 48 generations, 128 seeds)."""
DEEP_SEA_META = {"generations": 4, "eval_every": 0}


def _meta_budget(learner: Any, meta_config: Any, trainings: int, steps: int) -> None:
    print_budget("meta-training", [("trainings", trainings), ("generations", meta_config.generations),
                                   ("members", learner.population_size), ("rollouts", meta_config.num_rollouts)],
                 steps)


def run_command(run: Invocation) -> None:
    """Run the parsed `evaluate`, `ablate` or `deep-sea` command."""
    from openrl.meta import make_task, suites

    args = run.args
    if args.command == "evaluate":
        from openrl.eval.evaluation import evaluate

        names = args.env + args.distribution
        if not names:
            raise UserError("--env/--distribution: expected one or more tasks, got none")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise UserError(f"--env/--distribution: expected each task once, got {repeated} more than once")
        configs = {name: resolve_ppo(args, name) for name in names}
        with user_input({"name": "--env"}):
            tasks = [make_task(env, configs[env]) for env in args.env]
        with user_input({"distribution": "--distribution"}):
            tasks += [suites.gridworld_task(d, configs[d]) for d in args.distribution]
        envs = [t.name for t in tasks]
        optimizers = dict(optimizer_from_spec(spec, args.tuned_for, envs) for spec in args.optimizer)
        if len(optimizers) != len(args.optimizer):
            raise UserError(
                f"--optimizer: labels must be unique; give LABEL=SPEC to tell them apart ({args.optimizer})"
            )
        if args.reference is not None and args.reference not in optimizers:
            raise UserError(f"--reference: {args.reference!r} is not one of the optimizers {list(optimizers)}")
        for env, config in configs.items():
            print_budget(env, [("optimizers", len(optimizers)), ("seeds", args.seeds)], config.total_timesteps)
        resolved = {"ppo": {env: config_dict(c) for env, c in configs.items()}, "optimizers": list(optimizers)}
        if distributed.is_main():
            run.start(args.out, resolved)
        flags = {"out_dir": "--out", "seeds_per_call": "--seeds-per-call"}
        with user_input(flags, only_named=True), open_loggers(args) as loggers:
            report = evaluate(optimizers, tasks, args.seeds, seed=args.seed, out_dir=args.out,
                              reference=args.reference, seeds_per_call=args.seeds_per_call,
                              analysis=args.analysis, loggers=loggers)
        if distributed.is_main():
            run.finish(args.out, resolved)
        print(report.table())
        print(f"wrote {args.out}/summary.md, results.jsonl and figures")
        return
    if args.command == "ablate":
        from openrl.eval.ablation import ABLATIONS, run_ablations

        config = resolve_ppo(args, args.env)
        with user_input({"name": "--env"}):
            task = make_task(args.env, config)
        learner, meta_config = resolve_learner(args, ABLATE_LEARNER), resolve_meta(args, ABLATE_META)
        ablations = args.ablation or tuple(ABLATIONS)
        unknown = [a for a in ablations if a not in ABLATIONS]
        if unknown:
            raise UserError(f"--ablation: expected names from {list(ABLATIONS)}, got {unknown}")
        _meta_budget(learner, meta_config, len(ablations) * args.optimizers, config.total_timesteps)
        print_budget("evaluation", [("optimizers", len(ablations) * args.optimizers), ("seeds", args.seeds)],
                     config.total_timesteps)
        resolved = {"ppo": config_dict(config), "meta": config_dict(meta_config),
                    "learner": {"name": args.learner, **config_dict(learner)}}
        run.start(args.out, resolved)
        rows = run_ablations(task, learner, args.out, ablations=ablations, num_optimizers=args.optimizers,
                             meta_config=meta_config, seeds=args.seeds)
        run.finish(args.out, resolved)
        for row in rows:
            print(f"{row.name}: return IQM {row.return_iqm.estimate:.3g}, τ=0 dormancy {row.dormancy.estimate:.3g}")
        print(f"wrote {args.out}/ablation.md, ablation.png")
    else:
        from openrl.eval.deep_sea import deep_sea_config, deep_sea_study

        config = resolve_ppo(args, "DeepSea-bsuite", base=deep_sea_config())
        learner, meta_config = resolve_learner(args, DEEP_SEA_LEARNER), resolve_meta(args, DEEP_SEA_META)
        _meta_budget(learner, meta_config, 2 * len(args.train_sizes), config.total_timesteps)
        print_budget("evaluation", [("optimizers", 2), ("sizes", len(args.eval_sizes)), ("seeds", args.seeds)],
                     config.total_timesteps)
        resolved = {"ppo": config_dict(config), "meta": config_dict(meta_config),
                    "learner": {"name": args.learner, **config_dict(learner)}}
        run.start(args.out, resolved)
        with user_input({"train_sizes": "--train-sizes", "eval_sizes": "--eval-sizes"}, only_named=True):
            study = deep_sea_study(learner, args.out, train_sizes=args.train_sizes, eval_sizes=args.eval_sizes,
                                   config=config, meta_config=meta_config, seeds=args.seeds)
        run.finish(args.out, resolved)
        for size, gain in zip(study.sizes, study.improvement):
            print(f"size {size}: IQM improvement of learned noise "
                  f"{gain.estimate:.3g} [{gain.lower:.3g}, {gain.upper:.3g}]")
        print(f"wrote {args.out}/deep_sea.md, return_vs_size.png, noise_improvement.png")
