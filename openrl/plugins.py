"""Plugins: a lazy, validated registry of entry points.

A package adds features, heads, optimizers, meta-learners or environments by
declaring entry points in its `pyproject.toml`, e.g.

```toml
[project.entry-points."openrl.features"]
ParamNorm = "my_package:ParamNorm"
```

openrl registers its own built-ins the same way. Listing a group reads only
the installed packages' metadata; a plugin's module is imported by `load`, which
checks the object is what its group expects. `import openrl` never imports a plugin.

One object can serve many names: an entry point may point at a `Family` (e.g. every
gymnax environment, every evosax strategy), which `load` binds to the entry point's name.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import importlib
import importlib.metadata
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any


class PluginError(Exception):
    """A registered plugin failed to import, is the wrong kind of object, or its name is taken twice."""


class PluginWarning(UserWarning):
    """A broken plugin was skipped by `load_all`."""


class Family(abc.ABC):
    """One entry-point object for several names: `load(group, name)` returns `family.bind(name)`.

    Declare each name as its own entry point pointing at the family, so listing and
    conflict detection stay per name:

    ```toml
    [project.entry-points."openrl.envs"]
    Acrobot-v1 = "openrl.rl.builtin_envs:GYMNAX"
    Pendulum-v1 = "openrl.rl.builtin_envs:GYMNAX"
    ```
    """

    @abc.abstractmethod
    def names(self) -> tuple[str, ...]:
        """Every name this family serves."""

    @abc.abstractmethod
    def bind(self, name: str) -> Any:
        """The object registered as `name` (one of `names()`), checked by its group like any other."""


def origin(obj: Any) -> str:
    """Where a class (or an instance's class) comes from: `Name (module m, package p v)`, for error messages."""
    cls = obj if isinstance(obj, type) else type(obj)
    module = cls.__module__
    dists = importlib.metadata.packages_distributions().get(module.partition(".")[0], [])
    package = ""
    if dists:
        try:
            package = f", package {dists[0]} {importlib.metadata.version(dists[0])}"
        except importlib.metadata.PackageNotFoundError:
            package = f", package {dists[0]}"
    return f"{cls.__qualname__} (module {module}{package})"


def _resolve(path: str) -> type:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclasses.dataclass(frozen=True)
class Group:
    """An entry-point group and what a valid object in it is.

    - `subclass_of`: `"module:Class"` every object must subclass (imported only when checking).
    - `returns`: `"module:Class"` a callable object must return an instance of: a class must
      subclass it (checked when loaded), any other callable's result is checked on each call.
    With neither, any callable is valid.
    """

    name: str
    subclass_of: str | None = None
    returns: str | None = None

    @property
    def expected(self) -> str:
        if self.subclass_of is not None:
            return f"a subclass of {self.subclass_of.replace(':', '.')}"
        if self.returns is not None:
            return f"a callable returning an {self.returns.replace(':', '.')} (a subclass, or a factory)"
        return "a callable"

    def check(self, obj: Any, info: EntryPointInfo) -> Any:
        """`obj` if it is valid for this group (wrapped to check what it returns), else a `PluginError`."""
        if self.subclass_of is not None:
            base = self._base(self.subclass_of, info)
            if not (isinstance(obj, type) and issubclass(obj, base)):
                raise PluginError(f"{info} points to {obj!r}; expected {self.expected}")
            return obj
        if not callable(obj):
            raise PluginError(f"{info} points to {obj!r}; expected {self.expected}")
        if self.returns is None:
            return obj
        base = self._base(self.returns, info)
        if isinstance(obj, type):
            if not issubclass(obj, base):
                raise PluginError(f"{info} points to {obj!r}; expected {self.expected}")
            return obj
        return _checked_factory(obj, base, info, self.expected)

    def _base(self, path: str, info: EntryPointInfo) -> type:
        try:
            return _resolve(path)
        except (ImportError, AttributeError) as e:
            raise PluginError(
                f"{info} cannot be checked: {path.replace(':', '.')}, which group {self.name!r} expects, "
                f"is unavailable ({e})"
            ) from e


def _checked_factory(factory: Callable[..., Any], cls: type, info: EntryPointInfo, expected: str) -> Callable[..., Any]:
    @functools.wraps(factory)
    def checked(*args, **kwargs):
        result = factory(*args, **kwargs)
        if not isinstance(result, cls):
            raise PluginError(f"{info} returned a {type(result).__name__}; expected {expected}")
        return result

    return checked


GROUPS: Mapping[str, Group] = types.MappingProxyType(
    {
        group.name: group
        for group in (
            Group("openrl.features", subclass_of="openrl.optim.features:Feature"),
            Group("openrl.heads", subclass_of="openrl.optim.heads:UpdateHead"),
            Group("openrl.optimizers", returns="openrl.optim.optimizer:AbstractOptimizer"),
            Group("openrl.meta_learners", returns="openrl.meta.learners:MetaLearner"),
            Group("openrl.envs", returns="openrl.rl.envs:VecEnv"),
        )
    }
)
"""Every entry-point group openrl reads, by name."""


@dataclasses.dataclass(frozen=True)
class EntryPointInfo:
    """One registered entry point: `name = "value"` in `group`, declared by distribution `package`."""

    group: str
    name: str
    value: str
    package: str
    version: str

    @classmethod
    def from_entry_point(cls, ep: importlib.metadata.EntryPoint) -> EntryPointInfo:
        dist = ep.dist
        package, version = (dist.name, dist.version) if dist is not None else ("<unknown package>", "")
        return cls(ep.group, ep.name, ep.value, package, version)

    def __str__(self) -> str:
        return f"entry point {self.name!r} = {self.value!r} in group {self.group!r} of package {self.package!r}"


def _check_group(group: str) -> Group:
    if group not in GROUPS:
        raise ValueError(f"group: unknown plugin group {group!r}; expected one of {list(GROUPS)}")
    return GROUPS[group]


def _scan(group: str) -> dict[str, tuple[EntryPointInfo, ...]]:
    """Every name in `group`, with each distinct registration of it, sorted by name."""
    _check_group(group)
    found: dict[str, list[EntryPointInfo]] = {}
    for ep in importlib.metadata.entry_points(group=group):
        info = EntryPointInfo.from_entry_point(ep)
        same = found.setdefault(ep.name, [])
        if info not in same:
            same.append(info)
    return {name: tuple(infos) for name, infos in sorted(found.items())}


def available(group: str) -> dict[str, EntryPointInfo]:
    """The names registered exactly once in `group`, without importing any plugin."""
    return {name: infos[0] for name, infos in _scan(group).items() if len(infos) == 1}


def conflicts(group: str) -> dict[str, tuple[EntryPointInfo, ...]]:
    """The names in `group` that more than one package registers; `load` refuses them."""
    return {name: infos for name, infos in _scan(group).items() if len(infos) > 1}


def load(group: str, name: str) -> Any:
    """Import the object registered as `name` in `group` and check it is what the group expects.

    Raises `ValueError` for an unknown group or name, and `PluginError` naming the
    package and entry point when the plugin fails to import, is the wrong kind of
    object, or its name is registered by more than one package.
    """
    kind = _check_group(group)
    scanned = _scan(group)
    infos = scanned.get(name)
    if infos is None:
        raise ValueError(
            f"name: no plugin {name!r} in group {group!r}; available: {list(scanned)}. "
            "Install the package that provides it (`openrl plugins` lists what is installed)"
        )
    if len(infos) > 1:
        raise PluginError(
            f"{group} plugin {name!r} is registered by more than one package: "
            + " and ".join(f"{i.package!r} ({i.value})" for i in infos)
            + "; uninstall all but one of them"
        )
    info = infos[0]
    try:
        obj = importlib.metadata.EntryPoint(info.name, info.value, group).load()
    except Exception as e:
        raise PluginError(f"{info} failed to import: {type(e).__name__}: {e}") from e
    if isinstance(obj, Family):
        if name not in obj.names():
            raise PluginError(f"{info} points to a {type(obj).__name__}, which serves no {name!r}; it serves {list(obj.names())}")
        obj = obj.bind(name)
    return kind.check(obj, info)


def load_all(group: str) -> dict[str, Any]:
    """Every valid object in `group`, by name; a broken or conflicting plugin is skipped with a `PluginWarning`."""
    loaded = {}
    for name in _scan(group):
        try:
            loaded[name] = load(group, name)
        except PluginError as e:
            warnings.warn(f"skipping plugin: {e}", PluginWarning, stacklevel=2)
    return loaded


def describe() -> dict[str, list[tuple[str, str]]]:
    """`(name, package)` of every registration in every group, conflicting ones included."""
    return {group: [(i.name, i.package) for infos in _scan(group).values() for i in infos] for group in GROUPS}


def format_plugins() -> str:
    """The registry as a table, group by group: name, package and version, and any conflict."""
    tables = {
        group: [
            (i.name, f"{i.package} {i.version}".strip(), "CONFLICT" if len(infos) > 1 else "")
            for infos in _scan(group).values()
            for i in infos
        ]
        for group in GROUPS
    }
    rows = [row for table in tables.values() for row in table]
    name_width, package_width = (max((len(row[k]) for row in rows), default=0) for k in range(2))
    lines = []
    for group, table in tables.items():
        lines.append(group)
        lines += [f"  {n:<{name_width}}  {p:<{package_width}}  {c}".rstrip() for n, p, c in table] or ["  (none)"]
    return "\n".join(lines)
