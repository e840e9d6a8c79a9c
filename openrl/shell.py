"""What `openrl`'s commands share: the user-error type, flags generated from config classes, argument
types, the PPO preset an environment implies, budgets, and run records (`OUT/config.json`, `--config`).

Flags are generated from the fields of the config classes (`PPOConfig`, `MetaConfig`, the
meta-learners), so every field is reachable from the shell and a new field needs no CLI edit. A
field's help is its bullet (``- `name`: text``) in the class docstring. Generated flags have no
argparse default: a flag not given leaves the field to its class or preset, and only the flags given
reach the constructor.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


class UserError(ValueError):
    """Bad input from the shell: `openrl` prints it on one line and exits with code 2 (never a library bug)."""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows every default; flags without one (None, off, or told in their help) say nothing more."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def flag(name: str) -> str:
    """The flag of a field or argument name: `total_timesteps` -> `--total-timesteps`."""
    return "--" + name.replace("_", "-")


_NAME_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)?([A-Za-z_]\w*): ")


@contextlib.contextmanager
def user_input(flags: Mapping[str, str] | None = None, *, only_named: bool = False) -> Iterator[None]:
    """Errors raised while objects are built from flags are the user's: `ValueError`/`TypeError` become a
    `UserError` whose leading argument name (`PPOConfig.total_timesteps: ...`, `env: ...`) is replaced by
    its flag (`flags[name]`, default `--name`). Keep the block to constructors and lookups; around a call
    that also computes, pass `only_named=True`: only errors naming an argument of `flags` are converted."""
    try:
        yield
    except (ValueError, TypeError) as error:
        message = str(error)
        match = _NAME_PREFIX.match(message)
        if only_named and not (match and match.group(1) in (flags or {})):
            raise
        if match:
            name = match.group(1)
            message = f"{(flags or {}).get(name, flag(name))}: {message[match.end():]}"
        raise UserError(message) from error


# --------------------------------------------------------------------------------------------
# Flags generated from config classes
# --------------------------------------------------------------------------------------------

_SCALARS = {int: int, float: float, str: str}


def field_docs(cls: type) -> dict[str, str]:
    """`{field: text}` from the ``- `field`: text`` bullets of `cls`'s docstring (continuation lines joined)."""
    docs: dict[str, str] = {}
    current = None
    for line in (cls.__doc__ or "").splitlines():
        match = re.match(r"\s*- `([\w`, ]+)`: (.*)", line)
        if match:
            current = [n.strip(" `") for n in match.group(1).split(",")]
            for name in current:
                docs[name] = match.group(2).strip()
        elif current and line.strip() and not line.strip().startswith("- "):
            for name in current:
                docs[name] += " " + line.strip()
        else:
            current = None
    return {name: text.rstrip(".") for name, text in docs.items()}


def settable_fields(cls: type) -> dict[str, type]:
    """The fields of config class `cls` a shell can set (int, float, str, bool), with their types."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: hints[f.name] for f in dataclasses.fields(cls)
        if f.init and (hints.get(f.name) is bool or hints.get(f.name) in _SCALARS)
    }


def _default(cls: type, field: dataclasses.Field) -> Any:
    import inspect

    parameter = inspect.signature(cls).parameters.get(field.name)
    if parameter is not None and parameter.default is not inspect.Parameter.empty:
        return parameter.default
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def add_config_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    prefix: str,
    *,
    aliases: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    default_text: str | None = None,
    skip: Sequence[str] = (),
) -> dict[str, str]:
    """Add one flag per settable field of `cls`, stored as `args.<prefix>.<field>` only when given.

    `aliases[field]` is the flag's main (shorter) spelling, the field's own (`--field-name`) kept as
    a second; `defaults[field]` overrides the class default for this command (a generated default
    is then applied by `config_values`); `default_text` replaces the help's default (e.g. "the
    --ppo preset's"). Returns `{field: main flag}`, for `user_input`.
    """
    docs = field_docs(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    flags = {}
    for name, kind in settable_fields(cls).items():
        if name in skip:
            continue
        names = list(dict.fromkeys([flag((aliases or {}).get(name, name)), flag(name)]))
        default = (defaults or {}).get(name, _default(cls, fields[name]))
        shown = default_text or ("required" if default is dataclasses.MISSING else repr(default))
        help_text = f"{docs.get(name, f'{cls.__name__}.{name}')} (default: {shown})".replace("%", "%%")
        common = {"dest": f"{prefix}.{name}", "default": argparse.SUPPRESS, "help": help_text}
        if kind is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **common)
        else:
            parser.add_argument(*names, type=_SCALARS[kind], metavar=kind.__name__.upper(), **common)
        flags[name] = names[0]
    return flags


def config_flags(cls: type, aliases: Mapping[str, str] | None = None) -> dict[str, str]:
    """`{field: main flag}` of the flags `add_config_flags(parser, cls, aliases=aliases)` adds."""
    return {name: flag((aliases or {}).get(name, name)) for name in settable_fields(cls)}


def config_values(args: argparse.Namespace, prefix: str, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fields given as flags under `prefix` (see `add_config_flags`), over the command's `defaults`."""
    start = prefix + "."
    given = {k[len(start):]: v for k, v in vars(args).items() if k.startswith(start)}
    return {**(defaults or {}), **given}


