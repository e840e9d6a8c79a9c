"""Run optimizers on tasks over seeds, keep the raw results, and write a report."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import os
import pathlib
import platform
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Final

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec
from tqdm.auto import tqdm

from openrl import distributed
from openrl.eval import stats
from openrl.eval.report import write_report
from openrl.eval.results import Report, Run, append_runs, load_runs
from openrl.meta.tasks import Task
from openrl.optim.optimizer import AbstractOptimizer
from openrl.tracking import Logger

__all__ = ["Report", "Run", "evaluate"]


def _tasks(tasks: Task | Sequence[Task]) -> list[Task]:
    tasks = [tasks] if isinstance(tasks, Task) else list(tasks)
    for i, task in enumerate(tasks):
        if not isinstance(task, Task):
            raise TypeError(f"tasks[{i}]: expected an openrl Task, got {task!r}")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks: names must be unique, got {names}")
    return tasks


def _fingerprint(optimizer: AbstractOptimizer, task: Task, seed: int) -> str:
    """A digest of the optimizer's values and structure, the task's name and configuration, and the base seed.

    Whether the update analysis is recorded is left out: it does not change the training.
    """
    digest = hashlib.sha256()
    # tree_pformat, unlike a treedef's str, names functions without their (per-process) addresses.
    description = eqx.tree_pformat(optimizer, short_arrays=True)
    config = dataclasses.replace(task.config, record_stats=False)
    digest.update(f"{description}|{task.name}|{eqx.tree_pformat(config)}|{seed}".encode())
    for leaf in jax.tree.leaves(eqx.filter(optimizer, eqx.is_array)):
        digest.update(np.asarray(leaf).tobytes())
    return digest.hexdigest()[:16]


def _machine() -> str:
    """Where this process trains: JAX's backend, its devices, the host CPU's model and the jax version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:  # Linux names the model here; `platform` gives only the architecture
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"{jax.default_backend()}, {jax.device_count()} x {jax.devices()[0].device_kind}; host CPU {cpu}; "
            f"jax {jax.__version__}")


def _code() -> str:
    """Which openrl this is: its version and commit, from pip's record of a git install or from the git
    checkout the package is imported from, marked when `openrl/` differs from that commit."""
    try:
        distribution = importlib.metadata.distribution("openrl")
    except importlib.metadata.PackageNotFoundError:  # imported from a source tree that pip did not install
        distribution = None
    version = f"openrl {distribution.version}" if distribution else "openrl (not installed)"
    vcs = json.loads((distribution and distribution.read_text("direct_url.json")) or "{}").get("vcs_info", {})
    if "commit_id" in vcs:  # `pip install git+...` (the Direct URL Data Structure of PyPA's specifications)
        return f"{version}, {vcs['vcs']} {vcs['commit_id'][:12]}"
    package = pathlib.Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=package, capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        git("ls-files", "--error-unmatch", "__init__.py")  # the checkout tracks this package, not an enclosing repo
        commit, changes = git("rev-parse", "--short=12", "HEAD"), git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):  # no git, not a checkout, or a checkout that does not track it
        return version
    return f"{version}, git {commit}" + (" with uncommitted changes to openrl/" if changes else "")


# Read when the package is imported, not when a run trains: a job queued behind another one names the code
# it imported, whatever the checkout holds by the time it starts.
_IMPORTED_CODE: Final[str] = _code()


def _recording(task: Task) -> Task:
    """`task` with the update analysis of Appendix F switched on (it does not change the training)."""
    return eqx.tree_at(lambda t: t.config, task, dataclasses.replace(task.config, record_stats=True))


@eqx.filter_jit
def _train_seeds(task: Task, optimizer: AbstractOptimizer, keys: jax.Array, mesh: Mesh):
    """Each seed trains on its own draw of the task (a fixed task is the same environment for all); each
    device trains its own seeds."""

    def seeds(keys):
        results = eqx.filter_vmap(lambda k: task.run_own_draw(optimizer, k))(keys)
        return results.final_return, results.returns, results.dormancy, results.stats

    return distributed.map_shards(seeds, mesh)(keys)


