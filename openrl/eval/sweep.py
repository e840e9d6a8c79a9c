"""Optuna sweeps of the handcrafted baselines (paper Appendix C.2, Tables 4-6), a batch of trials per compiled call.

```python
study = run_sweep("adam", make_task("Breakout-MinAtar", PPOConfig.minatar()), storage="sqlite:///sweeps.db",
                  n_trials=32)
write_preset(study, "adam-breakout.json")      # then presets.from_sweep("adam-breakout.json")
```

The study lives in an Optuna RDB storage (a real SQLite file with `sqlite:///path.db`): a second
call with the same arguments resumes it, and `optuna trials --storage ... --study-name ...`,
`optuna.load_study` or optuna-dashboard inspect it. Trials are asked in batches; each batch is
trained in one compiled call per annealing flag (annealing is static in `OptaxOptimizer`, the
other hyper-parameters are array leaves vmapped over trials x seeds), then each trial is told.

Pruning: every trial reports its mean return curve (over seeds) at evenly spaced steps, and the
pruner (`"median"`: `optuna.pruners.MedianPruner`, in the second half of training) judges it
against completed trials. A batch trains all its trials to the end in one call, so pruning saves
no compute here: it marks trials PRUNED, which the TPE sampler ranks below completed ones and
which can never be the best trial. `pruner="none"` selects purely on mean final return, as the
paper does.

A killed sweep leaves every told trial in the database. Trials of the batch it was training keep
heartbeats while they run; the next sweep on the study marks them failed once stale and re-queues
their hyper-parameters (Optuna's `RetryHeartbeatStaleTrialCallback`), so they are trained again.
An exception (e.g. Ctrl-C) instead marks the batch's untold trials failed on the way out.

Each batch is sharded over this process's devices (padded to fill them). Several processes
(`openrl.distributed`) are Optuna's multi-worker model: each runs its share of the trials against
the shared storage, its sampler seeded apart, with `constant_liar` so workers avoid each other's
running trials; `run_sweep` returns once every process has finished its share.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import warnings
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optuna
import sqlalchemy
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec
from jaxtyping import Array, Float, Key
from tqdm.auto import tqdm

from openrl import distributed
from openrl.meta.tasks import Task
from openrl.optim import presets
from openrl.optim.optimizer import OptaxOptimizer

REPORTS_PER_TRIAL = 10
"""Intermediate values each trial reports from its return curve (fewer if training is shorter)."""
SWEEP_VERSION = 2
"""Part of every study's fingerprint; bumped when trial values change meaning, so older studies are
refused rather than mixed in (2: each seed trains on its own draw of a task distribution)."""


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """One optimizer's ranges on one family of environments: learning rate (log-uniform), decay
    rates such as `b1`, `b2` or `decay` (uniform), annealing on/off, and seeds per trial."""

    learning_rate: tuple[float, float]
    decays: Mapping[str, tuple[float, float]]
    seeds: int

    def suggest(self, trial: optuna.trial.BaseTrial) -> tuple[dict[str, float], bool]:
        """Hyper-parameters (optax names) and the annealing flag for `trial`."""
        hyperparams = {"learning_rate": trial.suggest_float("learning_rate", *self.learning_rate, log=True)}
        for name, (low, high) in self.decays.items():
            hyperparams[name] = trial.suggest_float(name, low, high)
        return hyperparams, trial.suggest_categorical("anneal", [True, False])


_DECAY = (0.9, 0.999)
_BETAS = {"b1": _DECAY, "b2": _DECAY}

SPACES: dict[str, dict[str, SearchSpace]] = {
    "minatar": {
        "adam": SearchSpace((1e-3, 1e-2), _BETAS, seeds=4),
        "rmsprop": SearchSpace((1e-3, 1e-2), {"decay": _DECAY}, seeds=4),
        "lion": SearchSpace((1e-4, 1e-3), _BETAS, seeds=4),
    },
    "ant": {
        "adam": SearchSpace((1e-4, 1e-3), _BETAS, seeds=4),
        "rmsprop": SearchSpace((1e-4, 5e-3), {"decay": _DECAY}, seeds=4),
        "lion": SearchSpace((1e-5, 5e-4), _BETAS, seeds=4),
    },
    "gridworld": {
        "adam": SearchSpace((5e-5, 1e-3), _BETAS, seeds=8),
    },
    "cartpole": {
        "adam": SearchSpace((1e-4, 1e-1), _BETAS, seeds=8),
    },
}
"""The paper's search spaces by environment family and optimizer: Table 4 (MinAtar), 5 (Ant), 6 (gridworld);
`cartpole` (the quickstart's task, not in the paper) spans three decades of learning rate around them."""


def space_for(env: str) -> str:
    """The family of `env` whose search space the paper gives (`minatar`, `ant` or `gridworld`), or `cartpole`."""
    if env.endswith("-MinAtar"):
        return "minatar"
    if env == "ant":
        return "ant"
    if "gridworld" in env.lower():
        return "gridworld"
    if env == "CartPole-v1":
        return "cartpole"
    raise ValueError(f"env: the paper gives no search space for {env!r}; choose a space from {sorted(SPACES)}")


def search_space(optimizer: str, space: str) -> SearchSpace:
    """The search space of `optimizer` on the environment family `space`."""
    if optimizer not in presets.HANDCRAFTED:
        raise ValueError(f"optimizer: expected one of {sorted(presets.HANDCRAFTED)}, got {optimizer!r}")
    if space not in SPACES:
        raise ValueError(f"space: expected one of {sorted(SPACES)}, got {space!r}")
    if optimizer not in SPACES[space]:
        raise ValueError(f"optimizer: the paper tunes only {sorted(SPACES[space])} on {space}, got {optimizer!r}")
    return SPACES[space][optimizer]


def default_study_name(optimizer: str, env: str) -> str:
    """The study a sweep of `optimizer` on `env` uses unless told otherwise."""
    return f"{optimizer}-{env}"


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


def _check_storage(storage: str) -> str:
    """`storage` if it is a database URL Optuna's RDB storage can open (for SQLite, a file in an existing directory)."""
    if not isinstance(storage, str):
        raise TypeError(f"storage: expected a database URL such as 'sqlite:///sweeps.db', got {storage!r}")
    try:
        url = sqlalchemy.engine.make_url(storage)
    except sqlalchemy.exc.ArgumentError as error:
        raise ValueError(f"storage: {storage!r} is not a database URL; expected e.g. 'sqlite:///sweeps.db'") from error
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ValueError(f"storage: {storage!r} is an in-memory database; give a file, e.g. 'sqlite:///sweeps.db'")
        directory = os.path.dirname(os.path.abspath(url.database))
        if not os.path.isdir(directory):
            raise ValueError(f"storage: the directory {directory!r} of {storage!r} does not exist; create it first")
    return storage


def _open_storage(storage: str, heartbeat_interval: int) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(
                storage,
                heartbeat_interval=heartbeat_interval,
                grace_period=2 * heartbeat_interval,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
            raise ValueError(f"storage: cannot open {storage!r} ({error})") from error


def _fingerprint(optimizer: str, task: Task, space: str, seeds: int, seed: int) -> dict[str, Any]:
    """What makes trial values comparable; a study is only resumed with the same."""
    ppo = {f.name: getattr(task.config, f.name) for f in dataclasses.fields(task.config)}
    ppo = {k: v.item() if isinstance(v, (np.ndarray, jax.Array)) else v for k, v in ppo.items()}
    return {"version": SWEEP_VERSION, "optimizer": optimizer, "task": task.name, "space": space, "seeds": seeds,
            "seed": seed, "ppo": ppo}


def _load_study(storage: optuna.storages.RDBStorage, name: str, fingerprint: dict[str, Any],
                pruner: optuna.pruners.BasePruner) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", pruner=pruner,
                                load_if_exists=True)
    found = study.user_attrs.get("openrl")
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(f"study_name: study {name!r} minimises; a sweep maximises return, pick another name")
    started = [t for t in study.get_trials(deepcopy=False) if t.state != optuna.trial.TrialState.WAITING]
    if found is None and started:
        raise ValueError(f"study_name: study {name!r} here was not made by `openrl sweep`; pick another name")
    if found is None:
        study.set_user_attr("openrl", fingerprint)
    elif found != fingerprint:
        differing = sorted(k for k in fingerprint if found.get(k) != fingerprint[k])
        raise ValueError(
            f"study_name: study {name!r} was run with different settings (differs in {differing}); "
            "resume it with the same settings or pick another study name"
        )
    return study


@eqx.filter_jit
def _train_batch(
    task: Task, optimizers: OptaxOptimizer, keys: Key[Array, " seeds"]
) -> tuple[Float[Array, "trials seeds"], Float[Array, "trials seeds iterations"]]:
    """Train every trial (stacked hyper-parameters) on every seed; the same seeds for all trials.

    Each seed trains on its own draw of the task (`Task.run_own_draw`), so a distribution is
    sampled once per seed, and every trial meets the same draws.
    """

    def trial(optimizer: OptaxOptimizer):
        results = eqx.filter_vmap(lambda key: task.run_own_draw(optimizer, key))(keys)
        return results.final_return, results.returns

    return eqx.filter_vmap(trial)(optimizers)


class _Heartbeat:
    """Records Optuna heartbeats for `trial_ids` until exit, so trials of a killed sweep go stale."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_ids: list[int], interval: int):
        self._storage, self._trial_ids, self._interval = storage, trial_ids, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _record(self) -> None:
        for trial_id in self._trial_ids:
            self._storage.record_heartbeat(trial_id)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            self._record()

    def __enter__(self) -> _Heartbeat:
        self._record()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def _report_iterations(num_iterations: int) -> list[int]:
    points = np.linspace(0, num_iterations - 1, min(num_iterations, REPORTS_PER_TRIAL)).round()
    return sorted({int(i) for i in points})


def _run_batch(study: optuna.Study, task: Task, optimizer: str, space: SearchSpace, keys: Key[Array, " seeds"],
               size: int, storage: optuna.storages.RDBStorage, heartbeat_interval: int) -> None:
    """Ask `size` trials, train them (one compiled call per annealing flag), then tell each."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        trials = [study.ask() for _ in range(size)]
    pending = list(trials)
    try:
        suggestions = [space.suggest(t) for t in trials]
        study_id = storage.get_study_id_from_name(study.study_name)
        trial_ids = [storage.get_trial_id_from_study_id_trial_number(study_id, t.number) for t in trials]
        final = np.zeros((size, len(keys)))
        curves = np.zeros((size, len(keys), task.config.num_iterations))
        with _Heartbeat(storage, trial_ids, heartbeat_interval):
            for anneal in (True, False):
                group = [i for i, (_, a) in enumerate(suggestions) if a == anneal]
                if not group:
                    continue
                members = [presets.handcrafted(optimizer, anneal=anneal, **suggestions[i][0]) for i in group]
                mesh = distributed.mesh_over(jax.local_devices(), "trials")
                members += members[-1:] * (-len(group) % mesh.size)
                stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)
                group_final, group_curves = distributed.to_host(
                    _train_batch(task, distributed.shard(stacked, mesh, PartitionSpec("trials")), keys))
                final[group], curves[group] = group_final[:len(group)], group_curves[:len(group)]
        for i, trial in enumerate(trials):
            _tell(study, trial, final[i], curves[i].mean(axis=0), task.config.batch_size)
            pending.remove(trial)
    finally:
        for trial in pending:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _tell(study: optuna.Study, trial: optuna.Trial, final: np.ndarray, curve: np.ndarray,
          steps_per_iteration: int) -> None:
    """Report `curve` (mean return per PPO iteration) at evenly spaced steps, then tell prune or final return."""
    trial.set_user_attr("final_returns", final.tolist())
    for i in _report_iterations(len(curve)):
        trial.report(float(curve[i]), step=(i + 1) * steps_per_iteration)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return
    study.tell(trial, float(final.mean()))


