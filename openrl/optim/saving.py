"""Save an optimizer with its spec, and load it back from the file alone (`openrl.save` / `openrl.load`).

`save(optimizer, "best.eqx")` writes the values with `eqx.tree_serialise_leaves` and, beside them,
`best.eqx.json`: the spec, i.e. the optimizer's structure (every module's class and static fields,
every array's shape and dtype), a summary (features, head, network size) and the plugin packages
whose classes it uses. `load("best.eqx")` rebuilds the structure from the spec and reads the values
into it, so an optimizer meta-trained from a preset, a feature list or a plugin's features loads
with no other argument. A missing plugin is an error naming the package to install.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import json
import os
import tempfile
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from openrl.optim.optimizer import AbstractOptimizer

FORMAT = "openrl-optimizer"
VERSION = 1
"""Bumped whenever the spec's layout changes; other versions are refused, not misread."""


def spec_path(path: str | os.PathLike) -> str:
    """Where the spec of the optimizer saved at `path` is: `path` + ".json"."""
    return os.fspath(path) + ".json"


def _reference(obj: Any) -> str:
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module is None or name is None or "<" in name:
        raise TypeError(f"cannot save a reference to {obj!r}: it is not importable as module:name")
    try:
        found = functools.reduce(getattr, name.split("."), importlib.import_module(module))
    except (ImportError, AttributeError) as error:
        raise TypeError(f"cannot save a reference to {obj!r}: {module}:{name} does not import") from error
    if found is not obj:
        raise TypeError(f"cannot save a reference to {obj!r}: {module}:{name} is another object")
    return f"{module}:{name}"


def _encode(value: Any, where: str) -> Any:
    """A JSON description of `value`'s structure (arrays as shape and dtype; their values go to the .eqx)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return {"array": list(np.shape(value)), "dtype": str(np.dtype(value.dtype))}
    if isinstance(value, (tuple, list)):
        return {type(value).__name__: [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where}: cannot save a dict with non-string keys")
        return {"dict": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # eqx.Module or a frozen dataclass
        fields = {f.name: _encode(getattr(value, f.name), f"{where}.{f.name}") for f in dataclasses.fields(value)}
        return {"class": _reference(type(value)), "fields": fields}
    if callable(value):
        return {"ref": _reference(value)}
    raise TypeError(f"{where}: cannot save a value of type {type(value).__name__} in an optimizer spec")


def _import(reference: str, plugins: dict[str, str]) -> Any:
    module, name = reference.split(":")
    try:
        return functools.reduce(getattr, name.split("."), importlib.import_module(module))
    except (ImportError, AttributeError) as error:
        package = plugins.get(module.split(".")[0])
        needs = f"the plugin package {package!r} (pip install it)" if package else f"{reference}"
        raise ImportError(f"this saved optimizer needs {needs}: {reference} does not import ({error})") from error


def _decode(value: Any, plugins: dict[str, str]) -> Any:
    if not isinstance(value, dict):
        return value
    if "array" in value:
        return jnp.zeros(value["array"], value["dtype"])
    if "tuple" in value:
        return tuple(_decode(v, plugins) for v in value["tuple"])
    if "list" in value:
        return [_decode(v, plugins) for v in value["list"]]
    if "dict" in value:
        return {k: _decode(v, plugins) for k, v in value["dict"].items()}
    if "ref" in value:
        return _import(value["ref"], plugins)
    cls = _import(value["class"], plugins)
    # The structure is rebuilt field by field, as it was saved, without re-running constructors
    # (which may derive fields or draw initial values); the .eqx file then fills the arrays.
    obj = object.__new__(cls)
    for name, field in value["fields"].items():
        object.__setattr__(obj, name, _decode(field, plugins))
    return obj


def _classes(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["class"]} if "class" in value else {value["ref"]} if "ref" in value else set()
        return found.union(*(_classes(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_classes(v) for v in value))
    return set()


def _plugins(tree: dict) -> dict[str, str]:
    """Top-level module -> distribution package, for every class from outside openrl, jax, equinox, optax."""
    owners = importlib.metadata.packages_distributions()
    found = {}
    for reference in _classes(tree):
        top = reference.split(".")[0].split(":")[0]
        if top not in ("openrl", "jax", "jaxlib", "equinox", "optax", "numpy", "builtins"):
            found[top] = owners.get(top, [top])[0]
    return found


def _summary(optimizer: AbstractOptimizer) -> dict:
    summary: dict[str, Any] = {"optimizer": type(optimizer).__name__}
    features = getattr(getattr(optimizer, "features", None), "features", None)
    if features is not None:
        summary["features"] = [type(f).__name__ for f in features]
    if hasattr(optimizer, "head"):
        summary["head"] = type(optimizer.head).__name__
    network = getattr(optimizer, "network", None)
    if network is not None and hasattr(network, "hidden_layers"):
        summary["size"] = {"gru": network.hidden_size, "width": network.hidden_layers[0].out_features,
                           "depth": len(network.hidden_layers)}
    return summary


def _atomic_write(path: str, write) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(optimizer: AbstractOptimizer, path: str | os.PathLike) -> None:
    """Write `optimizer`'s values to `path` and its spec to `path` + ".json" (each atomically)."""
    if not isinstance(optimizer, AbstractOptimizer):
        raise TypeError(f"optimizer: expected an openrl optimizer, got {optimizer!r}")
    tree = _encode(optimizer, "optimizer")
    spec = {"format": FORMAT, "version": VERSION, **_summary(optimizer), "plugins": sorted(set(_plugins(tree).values())),
            "plugin_modules": _plugins(tree), "tree": tree}
    text = json.dumps(spec, indent=1).encode()
    _atomic_write(spec_path(path), lambda f: f.write(text))
    _atomic_write(os.fspath(path), lambda f: eqx.tree_serialise_leaves(f, optimizer))


def load(path: str | os.PathLike) -> AbstractOptimizer:
    """The optimizer saved at `path` by `save` (or by `openrl meta-train` as `best.eqx`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no saved optimizer at {path!r}")
    if not os.path.isfile(spec_path(path)):
        raise FileNotFoundError(
            f"path: {path!r} has no spec beside it ({spec_path(path)!r}); it was saved without one (before "
            "openrl wrote specs): load it with `eqx.tree_deserialise_leaves(path, <the optimizer it was made from>)`"
        )
    with open(spec_path(path)) as f:
        spec = json.load(f)
    if spec.get("format") != FORMAT or spec.get("version") != VERSION:
        raise ValueError(f"{spec_path(path)}: expected an {FORMAT} spec of version {VERSION}, got "
                         f"{spec.get('format')!r} version {spec.get('version')!r}")
    skeleton = _decode(spec["tree"], spec.get("plugin_modules", {}))
    return eqx.tree_deserialise_leaves(path, skeleton)