@distributed.peer_errors
def evaluate(
    optimizers: Mapping[str, AbstractOptimizer | Mapping[str, AbstractOptimizer]],
    tasks: Task | Sequence[Task],
    seeds: int,
    *,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    reference: str | None = None,
    progress: bool = True,
    seeds_per_call: int | None = None,
    analysis: bool = True,
    loggers: Sequence[Logger] = (),
) -> Report:
    """Train every optimizer on every task over `seeds` seeds (vmapped; the same seeds for all).

    An optimizer may be given per task, as `{task name: optimizer}` (e.g. Adam with each
    environment's tuned values). A learned optimizer whose meta-parameters are all zero makes no
    update; evaluating one warns unless its label says "untrained".

    With `analysis`, every run also records the update analysis of Appendix F (it costs time,
    not results). `seeds_per_call` vmaps that many seeds per compiled call (default: all),
    storing each call's runs as it ends, so long evaluations lose at most one call's work
    and can pick a batch size that suits the machine. A run's numbers depend on that batch
    shape, so every call trains exactly `seeds_per_call` seeds (the last one's extra seeds are
    stored for a later, larger evaluation) and stored runs are reused only with the same
    `seeds_per_call`. `reference` names the optimizer
    the report normalises by and compares with (default: `default_reference`: Adam, else the first).
    With `out_dir`: `results.jsonl` (one tidy row per run) and the report of
    `openrl.eval.report.write_report` (`summary.md` and PNG figures). Runs already in
    `results.jsonl` are reused, so an interrupted or repeated evaluation only computes what is
    missing; stored runs made with other optimizer values, task settings, base seed or
    `seeds_per_call` are an error. Runs stored without the analysis are trained again when it is
    asked for. Each of `loggers` (see `openrl.tracking`) receives the summary at step `seeds`:
    `evaluate/{optimizer}/{iqm,mean,median,optimality_gap}` with `_lower`/`_upper` CI bounds, and
    `evaluate/{task}/{optimizer}/iqm`.
    """
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: expected a positive int, got {seeds!r}")
    if seeds_per_call is None:
        seeds_per_call = seeds
    if not isinstance(seeds_per_call, int) or seeds_per_call < 1:
        raise ValueError(f"seeds_per_call: expected a positive int or None, got {seeds_per_call!r}")
    if not optimizers:
        raise ValueError("optimizers: expected at least one named optimizer")
    tasks = [_recording(t) if analysis else t for t in _tasks(tasks)]
    per_task = {(n, t.name): _for_task(optimizers, n, t.name) for t in tasks for n in optimizers}
    for (name, _), optimizer in per_task.items():
        if not isinstance(optimizer, AbstractOptimizer):
            raise TypeError(f"optimizers[{name!r}]: expected an openrl optimizer, got {optimizer!r}")
    if reference is None:
        reference = default_reference(optimizers)
    elif reference not in optimizers:
        raise ValueError(f"reference: {reference!r} is not one of the optimizers {list(optimizers)}")
    for name in optimizers:
        if "untrained" not in name.lower() and any(is_untrained(o) for (n, _), o in per_task.items() if n == name):
            warnings.warn(f"optimizers[{name!r}]: a learned optimizer whose meta-parameters are all zero makes no "
                          "update (it is the untrained architecture); label it as untrained, or load trained values",
                          stacklevel=2)
    path = None if out_dir is None else os.path.join(out_dir, "results.jsonl")
    if out_dir is not None and distributed.is_main():
        os.makedirs(out_dir, exist_ok=True)
    runs = load_runs(path) if path else []
    fingerprints = {(n, t.name): _fingerprint(per_task[(n, t.name)], t, seed) for t in tasks for n in optimizers}
    for r in runs:
        if fingerprints.get((r.optimizer, r.task), r.fingerprint) != r.fingerprint:
            raise ValueError(
                f"out_dir: {path} holds runs of {r.optimizer!r} on {r.task!r} made with other optimizer values, "
                "task settings or base seed; use another output directory"
            )
        if (r.optimizer, r.task) in fingerprints and r.seeds_per_call != seeds_per_call:
            raise ValueError(
                f"seeds_per_call: {path} holds runs of {r.optimizer!r} on {r.task!r} trained {r.seeds_per_call} "
                f"seeds per call, and the batch shape changes the numbers; pass seeds_per_call={r.seeds_per_call} "
                f"to reuse them (got {seeds_per_call}), or use another output directory"
            )
    done = {(r.optimizer, r.task, r.seed) for r in runs if r.stats or not analysis}
    # Every call trains exactly `seeds_per_call` seeds; split(key, n)[i] does not depend on n.
    calls = -(-seeds // seeds_per_call)
    keys = jax.random.split(jax.random.key(seed), calls * seeds_per_call)
    jobs = [
        (n, t, chunk)
        for t in tasks for n in optimizers
        for chunk in (range(c * seeds_per_call, (c + 1) * seeds_per_call) for c in range(calls))
        if any((n, t.name, s) not in done for s in chunk if s < seeds)
    ]
    distributed.check_same_everywhere(repr([(n, t.name, c.start) for n, t, c in jobs]), f"the runs {path} holds")
    # Each call's seeds are sharded over every device of every process (padded to fill them all).
    mesh = distributed.mesh_over(jax.devices(), "seeds")
    padding = -seeds_per_call % mesh.size
    machine, code = _machine(), _IMPORTED_CODE
    for name, task, chunk in tqdm(jobs, desc="evaluate", disable=not progress or not jobs):
        batch = keys[np.minimum(np.arange(chunk.start, chunk.stop + padding), chunk.stop - 1)]
        final, returns, dormancy, curves = distributed.to_host(_train_seeds(
            *distributed.replicate((task, per_task[(name, task.name)]), mesh),
            distributed.shard(batch, mesh, PartitionSpec("seeds")), mesh))
        finished = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        new = [
            Run(name, task.name, s, float(final[i]), returns[i].tolist(), dormancy[i].tolist(), task.config.batch_size,
                {k: v[i].tolist() for k, v in curves.items()}, fingerprints[(name, task.name)], seeds_per_call,
                machine, finished, code)
            for i, s in enumerate(chunk) if (name, task.name, s) not in done
        ]
        replaced = {(r.optimizer, r.task, r.seed) for r in new}
        runs = [r for r in runs if (r.optimizer, r.task, r.seed) not in replaced] + new
        if path and distributed.is_main():
            append_runs(path, new)
    runs = [r for r in runs if r.seed < seeds and r.optimizer in optimizers and r.task in {t.name for t in tasks}]
    names = [t.name for t in tasks]
    report = Report(runs, _summarise(runs, list(optimizers), names, seeds), list(optimizers), names, reference)
    if out_dir is not None and distributed.is_main():
        write_report(report, out_dir)
    for logger in loggers if distributed.is_main() else ():
        logger.log(_summary_metrics(report), step=seeds)
    return report


def _for_task(optimizers: Mapping[str, Any], name: str, task: str) -> Any:
    """`optimizers[name]`, or its entry for `task` when it is given per task."""
    optimizer = optimizers[name]
    if isinstance(optimizer, Mapping):
        if task not in optimizer:
            raise ValueError(f"optimizers[{name!r}]: no optimizer for task {task!r} (it has {sorted(optimizer)})")
        return optimizer[task]
    return optimizer


def default_reference(optimizers: Mapping[str, Any]) -> str:
    """The optimizer a report normalises by: the first labelled Adam (any case or suffix, e.g.
    "Adam (tuned)"), else the first that is `optax.adam`, else the first given."""
    import optax

    from openrl.optim.optimizer import OptaxOptimizer

    names = list(optimizers)
    by_label = [n for n in names if n.strip().lower().split(" ")[0].split("(")[0] == "adam"]
    values = [next(iter(v.values())) if isinstance(v, Mapping) else v for v in optimizers.values()]
    by_kind = [n for n, v in zip(names, values) if isinstance(v, OptaxOptimizer) and v.factory is optax.adam]
    return (by_label + by_kind + names)[0]


def is_untrained(optimizer: AbstractOptimizer) -> bool:
    """Whether `optimizer` is a learned optimizer whose meta-parameters (its float arrays) are all zero."""
    from openrl.optim.optimizer import OptaxOptimizer

    if isinstance(optimizer, OptaxOptimizer):
        return False
    leaves = jax.tree.leaves(eqx.filter(optimizer, eqx.is_inexact_array))
    return bool(leaves) and all(not np.any(np.asarray(leaf)) for leaf in leaves)


def _summary_metrics(report: Report) -> dict[str, float]:
    metrics = {}
    for name, intervals in report.summary.items():
        for stat, interval in intervals.items():
            prefix = f"evaluate/{name}/{stat}"
            metrics.update({prefix: interval.estimate, f"{prefix}_lower": interval.lower,
                            f"{prefix}_upper": interval.upper})
    for task in report.tasks:
        for name in report.optimizers:
            metrics[f"evaluate/{task}/{name}/iqm"] = stats.iqm(report.scores(name, task))
    return metrics


def _summarise(runs: list[Run], optimizers: list[str], tasks: list[str], seeds: int) -> dict[str, dict[str, Any]]:
    summary = {}
    for name in optimizers:
        scores = np.zeros((seeds, len(tasks)))
        for r in runs:
            if r.optimizer == name:
                scores[r.seed, tasks.index(r.task)] = r.final_return
        summary[name] = stats.aggregate(scores)
    return summary