def config_dict(config: Any) -> dict[str, Any]:
    """The settable fields of a config object, e.g. a `PPOConfig`, as a JSON-ready dict."""
    return {name: getattr(config, name) for name in settable_fields(type(config))}


# --------------------------------------------------------------------------------------------
# The config classes' flags
# --------------------------------------------------------------------------------------------

LEARNER_ALIASES = {"population_size": "population", "sigma_init": "sigma", "learning_rate": "lr"}
"""Short spellings of common meta-learner fields (`--population` for `--population-size`, ...)."""
META_ALIASES = {"num_rollouts": "rollouts"}


def add_ppo_flags(parser: argparse.ArgumentParser) -> None:
    """`--ppo` (default: from the environment) and one flag per `PPOConfig` field."""
    from openrl.rl.ppo import PPOConfig

    parser.add_argument("--ppo", default=None, choices=PPO_PRESETS,
                        help="PPO preset: paper Table 3 (minatar, ant, gridworld) or the quickstart's small cartpole "
                             "(default: from the environment: MinAtar -> minatar, gridworld -> gridworld, "
                             "Brax -> ant, CartPole and other small environments -> cartpole)")
    group = parser.add_argument_group("PPO (openrl.PPOConfig fields; each overrides the --ppo preset)")
    add_config_flags(group, PPOConfig, "ppo", default_text="the --ppo preset's")


def resolve_ppo(args: argparse.Namespace, env: str, base: Any = None):
    """The `PPOConfig` of `--ppo` (default: `env`'s preset) with every PPO flag given, budget checked.
    `base`, if given, is a config used instead of a preset when `--ppo` is not given."""
    from openrl.rl.ppo import PPOConfig

    overrides = config_values(args, "ppo")
    if args.ppo is None and base is not None:
        with user_input(config_flags(PPOConfig)):
            config = dataclasses.replace(base, **overrides)
        check_budget(config, given="total_timesteps" in overrides)
        return config
    return ppo_config(args.ppo or ppo_preset_for(env), overrides, config_flags(PPOConfig))


def add_meta_flags(parser: argparse.ArgumentParser, defaults: Mapping[str, Any] | None = None) -> None:
    """One flag per `MetaConfig` field; `defaults` overrides the class's for this command."""
    from openrl.meta import MetaConfig

    group = parser.add_argument_group("meta-training (openrl.MetaConfig fields)")
    add_config_flags(group, MetaConfig, "meta", aliases=META_ALIASES, defaults=defaults)


def resolve_meta(args: argparse.Namespace, defaults: Mapping[str, Any] | None = None):
    """The `MetaConfig` of the flags given, over the command's `defaults`."""
    from openrl.meta import MetaConfig

    with user_input(config_flags(MetaConfig, META_ALIASES)):
        return MetaConfig(**config_values(args, "meta", defaults))


LEARNERS = "openrl.meta_learners"


@functools.lru_cache(maxsize=1)
def _learner_kinds() -> tuple[tuple[type, tuple[str, ...]], ...]:
    """One `(class, arguments its entry binds)` per distinct registered object (evosax's strategies share one),
    the default `OpenES` first; loads one name per entry-point value, as loading is slow."""
    from openrl import plugins

    by_value = {}
    for name, info in sorted(plugins.available(LEARNERS).items(), key=lambda item: item[0] != "OpenES"):
        by_value.setdefault(info.value, name)
    kinds = [_learner_class(plugins.load(LEARNERS, name)) for name in by_value.values()]
    return tuple((cls, tuple(bound)) for cls, bound in kinds)


def _learner_class(entry: Any) -> tuple[type, dict[str, Any]]:
    """A registered learner's class and the arguments its entry binds (an entry may be a `functools.partial`
    of the class, as evosax's strategies are, behind the plugin registry's checking wrapper)."""
    import inspect

    entry = inspect.unwrap(entry)
    cls = getattr(entry, "func", entry)
    bound = inspect.signature(cls).bind_partial(*getattr(entry, "args", ()), **(getattr(entry, "keywords", {}) or {}))
    return cls, dict(bound.arguments)


