"""How per-parameter computations batch under `vmap` (seeds, population members)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

MAX_UNROLLED_MEMBERS = 16
"""Beyond this many members a CPU `vmap` runs them in a `lax.map`, to bound compile time."""


def unbatched_on_cpu(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` whose `vmap` on CPU computes each batch member separately; other backends batch as usual.

    Inside PPO's `lax.scan`, XLA's CPU backend runs each elementwise fusion on one thread, and
    spreads work over cores only by running independent operations concurrently. A learned
    optimizer's per-parameter work is dozens of `[channels, num_params]` elementwise passes:
    batched over 4 seeds it ran at ~2x the per-seed cost of one run on a 2-core CPU, while
    separate per-member copies (independent, so they run side by side) cost ~1.2x. Up to
    `MAX_UNROLLED_MEMBERS` members are unrolled, more run one at a time in a `lax.map`.
    Accelerators want the batch, so they keep `vmap`'s own rule. Arguments are PyTrees of arrays;
    `fn` is not reverse-differentiable (`custom_vmap`), which evolution strategies never need.
    """
    batched_fn = jax.custom_batching.custom_vmap(fn)

    @batched_fn.def_vmap
    def rule(axis_size: int, in_batched: list, *args: Any) -> tuple[Any, Any]:
        if jax.default_backend() != "cpu":
            axes = tuple(jax.tree.map(lambda batched: 0 if batched else None, in_batched))
            out = jax.vmap(fn, in_axes=axes, axis_size=axis_size)(*args)
            return out, jax.tree.map(lambda _: True, out)
        leaves, treedef = jax.tree.flatten(list(args))
        flags = jax.tree.leaves(in_batched)

        def member(mapped: list[jax.Array]) -> Any:
            members = iter(mapped)
            return batched_fn(*jax.tree.unflatten(treedef, [next(members) if b else a for a, b in zip(leaves, flags)]))

        mapped = [a for a, b in zip(leaves, flags) if b]
        if axis_size > MAX_UNROLLED_MEMBERS:
            out = jax.lax.map(member, mapped)
        else:
            outs = [member([a[i] for a in mapped]) for i in range(axis_size)]
            out = jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
        return out, jax.tree.map(lambda _: True, out)

    return batched_fn
