"""Experiment tracking: metrics per meta-generation and per evaluation, to JSONL, TensorBoard or Weights & Biases.

One small interface, `Logger`: `log(metrics, step)` with flat `{name: number}` metrics, and
`close()`. `openrl.meta_train` and `openrl.evaluate` take `loggers=[...]`:

```python
from openrl.tracking import TensorBoardLogger

with TensorBoardLogger("runs/breakout/tb") as tb:
    result = orl.meta_train(learner, optimizer, task, config, out_dir="runs/breakout", loggers=[tb])
```

JSONL is the default and needs nothing: `meta_train(out_dir=...)` always writes
`metrics.jsonl` and `evaluate(out_dir=...)` `results.jsonl`. TensorBoard
(`pip install 'openrl[tensorboard]'`, tensorboardX) and Weights & Biases (`pip install
'openrl[wandb]'`) are optional; selecting one that is not installed is an `ImportError`
that says what to install.
"""

from __future__ import annotations

import abc
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, final

__all__ = ["Logger", "JsonlLogger", "TensorBoardLogger", "WandbLogger", "LOGGERS", "make_logger"]


class Logger(abc.ABC):
    """Receives flat `{name: number}` metrics at integer steps (a generation, an evaluation)."""

    @abc.abstractmethod
    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Record `metrics` (names may hold `/` to group them) at `step`."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release the logger's files or connection."""

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """`metrics` checked to be names -> real numbers (bools and ints included), as floats."""
    out = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"metrics: names must be str, got {name!r}")
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metrics[{name!r}]: expected a real number, got {value!r}") from None
    return out


def _check_step(step: int) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step: expected an int >= 0, got {step!r}")
    return step


@final
class JsonlLogger(Logger):
    """One JSON object per `log` call, `{step_key: step, **metrics}`, appended to `path`.

    `history` (records already in `{step_key: ..., ...}` form) first replaces the file's
    contents atomically: a resumed run rewrites the lines of the checkpointed generations
    and drops any written after the checkpoint.
    """

    def __init__(self, path: str | os.PathLike, *, step_key: str = "step",
                 history: Sequence[Mapping[str, Any]] | None = None):
        self.path = os.fspath(path)
        self.step_key = step_key
        if not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
            raise FileNotFoundError(f"path: the directory of {self.path!r} does not exist")
        if history is not None:
            with open(self.path + ".tmp", "w") as f:
                f.writelines(json.dumps(dict(r)) + "\n" for r in history)
            os.replace(self.path + ".tmp", self.path)

    def log(self, metrics, step):
        record = {self.step_key: _check_step(step), **metrics}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def close(self):
        """Nothing to release: every line is written and closed by `log`."""


@final
class TensorBoardLogger(Logger):
    """Scalars in a TensorBoard event file under `log_dir` (tensorboardX; `pip install 'openrl[tensorboard]'`).

    Non-finite values are skipped (TensorBoard draws them as gaps anyway).
    """

    def __init__(self, log_dir: str | os.PathLike, *, flush_secs: int = 30):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as error:
            raise ImportError(
                "TensorBoardLogger needs tensorboardX, an optional dependency: pip install 'openrl[tensorboard]'"
            ) from error
        self.log_dir = os.fspath(log_dir)
        self._writer = SummaryWriter(logdir=self.log_dir, flush_secs=flush_secs)

    def log(self, metrics, step):
        step = _check_step(step)
        for name, value in _scalars(metrics).items():
            if math.isfinite(value):
                self._writer.add_scalar(name, value, global_step=step)

    def close(self):
        self._writer.close()


@final
class WandbLogger(Logger):
    """A Weights & Biases run (`pip install 'openrl[wandb]'`); keyword arguments go to `wandb.init`.

    openrl's step is logged as the metric `step` rather than as W&B's own step, which must only
    increase: one run can then hold a meta-training's generations and a later evaluation.
    """

    def __init__(self, **init_kwargs: Any):
        try:
            import wandb
        except ImportError as error:
            raise ImportError(
                "WandbLogger needs wandb, an optional dependency: pip install 'openrl[wandb]'"
            ) from error
        self._run = wandb.init(**init_kwargs)

    def log(self, metrics, step):
        self._run.log({**_scalars(metrics), "step": _check_step(step)})

    def close(self):
        self._run.finish()


LOGGERS = {"tensorboard": TensorBoardLogger, "wandb": WandbLogger}
"""Optional trackers by the name the CLI selects them with (JSONL is always written)."""


def make_logger(name: str, out_dir: str | os.PathLike) -> Logger:
    """The tracker `name` ("tensorboard" or "wandb") for a run writing to `out_dir`.

    TensorBoard writes under `out_dir/tensorboard`; W&B gets `dir=out_dir` and the directory's
    name as the run's name, and reads its `WANDB_*` variables for the project, entity and mode.
    """
    if name not in LOGGERS:
        raise ValueError(f"logger: expected one of {sorted(LOGGERS)}, got {name!r}")
    out_dir = os.fspath(out_dir)
    if name == "tensorboard":
        return TensorBoardLogger(os.path.join(out_dir, "tensorboard"))
    return WandbLogger(dir=out_dir, name=os.path.basename(os.path.abspath(out_dir)))
