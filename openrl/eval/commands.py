"""`openrl evaluate`, `openrl ablate` and `openrl deep-sea`: their arguments, and names turned into objects."""

from __future__ import annotations

import argparse
import inspect
import os
from typing import Any

import equinox as eqx

from openrl.cli import _positive_float, _positive_int
from openrl.optim.optimizer import AbstractOptimizer

LABELS = {"adam": "Adam", "rmsprop": "RMSprop", "lion": "Lion", "no_features": "No Features", "open": "OPEN"}
"""Display names of the built-in presets, as the paper writes them."""

TUNED_FOR = {"Breakout-MinAtar": "breakout", "Asterix-MinAtar": "asterix", "Freeway-MinAtar": "freeway",
             "SpaceInvaders-MinAtar": "space_invaders", "ant": "ant"}
"""Environment name -> key of the handcrafted presets' tuned values (paper Tables 4-6)."""

OPTIMIZER_HELP = (
    "an optimizer, [LABEL=]SPEC, repeatable; SPEC is a registered name (adam, rmsprop, lion, no_features, open, "
    "...: see `openrl plugins`), a released OPEN weights file (*.npy), the best values of `openrl sweep` "
    "(*.json), or PRESET:PATH for a meta-trained optimizer saved by `openrl meta-train` "
    "(e.g. no_features:runs/nf/best.eqx)"
)


def _preset(name: str, tuned_for: str | None) -> AbstractOptimizer:
    from openrl import plugins

    if name not in plugins.available("openrl.optimizers"):
        raise ValueError(
            f"--optimizer: unknown optimizer {name!r}; expected one of "
            f"{sorted(plugins.available('openrl.optimizers'))}, "
            "a *.npy weights file, a *.json sweep preset or PRESET:PATH"
        )
    factory = plugins.load("openrl.optimizers", name)
    if "env" in inspect.signature(factory).parameters:
        if tuned_for is None:
            raise ValueError(f"--tuned-for: {name!r} needs the environment its values were tuned for, e.g. breakout")
        return factory(env=tuned_for)
    return factory()


def optimizer_from_spec(spec: str, tuned_for: str | None) -> tuple[str, AbstractOptimizer]:
    """`(label, optimizer)` from `[LABEL=]SPEC` (see `OPTIMIZER_HELP`)."""
    label, sep, body = spec.partition("=")
    if not sep:
        label, body = "", spec
    file_label = label or os.path.splitext(os.path.basename(body))[0]
    if body.endswith(".npy"):
        from openrl.optim.pretrained import load_pretrained

        return file_label, load_pretrained(body)
    if body.endswith(".json"):
        from openrl.optim.presets import from_sweep

        return file_label, from_sweep(body)
    if ":" in body:
        name, path = body.split(":", 1)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--optimizer {spec!r}: no saved optimizer at {path!r}")
        skeleton = _preset(name, tuned_for)
        try:
            optimizer = eqx.tree_deserialise_leaves(path, skeleton)
        except Exception as error:  # equinox raises several types for a file of another structure
            raise ValueError(f"--optimizer {spec!r}: {path} does not hold a {name!r} optimizer ({error})") from error
        return label or LABELS.get(name, name), optimizer
    return label or LABELS.get(body, body), _preset(body, tuned_for)


def _ppo_config(preset: str, total_timesteps: int | None):
    from openrl.rl.ppo import PPOConfig

    return getattr(PPOConfig, preset)(**({} if total_timesteps is None else {"total_timesteps": total_timesteps}))