@distributed.peer_errors
def run_sweep(
    optimizer: str,
    task: Task,
    *,
    storage: str,
    n_trials: int,
    space: str | None = None,
    study_name: str | None = None,
    batch_size: int = 4,
    seeds: int | None = None,
    seed: int = 0,
    pruner: str = "median",
    heartbeat_interval: int = 60,
    progress: bool = True,
) -> optuna.Study:
    """Run `n_trials` more trials of `optimizer` on `task` in the persistent study `study_name`
    (in all: with several processes, each runs its share).

    - `space`: environment family of the search space (default: from `task.name`, see `space_for`).
    - `study_name`: default `"{optimizer}-{task.name}"`; an existing study is resumed, and must have
      been run with the same optimizer, task, PPO config, space, seeds and seed.
    - `batch_size`: trials trained per compiled call; `seeds`: runs per trial (default: the paper's,
      four, or eight on the gridworld); each trial's value is its mean final return over them.
    - `pruner`: `"median"` or `"none"` (see the module docstring for what pruning means here).
    - `heartbeat_interval`: seconds between heartbeats of running trials; trials of a killed
      sweep are re-queued by the next sweep after twice this.
    - `progress`: a progress bar over this process's trials, updated after each batch.

    Every argument is checked before anything is written or compiled.
    """
    if not isinstance(task, Task):
        raise TypeError(f"task: expected an openrl Task (e.g. openrl.meta.make_task(...)), got {task!r}")
    space = space_for(task.name) if space is None else space
    search = search_space(optimizer, space)
    n_trials = _check_positive_int("n_trials", n_trials)
    batch_size = _check_positive_int("batch_size", batch_size)
    seeds = search.seeds if seeds is None else _check_positive_int("seeds", seeds)
    heartbeat_interval = _check_positive_int("heartbeat_interval", heartbeat_interval)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {seed!r}")
    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=task.config.total_timesteps // 2),
               "none": optuna.pruners.NopPruner}
    if pruner not in pruners:
        raise ValueError(f"pruner: expected one of {sorted(pruners)}, got {pruner!r}")
    study_name = default_study_name(optimizer, task.name) if study_name is None else study_name
    if not isinstance(study_name, str) or not study_name:
        raise ValueError(f"study_name: expected a non-empty str, got {study_name!r}")
    rdb = _open_storage(_check_storage(storage), heartbeat_interval)

    study = _load_study(rdb, study_name, _fingerprint(optimizer, task, space, seeds, seed), pruners[pruner]())
    # Reseeded by history length, so a resumed sweep does not replay the first run's startup samples, and by
    # process, so parallel workers do not draw the same ones.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials) + 1_000_003 * jax.process_index(),
                                               constant_liar=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    keys = jax.random.split(jax.random.key(seed), seeds)
    share = len(range(jax.process_index(), n_trials, jax.process_count()))
    bar = tqdm(total=share, desc="sweep", unit="trial", disable=not progress)
    for start in range(0, share, batch_size):
        _run_batch(study, task, optimizer, search, keys, min(batch_size, share - start), rdb, heartbeat_interval)
        bar.update(min(batch_size, share - start))
        completed = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if completed:
            bar.set_postfix(best=f"{max(completed):.3g}")
    bar.close()
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"openrl sweep {study_name}")
    return study


def best_preset(study: optuna.Study) -> dict[str, Any]:
    """The best completed trial of an `openrl` sweep as a preset (the format `presets.from_sweep` reads)."""
    settings = study.user_attrs.get("openrl")
    if settings is None:
        raise ValueError(f"study: {study.study_name!r} was not made by `openrl sweep`")
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise ValueError(f"study: {study.study_name!r} has no completed trial yet")
    best = study.best_trial
    params = dict(best.params)
    anneal = params.pop("anneal")
    return {
        "version": presets.SWEEP_PRESET_VERSION,
        "optimizer": settings["optimizer"],
        "anneal": anneal,
        "hyperparams": params,
        "sweep": {"study": study.study_name, "trial": best.number, "mean_final_return": best.value,
                  "final_returns": best.user_attrs.get("final_returns"), "task": settings["task"],
                  "seeds": settings["seeds"], "ppo": settings["ppo"]},
    }


def write_preset(study: optuna.Study, path: str | os.PathLike) -> dict[str, Any]:
    """Write `best_preset(study)` to `path` as JSON (atomically) and return it."""
    preset = best_preset(study)
    path = os.fspath(path)
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(preset, f, indent=2)
        f.write("\n")
    os.replace(temporary, path)
    return preset
