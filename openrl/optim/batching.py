"""How per-parameter computations batch under `vmap` (seeds, population members).

On CPU, `unbatched_on_cpu` gives each vmapped member its own copy of a learned optimizer's
per-parameter pipeline; on accelerators it is plain `vmap`. The choice is made once, on first use,
from `jax.default_backend()`, and `set_unbatched_on_cpu` overrides it (before anything is traced:
compiled programs keep the choice they were traced with).

The CPU rule is a `jax.custom_batching.custom_vmap`, which reverse-mode autodiff cannot go through:
differentiating an optimizer update (meta-gradients, e.g. through `Optimizer.as_optax`) works on
GPU/TPU as it is, and on CPU after `set_unbatched_on_cpu(False)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

MAX_UNROLLED_MEMBERS = 16
"""Beyond this many members a CPU `vmap` runs them in a `lax.map`, to bound compile time."""

MIN_UNBATCHED_SIZE = 2**17
"""Members whose largest array has fewer elements batch as usual under `vmap`, on CPU too.

Per-member copies pay off for large members and cost for small ones (2-core CPU, 2026-12-01): a
MinAtar agent's OPEN state (8 x 59,908 GRU state) ran 4 seeds at ~1.2x the per-seed cost of one
run as copies against ~2x batched, while a CartPole agent's (8 x 9,155) ran a 32-member meta-training
generation in 39.0 s as copies (a `lax.map` past `MAX_UNROLLED_MEMBERS`) against 22.6 s batched."""

_unbatched: bool | None = None


def unbatched_on_cpu_enabled() -> bool:
    """Whether `unbatched_on_cpu` functions split vmapped members: `set_unbatched_on_cpu`'s value, else
    (decided on first use and kept) whether JAX's default backend is the CPU."""
    global _unbatched
    if _unbatched is None:
        _unbatched = jax.default_backend() == "cpu"
    return _unbatched


def set_unbatched_on_cpu(enabled: bool | None) -> None:
    """Turn the CPU rule on or off for everything traced from now on; `None` decides from the backend again.

    Off, vmapped members batch as usual and updates are reverse-differentiable on every backend.
    """
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"enabled: expected True, False or None, got {enabled!r}")
    global _unbatched
    _unbatched = enabled


def unbatched_on_cpu(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` whose `vmap` computes each batch member separately when `unbatched_on_cpu_enabled()`.

    Inside PPO's `lax.scan`, XLA's CPU backend runs each elementwise fusion on at most a couple of
    threads, and spreads work over cores mostly by running independent operations concurrently. A
    learned optimizer's per-parameter work is dozens of `[channels, num_params]` passes: batched over
    4 seeds it ran at ~2x the per-seed cost of one run on a 2-core CPU, while separate per-member
    copies (independent, so they run side by side) cost ~1.2x. Up to `MAX_UNROLLED_MEMBERS` members
    are unrolled, more run one at a time in a `lax.map`; members smaller than `MIN_UNBATCHED_SIZE`
    batch as usual. Arguments are PyTrees of arrays. Where the rule is off (accelerators, or
    `set_unbatched_on_cpu(False)`), this is `fn` itself.
    """
    batched_fn = jax.custom_batching.custom_vmap(fn)

    @batched_fn.def_vmap
    def rule(axis_size: int, in_batched: list, *args: Any) -> tuple[Any, Any]:
        leaves, treedef = jax.tree.flatten(list(args))
        flags = jax.tree.leaves(in_batched)

        def call(function: Callable[..., Any], mapped: list[jax.Array]) -> Any:
            members = iter(mapped)
            return function(*jax.tree.unflatten(treedef, [next(members) if b else a for a, b in zip(leaves, flags)]))

        mapped = [a for a, b in zip(leaves, flags) if b]
        if max(a.size // axis_size for a in mapped) < MIN_UNBATCHED_SIZE:
            out = jax.vmap(functools.partial(call, fn))(mapped)
        elif axis_size > MAX_UNROLLED_MEMBERS:
            out = jax.lax.map(functools.partial(call, batched_fn), mapped)
        else:
            outs = [call(batched_fn, [a[i] for a in mapped]) for i in range(axis_size)]
            out = jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
        return out, jax.tree.map(lambda _: True, out)

    @functools.wraps(fn)
    def dispatch(*args: Any) -> Any:
        return batched_fn(*args) if unbatched_on_cpu_enabled() else fn(*args)

    return dispatch
