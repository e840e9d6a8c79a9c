"""Atomic checkpoints of a meta-training run (orbax), with a clear error on any mismatch."""

from __future__ import annotations

import os
from typing import Any

from jaxtyping import PyTree


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be resumed: corrupt, or from another configuration."""


class Checkpointer:
    """Saves `(state PyTree, JSON metadata)` pairs under `directory`; keeps the last two.

    orbax writes each step to a temporary directory and renames it when complete,
    so a crash leaves the previous checkpoint intact.
    """

    def __init__(self, directory: str | os.PathLike):
        import orbax.checkpoint as ocp  # imported on first use: `import openrl` stays light

        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: PyTree, metadata: dict[str, Any]) -> None:
        import orbax.checkpoint as ocp

        self._manager.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(metadata))
        )
        self._manager.wait_until_finished()

    def restore(self, template: PyTree, fingerprint: dict[str, Any]) -> tuple[int, PyTree, dict[str, Any]]:
        """The latest checkpoint, checked against `fingerprint` and restored into `template`'s structure."""
        import orbax.checkpoint as ocp

        step = self.latest()
        if step is None:
            raise CheckpointError(f"{self.directory}: no checkpoint to resume from")
        try:
            meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as error:  # orbax raises many types for unreadable files
            raise CheckpointError(f"{self.directory}: checkpoint {step} is unreadable ({error})") from error
        found = meta.get("fingerprint") if isinstance(meta, dict) else None
        if found != fingerprint:
            differing = sorted(k for k in set(fingerprint) | set(found or {}) if (found or {}).get(k) != fingerprint.get(k))
            raise CheckpointError(
                f"{self.directory}: checkpoint {step} was written by a different configuration "
                f"(differs in {differing}); use another output directory or the same settings"
            )
        try:
            state = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(template))
            )["state"]
        except Exception as error:
            raise CheckpointError(f"{self.directory}: checkpoint {step} does not match this run ({error})") from error
        return step, state, meta
