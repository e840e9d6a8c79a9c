"""Optimizers behind one interface: learned (features -> network -> head) and handcrafted (optax)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from openrl.optim.batching import unbatched_on_cpu
from openrl.optim.features import Feature, FeatureInputs, FeatureSet
from openrl.optim.heads import UpdateHead
from openrl.optim.layout import Context, ParamLayout
from openrl.optim.network import SMALL, AbstractNetwork, NetworkSize, PerParameterNetwork


class AbstractOptimizer(eqx.Module):
    """Optax-shaped optimizer: `init(params, layout)` and `update(grads, state, params, *, ctx, key)`.

    Updates are added to the parameters (optax's sign convention). Array fields are
    meta-parameters: `eqx.partition(optimizer, eqx.is_inexact_array)`.
    """

    @abc.abstractmethod
    def init(self, params: PyTree, layout: ParamLayout | None = None) -> PyTree:
        """The optimizer state for `params` (`layout` describes their leaves; derived from them if `None`)."""

    @abc.abstractmethod
    def update(
        self, grads: PyTree, state: PyTree, params: PyTree, *, ctx: Context, key: PRNGKeyArray
    ) -> tuple[PyTree, PyTree]:
        """`(updates, new_state)`: updates are added to the parameters."""

    def update_with_stats(
        self, grads: PyTree, state: PyTree, params: PyTree, *, ctx: Context, key: PRNGKeyArray
    ) -> tuple[PyTree, PyTree, dict[str, Float[Array, " n"]]]:
        """`update`, plus flat per-parameter analysis quantities (paper Appendix F).

        In the paper's sign convention (parameters move by `-u`): `deterministic`, the update
        before any noise; `noise`, the noise added; `noise_std`, the noise's standard deviation.
        Handcrafted optimizers have no noise.
        """
        updates, state = self.update(grads, state, params, ctx=ctx, key=key)
        flat, _ = ravel_pytree(updates)
        zeros = jnp.zeros_like(flat)
        return updates, state, {"deterministic": -flat, "noise": zeros, "noise_std": zeros}

    def layout_users(self) -> tuple[str, ...]:
        """Names of the parts that need a layout with a `LeafInfo` per parameter array (none by default)."""
        return ()

    def as_optax(self, layout: ParamLayout | None = None) -> optax.GradientTransformationExtraArgs:
        """This optimizer as an optax transformation; `ctx` and `key` are required extra args.

        `layout` must have a `LeafInfo` per parameter array if any part needs one (`layout_users`):
        `openrl.optim.mlp_layout(model)` builds it for models made of `eqx.nn.MLP`s.
        """
        users = self.layout_users()
        if users and (layout is None or layout.infos is None):
            raise ValueError(
                f"as_optax: {', '.join(users)} need(s) each parameter's network and layer: pass "
                "`as_optax(layout)` with a `LeafInfo` per parameter array, e.g. `openrl.optim.mlp_layout(model)` "
                "for models made of eqx.nn.MLPs, or `ParamLayout.from_tree(params, infos)`"
            )

        def init_fn(params):
            return self.init(params, layout)

        def update_fn(updates, state, params=None, *, ctx: Context = Context(), key: PRNGKeyArray | None = None, **_):
            if params is None or key is None:
                raise ValueError("as_optax: update needs `params` and the keyword extra arg `key` (a PRNG key)")
            return self.update(updates, state, params, ctx=ctx, key=key)

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class LearnedState(eqx.Module):
    """Per-parameter state of a learned optimizer: feature states and the GRU hidden state."""

    features: tuple[Any, ...]
    hidden: Float[Array, "h n"]
    layout: ParamLayout = eqx.field(static=True)


class Optimizer(AbstractOptimizer):
    """A learned optimizer composed of features, a per-parameter network and an update head.

    The network's input and output sizes are derived from `features` and `head`.
    With `key=None` the meta-parameters start at zero, as the paper's ES does;
    `network=` reuses an existing (e.g. trained) network instead, which must fit.
    """

    features: FeatureSet
    network: AbstractNetwork
    head: UpdateHead
    zero_mean: bool = eqx.field(static=True)

    def __init__(
        self,
        features: list[Feature] | tuple[Feature, ...] | FeatureSet,
        head: UpdateHead,
        *,
        size: NetworkSize = SMALL,
        zero_mean: bool = True,
        key: PRNGKeyArray | None = None,
        network: AbstractNetwork | None = None,
    ):
        self.features = features if isinstance(features, FeatureSet) else FeatureSet(features)
        if not isinstance(head, UpdateHead):
            raise TypeError(f"head: expected an openrl UpdateHead instance, got {head!r}")
        self.head = head
        self.network = (
            # One compiled initialisation instead of many small eager ops.
            eqx.filter_jit(PerParameterNetwork)(self.features.num_channels, head.num_outputs, size, key=key)
            if network is None
            else network
        )
        self.zero_mean = zero_mean

    def __check_init__(self):
        if self.network.in_size != self.features.num_channels:
            raise ValueError(
                f"features: give {self.features.num_channels} inputs, the network takes {self.network.in_size}"
            )
        if self.network.out_size != self.head.num_outputs:
            raise ValueError(
                f"head: {type(self.head).__name__} needs {self.head.num_outputs} network outputs, "
                f"the network gives {self.network.out_size}"
            )

    def layout_users(self) -> tuple[str, ...]:
        parts = [*self.features.features, self.head]
        return tuple(type(part).__name__ for part in parts if part.needs_layout)

    def init(self, params, layout=None):
        layout = ParamLayout.from_tree(params) if layout is None else layout
        if self.head.needs_layout:
            layout.require_infos(type(self.head).__name__)
        return LearnedState(
            self.features.init(layout),
            jnp.zeros((self.network.hidden_size, layout.num_params), jnp.float32),
            layout,
        )

    def update(self, grads, state, params, *, ctx, key):
        update, state, _ = self.update_with_stats(grads, state, params, ctx=ctx, key=key)
        return update, state

    def update_with_stats(self, grads, state: LearnedState, params, *, ctx, key):
        """`update`, plus the flat update before noise and zero-meaning, the noise and its std (Appendix F)."""
        self.features.check_context(ctx)
        with jax.named_scope("openrl.update"):
            flat_grad, unravel = ravel_pytree(grads)
            flat_param, _ = ravel_pytree(params)
        layout = state.layout
        inputs = FeatureInputs(flat_grad, flat_param, ctx, layout)
        outputs, feature_states, hidden = _network_outputs(self, inputs, state.features, state.hidden)
        with jax.named_scope("openrl.head"):
            step = self.head(outputs, inputs, key=key)
            deterministic = self.head.deterministic(outputs, inputs)
            stats = {"deterministic": deterministic, "noise": step - deterministic,
                     "noise_std": self.head.noise_std(outputs, inputs)}
        with jax.named_scope("openrl.update"):
            if self.zero_mean:
                step = step - step.mean()
            return unravel(-step), LearnedState(feature_states, hidden, layout), stats


@unbatched_on_cpu
def _network_outputs(
    optimizer: Optimizer, inputs: FeatureInputs, feature_states: tuple, hidden: Float[Array, "h n"]
) -> tuple[Float[Array, "k n"], tuple, Float[Array, "h n"]]:
    """Features -> per-parameter network: the head's inputs and the new feature and GRU states.

    The costly per-parameter part; on CPU, vmapped seeds or population members each run their own copy (`unbatched_on_cpu`).
    """
    with jax.named_scope("openrl.features"):
        x, feature_states = optimizer.features(inputs, feature_states)
    outputs, hidden = optimizer.network(x, hidden)
    return outputs, feature_states, hidden


class OptaxOptimizer(AbstractOptimizer):
    """A handcrafted optax optimizer with array hyper-parameters and optional linear LR annealing.

    `factory(**hyperparams)` builds the optax transformation (e.g. `optax.adam`);
    the hyper-parameters are arrays, so sweeps can vmap over them. With `anneal`,
    the update is scaled by `1 - iteration / num_iterations` from the context.
    """

    factory: Callable[..., optax.GradientTransformation] = eqx.field(static=True)
    hyperparams: dict[str, Float[Array, ""]]
    anneal: bool = eqx.field(static=True)

    def __init__(self, factory: Callable[..., optax.GradientTransformation], *, anneal: bool = False, **hyperparams: float):
        if not callable(factory):
            raise TypeError(f"factory: expected an optax optimizer constructor such as optax.adam, got {factory!r}")
        self.factory = factory
        self.hyperparams = {name: jnp.asarray(value, jnp.float32) for name, value in hyperparams.items()}
        self.anneal = anneal

    @property
    def transform(self) -> optax.GradientTransformation:
        return self.factory(**self.hyperparams)

    def init(self, params, layout=None):
        return self.transform.init(params)

    def update(self, grads, state, params, *, ctx, key):
        updates, state = self.transform.update(grads, state, params)
        if self.anneal:
            if ctx.iteration is None or ctx.num_iterations is None:
                raise ValueError("ctx: learning-rate annealing needs Context(iteration=..., num_iterations=...)")
            fraction = 1.0 - ctx.iteration / ctx.num_iterations
            updates = jax.tree.map(lambda u: u * fraction, updates)
        return updates, state
