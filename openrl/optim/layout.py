"""What a learned optimizer knows about the parameters it updates, and the per-step context."""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, Float, Int, PyTree


@dataclasses.dataclass(frozen=True)
class LeafInfo:
    """Where one parameter tensor sits in the agent.

    - `network`: the network the tensor belongs to (`"actor"` gets exploration noise).
    - `layer`, `num_layers`: its layer index and the layer count of its network.
    - `neuron_layer`: index into `Context.activations` of the layer it feeds; None for a tensor that
      feeds no neuron (a Gaussian policy's log-std), whose dormancy score is 1, as in OPEN's code.
    - `neuron_axis`: the tensor axis that indexes the downstream neuron (None if `neuron_layer` is).
    """

    network: str
    layer: int
    num_layers: int
    neuron_layer: int | None = None
    neuron_axis: int | None = None

    @property
    def layer_proportion(self) -> float:
        return self.layer / (self.num_layers - 1) if self.num_layers > 1 else 0.0


@dataclasses.dataclass(frozen=True)
class ParamLayout:
    """Static description of a parameter PyTree, flattened in `jax.tree.leaves` order.

    Built once per run from the agent (`ParamLayout.from_tree`); every per-element
    constant (actor mask, layer proportion, neuron index) is a NumPy array folded
    into the compiled program, so it costs nothing per step.
    """

    shapes: tuple[tuple[int, ...], ...]
    infos: tuple[LeafInfo, ...] | None = None

    @classmethod
    def from_tree(cls, params: PyTree, infos: PyTree | None = None) -> ParamLayout:
        """Describe `params`; `infos` is a PyTree of `LeafInfo` with the same structure."""
        leaves = jax.tree.leaves(params)
        shapes = tuple(tuple(np.shape(leaf)) for leaf in leaves)
        if infos is None:
            return cls(shapes)
        info_leaves = jax.tree.leaves(infos, is_leaf=lambda x: isinstance(x, LeafInfo))
        if len(info_leaves) != len(leaves) or not all(isinstance(i, LeafInfo) for i in info_leaves):
            raise ValueError(
                f"infos: expected one LeafInfo per parameter array ({len(leaves)}), "
                f"got {len(info_leaves)} leaves of types {sorted({type(i).__name__ for i in info_leaves})}"
            )
        for shape, info in zip(shapes, info_leaves):
            if info.neuron_axis is not None and info.neuron_axis >= len(shape):
                raise ValueError(f"infos: neuron_axis {info.neuron_axis} out of range for shape {shape}")
        return cls(shapes, tuple(info_leaves))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s, dtype=np.int64)) for s in self.shapes)

    @property
    def num_params(self) -> int:
        return sum(self.sizes)

    def require_infos(self, who: str) -> tuple[LeafInfo, ...]:
        """The per-leaf infos, or a clear error naming `who` needs them."""
        if self.infos is None:
            raise ValueError(
                f"{who} needs to know each parameter's network and layer: pass "
                "`layout=ParamLayout.from_tree(params, infos)` (e.g. `agent.layout()`) to `init`"
            )
        return self.infos

    def per_element(self, values: list[float] | np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Repeat one value per leaf over that leaf's elements."""
        return np.repeat(np.asarray(values, dtype=dtype), self.sizes)

    def actor_mask(self) -> np.ndarray:
        infos = self.require_infos("the actor-noise head")
        return self.per_element([float(i.network == "actor") for i in infos])

    def layer_proportion(self) -> np.ndarray:
        infos = self.require_infos("LayerProp")
        return self.per_element([i.layer_proportion for i in infos])

    def neuron_index(self, widths: tuple[int, ...]) -> np.ndarray:
        """Index of each element's downstream neuron in the concatenated activations; `sum(widths)`
        (one past the last neuron) for elements of tensors that feed no neuron."""
        infos = self.require_infos("Dormancy")
        layers = [i.neuron_layer for i in infos if i.neuron_layer is not None]
        if layers and max(layers) >= len(widths):
            raise ValueError(
                f"Dormancy: the layout's parameters feed {max(layers) + 1} layers of neurons, but ctx.activations "
                f"has {len(widths)}; give one activity array per layer (output layers included), in the order "
                "of the layout's `neuron_layer` indices"
            )
        starts = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        parts = []
        for shape, info in zip(self.shapes, infos):
            if info.neuron_layer is None:
                parts.append(np.full(int(np.prod(shape, dtype=np.int64)), starts[-1]))
                continue
            if info.neuron_axis is None:
                raise ValueError(f"Dormancy: parameter of shape {shape} in {info} has no downstream neuron")
            if shape[info.neuron_axis] != widths[info.neuron_layer]:
                raise ValueError(
                    f"Dormancy: parameter of shape {shape} maps axis {info.neuron_axis} to layer "
                    f"{info.neuron_layer}, whose activations have width {widths[info.neuron_layer]}"
                )
            idx = np.indices(shape)[info.neuron_axis] if shape else np.zeros((), np.int64)
            parts.append(idx.reshape(-1) + starts[info.neuron_layer])
        return np.concatenate(parts).astype(np.int32)

    def segment_means(self, x: Float[Array, "c n"]) -> Float[Array, "c n"]:
        """Mean of `x` over each parameter tensor (along the last axis), broadcast back to its elements."""
        parts = jax.numpy.split(x, np.cumsum(self.sizes)[:-1], axis=1)
        return jax.numpy.concatenate(
            [jax.numpy.broadcast_to(part.mean(axis=1, keepdims=True), part.shape) for part in parts], axis=1
        )


class Context(eqx.Module):
    """What the training loop tells the optimizer at each update.

    Fields a feature needs must be set; the others may stay None.

    - `iteration`, `num_iterations`: the current batch (PPO iteration) and how many there are.
    - `epoch`, `num_epochs`: the current pass over this batch and how many there are.
    - `activations`: per layer, the mean |activation| of each neuron over the minibatch.
    - `loss`: the training loss of the minibatch the gradients come from (VeLO reads it).
    - `num_updates`: how many optimizer updates the whole run makes (VeLO's horizon).
    - `extras`: any other named arrays a training loop adds for the features that read them
      (a feature lists the names in `requires`), so a new signal needs no change here:
      `Context(iteration=i, extras={"entropy": entropy})`.
    """

    iteration: Int[Array, ""] | None = None
    epoch: Int[Array, ""] | None = None
    activations: tuple[Float[Array, " _width"], ...] | None = None
    loss: Float[Array, ""] | None = None
    extras: dict[str, Array] = eqx.field(default_factory=dict)
    num_iterations: int | None = eqx.field(static=True, default=None)
    num_epochs: int | None = eqx.field(static=True, default=None)
    num_updates: int | None = eqx.field(static=True, default=None)