def _setting(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def add_learner_flags(parser: argparse.ArgumentParser, defaults: Mapping[str, Any] | None = None) -> None:
    """`--learner` and one flag per field of any registered meta-learner."""
    parser.add_argument("--learner", default="OpenES", help="meta-learner, a registered name (see `openrl plugins`)")
    group = parser.add_argument_group("meta-learner (fields of the --learner class; defaults: OpenES's, or the "
                                      "class's)")
    added: set[str] = set()
    for cls, preset in _learner_kinds():
        added |= set(add_config_flags(group, cls, "learner", aliases=LEARNER_ALIASES, defaults=defaults,
                                      skip=sorted(added | set(preset))))
    group.add_argument("--learner-setting", metavar="NAME=VALUE", type=_setting, action="append", default=None,
                       dest="learner_settings", help="a further keyword of the --learner (e.g. an evosax strategy's "
                       "lr_std_init=0.1 for SNES), repeatable; VALUE is read as JSON, else as a string")


def resolve_learner(args: argparse.Namespace, defaults: Mapping[str, Any] | None = None):
    """The `--learner` built from the learner flags given, over the command's `defaults` for its fields."""
    from openrl import plugins

    if args.learner not in plugins.available(LEARNERS):
        raise UserError(f"--learner: unknown meta-learner {args.learner!r}; expected one of "
                        f"{sorted(plugins.available(LEARNERS))}")
    factory = plugins.load(LEARNERS, args.learner)
    cls, preset = _learner_class(factory)
    fields = set(settable_fields(cls)) - set(preset)
    given = config_values(args, "learner")
    foreign = sorted(flag(LEARNER_ALIASES.get(k, k)) for k in given if k not in fields)
    if foreign:
        raise UserError(f"{', '.join(foreign)}: not a setting of --learner {args.learner} "
                        f"(its settings: {sorted(flag(LEARNER_ALIASES.get(k, k)) for k in fields)})")
    values = {**{k: v for k, v in (defaults or {}).items() if k in fields}, **given,
              **dict(args.learner_settings or ())}
    with user_input(config_flags(cls, LEARNER_ALIASES)):
        return factory(**values)


def add_logger_flag(parser: argparse.ArgumentParser) -> None:
    from openrl.tracking import LOGGERS

    parser.add_argument("--logger", action="append", choices=sorted(LOGGERS), default=None,
                        help="also send the metrics to TensorBoard (OUT/tensorboard) or Weights & Biases (its WANDB_* "
                             "variables), repeatable; needs the extra openrl[tensorboard] or openrl[wandb]; "
                             "JSONL files are always written")


@contextlib.contextmanager
def open_loggers(args: argparse.Namespace) -> Iterator[list[Any]]:
    """The `--logger`s of a command writing to `args.out`, closed when the block ends."""
    from openrl.tracking import make_logger

    made = []
    try:
        for name in args.logger or ():
            try:
                made.append(make_logger(name, args.out))
            except ImportError as error:
                raise UserError(f"--logger {name}: {error}") from error
        yield made
    finally:
        for logger in made:
            logger.close()


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default=None,
                        help=f"replay the run recorded in FILE (a run directory's {RECORD}); flags given here "
                             "override it")


# --------------------------------------------------------------------------------------------
# PPO presets and budgets
# --------------------------------------------------------------------------------------------

PPO_PRESETS = ("minatar", "ant", "gridworld", "cartpole")
"""`PPOConfig`'s presets: paper Table 3 (MinAtar, Ant, gridworld) and the quickstart's small CartPole."""


def ppo_preset_for(env: str) -> str:
    """The PPO preset an environment implies: MinAtar -> minatar, gridworlds -> gridworld,
    Brax (e.g. ant) -> ant, anything else (CartPole, classic control, Deep Sea) -> cartpole."""
    from openrl.rl import envs

    if env.endswith("-MinAtar"):
        return "minatar"
    if is_gridworld(env):
        return "gridworld"
    if env == "ant" or env in getattr(envs, "BRAX_NAMES", ()):
        return "ant"
    return "cartpole"


def is_gridworld(name: str) -> bool:
    """Whether `name` is a gridworld: a registered environment (`gridworld-all`, ...) or a distribution
    (`all`, `rand_dense`, ...: `openrl.meta.suites.GRIDWORLDS`)."""
    from openrl.meta import suites

    return name.startswith("gridworld") or name in suites.GRIDWORLDS


def ppo_config(preset: str, overrides: Mapping[str, Any], flags: Mapping[str, str]):
    """`PPOConfig.<preset>(**overrides)`, its errors naming flags, and its budget checked (see `check_budget`)."""
    from openrl.rl.ppo import PPOConfig

    with user_input(flags):
        config = getattr(PPOConfig, preset)(**overrides)
    check_budget(config, given="total_timesteps" in overrides)
    return config