def add_commands(commands: Any) -> None:
    """Add the `evaluate`, `ablate` and `deep-sea` sub-commands to `openrl`'s sub-parsers."""
    evaluate = commands.add_parser("evaluate", help="run optimizers on tasks over seeds and write the paper's report")
    evaluate.add_argument("--env", action="append", required=True, help="environment name, repeatable")
    evaluate.add_argument("--optimizer", action="append", required=True, help=OPTIMIZER_HELP)
    evaluate.add_argument("--tuned-for", default=None,
                          help="tuned values of handcrafted presets (default: from the first --env, e.g. breakout)")
    evaluate.add_argument("--ppo", default="minatar", choices=["minatar", "ant", "gridworld", "cartpole"])
    evaluate.add_argument("--total-timesteps", type=_positive_int, default=None, help="environment steps per run")
    evaluate.add_argument("--seeds", type=_positive_int, default=16)
    evaluate.add_argument("--seed", type=int, default=0, help="base seed of the runs' keys")
    evaluate.add_argument("--seeds-per-call", type=_positive_int, default=None,
                          help="seeds vmapped per compiled call, each call's runs stored as it ends (default: all)")
    evaluate.add_argument("--no-analysis", dest="analysis", action="store_false",
                          help="skip recording Appendix F's update analysis (faster; no cosine/magnitude figures)")
    evaluate.add_argument("--reference", default=None, help="optimizer to normalise by (default: Adam, else the first)")
    evaluate.add_argument("--out", required=True, help="report directory; its stored runs are reused")

    ablate = commands.add_parser("ablate", help="meta-train OPEN minus one part and compare (paper Figure 5)")
    ablate.add_argument("--env", default="Breakout-MinAtar")
    ablate.add_argument("--ablation", action="append", default=None,
                        help="repeatable (default: all): OPEN, 'no training proportion', 'no batch proportion', "
                             "'no dormancy', 'no layer proportion', 'no stochasticity'")
    ablate.add_argument("--total-timesteps", type=_positive_int, default=32_768, help="paper: 200000")
    ablate.add_argument("--optimizers", type=_positive_int, default=1, help="optimizers per ablation (paper: 17)")
    ablate.add_argument("--generations", type=_positive_int, default=2, help="ES generations each (paper: 250)")
    ablate.add_argument("--population", type=_positive_int, default=4, help="paper: 64")
    ablate.add_argument("--seeds", type=_positive_int, default=4, help="evaluation seeds (paper: 64)")
    ablate.add_argument("--sigma", type=_positive_float, default=0.03)
    ablate.add_argument("--lr", type=_positive_float, default=0.03)
    ablate.add_argument("--seed", type=int, default=0)
    ablate.add_argument("--out", required=True)

    deep = commands.add_parser("deep-sea",
                               help="separated OPEN with and without learned noise on Deep Sea (Fig. 6, 17)")
    deep.add_argument("--train-sizes", type=_positive_int, nargs="+", default=[4, 6, 8])
    deep.add_argument("--eval-sizes", type=_positive_int, nargs="+", default=[4, 8, 12, 16])
    deep.add_argument("--total-timesteps", type=_positive_int, default=32_768)
    deep.add_argument("--generations", type=_positive_int, default=4, help="paper: 48")
    deep.add_argument("--population", type=_positive_int, default=4)
    deep.add_argument("--seeds", type=_positive_int, default=8, help="paper: 128")
    deep.add_argument("--sigma", type=_positive_float, default=0.03)
    deep.add_argument("--lr", type=_positive_float, default=0.03)
    deep.add_argument("--seed", type=int, default=0)
    deep.add_argument("--out", required=True)


def run_command(args: argparse.Namespace) -> None:
    """Run the parsed `evaluate`, `ablate` or `deep-sea` command."""
    from openrl.meta import MetaConfig, OpenES, make_task

    if args.command == "evaluate":
        from openrl.eval.evaluation import evaluate

        tuned_for = args.tuned_for or TUNED_FOR.get(args.env[0])
        optimizers = dict(optimizer_from_spec(spec, tuned_for) for spec in args.optimizer)
        if len(optimizers) != len(args.optimizer):
            raise ValueError(
                f"--optimizer: labels must be unique; give LABEL=SPEC to tell them apart ({args.optimizer})"
            )
        config = _ppo_config(args.ppo, args.total_timesteps)
        tasks = [make_task(env, config) for env in args.env]
        report = evaluate(optimizers, tasks, args.seeds, seed=args.seed, out_dir=args.out, reference=args.reference,
                          seeds_per_call=args.seeds_per_call, analysis=args.analysis)
        print(report.table())
        print(f"wrote {args.out}/summary.md, results.jsonl and figures")
        return
    learner = OpenES(population_size=args.population, sigma_init=args.sigma, learning_rate=args.lr)
    meta_config = MetaConfig(generations=args.generations, seed=args.seed, eval_every=0)
    if args.command == "ablate":
        from openrl.eval.ablation import ABLATIONS, run_ablations

        task = make_task(args.env, _ppo_config("minatar", args.total_timesteps))
        rows = run_ablations(task, learner, args.out, ablations=args.ablation or tuple(ABLATIONS),
                             num_optimizers=args.optimizers, meta_config=meta_config, seeds=args.seeds)
        for row in rows:
            print(f"{row.name}: return IQM {row.return_iqm.estimate:.3g}, τ=0 dormancy {row.dormancy.estimate:.3g}")
        print(f"wrote {args.out}/ablation.md, ablation.png")
    else:
        from openrl.eval.ablation import deep_sea_config, deep_sea_study

        study = deep_sea_study(learner, args.out, train_sizes=args.train_sizes, eval_sizes=args.eval_sizes,
                               config=deep_sea_config(args.total_timesteps), meta_config=meta_config, seeds=args.seeds)
        for size, gain in zip(study.sizes, study.improvement):
            print(f"size {size}: IQM improvement of learned noise "
                  f"{gain.estimate:.3g} [{gain.lower:.3g}, {gain.upper:.3g}]")
        print(f"wrote {args.out}/deep_sea.md, return_vs_size.png, noise_improvement.png")