def check_budget(config: Any, *, given: bool) -> None:
    """Refuse a budget of fewer than two PPO iterations (every optimizer would score about the same), and
    warn about a given budget that is not a multiple of the batch (the remainder is never run)."""
    batch, total = config.batch_size, config.total_timesteps
    if config.num_iterations < 2:
        raise UserError(
            f"--total-timesteps: {total:,} steps give {config.num_iterations} PPO iteration of a "
            f"{batch:,}-step batch (--num-envs x --num-steps); use at least {2 * batch:,} (2 iterations), "
            "or a smaller batch"
        )
    if given and total % batch:
        lower, upper = total - total % batch, total - total % batch + batch
        print(f"warning: --total-timesteps {total:,} is not a multiple of the batch ({batch:,} steps): PPO runs "
              f"{config.num_iterations} iterations, {lower:,} steps; nearest valid values: {lower:,} or {upper:,}")


def print_budget(what: str, terms: Sequence[tuple[str, int]], steps_per_run: int) -> int:
    """Print `what`'s environment-step budget, e.g. `20 generations x 16 members x 32,768 steps = ...`;
    returns the total."""
    runs = 1
    for _, count in terms:
        runs *= count
    total = runs * steps_per_run
    factors = " x ".join(f"{count:,} {name}" for name, count in terms)
    print(f"budget of {what}: {factors} x {steps_per_run:,} steps = {total:,} environment steps")
    return total


# --------------------------------------------------------------------------------------------
# Run records and replay
# --------------------------------------------------------------------------------------------

RECORD = "config.json"
"""A run directory's record: the exact command, the parsed arguments and the resolved configuration."""
RECORD_VERSION = 1
_NOT_RECORDED = ("config", "resume")


def write_record(out_dir: str | os.PathLike, args: argparse.Namespace, argv: Sequence[str],
                 resolved: Mapping[str, Any], *, overwrite: bool) -> None:
    """Write `out_dir/config.json` atomically (unless it exists and not `overwrite`)."""
    path = os.path.join(out_dir, RECORD)
    if os.path.exists(path) and not overwrite:
        return
    os.makedirs(out_dir, exist_ok=True)
    record = {
        "version": RECORD_VERSION,
        "command": args.command,
        "argv": ["openrl", *argv],
        "args": {k: v for k, v in vars(args).items() if k not in _NOT_RECORDED and k != "command"},
        "resolved": resolved,
    }
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=2, default=repr)
    os.replace(path + ".tmp", path)


def read_record(path: str, command: str) -> dict[str, Any]:
    """The record at `path`, checked to be a `command` run."""
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError as error:
        raise UserError(f"--config: no run record at {path!r}") from error
    except json.JSONDecodeError as error:
        raise UserError(f"--config: {path} is not a run record (invalid JSON: {error})") from error
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        raise UserError(f"--config: {path} is not a version-{RECORD_VERSION} run record written by openrl")
    if record.get("command") != command:
        raise UserError(f"--config: {path} records `openrl {record.get('command')}`, not `openrl {command}`")
    return record


def apply_record(parser: argparse.ArgumentParser, record: Mapping[str, Any]) -> None:
    """Make `record`'s arguments the defaults of `parser`; flags given on the command line override them."""
    stored = record["args"]
    for action in parser._actions:
        if action.dest in stored:
            action.default = stored[action.dest]
            action.required = False
    for group in parser._mutually_exclusive_groups:
        if any(stored.get(a.dest) is not None for a in group._group_actions):
            group.required = False


@dataclasses.dataclass
class Invocation:
    """One `openrl` command: its parsed arguments, its exact argv, and the record it replays (`--config`)."""

    args: argparse.Namespace
    argv: list[str]
    replayed: dict[str, Any] | None = None

    def start(self, out_dir: str | os.PathLike, resolved: Mapping[str, Any]) -> None:
        """Before running: say where a replay's settings differ from its record, and record a new run."""
        if self.replayed is not None:
            for difference in resolved_differences(self.replayed, resolved):
                print(f"warning: --config: resolves differently from the record: {difference}")
        write_record(out_dir, self.args, self.argv, resolved, overwrite=False)

    def finish(self, out_dir: str | os.PathLike, resolved: Mapping[str, Any]) -> None:
        """After a run that ended well: the record is this command's."""
        write_record(out_dir, self.args, self.argv, resolved, overwrite=True)


def resolved_differences(record: Mapping[str, Any], resolved: Mapping[str, Any]) -> list[str]:
    """Settings whose resolved value differs from the record's (e.g. after a library default changed)."""
    old = json.loads(json.dumps(record.get("resolved", {}), default=repr))
    new = json.loads(json.dumps(resolved, default=repr))
    return [
        f"{section}.{key}: {old[section].get(key)!r} -> {value!r}"
        for section in sorted(set(old) & set(new)) if isinstance(new[section], dict)
        for key, value in sorted(new[section].items()) if old[section].get(key) != value
    ]
