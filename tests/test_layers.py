"""The package's shape: layers import only downwards, no import cycles, abstract-or-final classes,
a light and side-effect-free `import openrl`, and every imported package declared."""

import ast
import importlib
import importlib.metadata
import inspect
import json
import pathlib
import subprocess
import sys
import tomllib

import equinox as eqx
import pytest

from openrl.meta.tasks import Task
from openrl.optim.network import AbstractNetwork
from openrl.optim.optimizer import AbstractOptimizer
from openrl.tracking import Logger

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "openrl"

LAYERS = {
    "openrl.plugins": 0, "openrl.tracking": 0,
    "openrl.optim": 1, "openrl.rl": 2, "openrl.meta": 3, "openrl.distributed": 3, "openrl.eval": 4,
    "openrl.cli": 5, "openrl.shell": 5, "openrl.eval.commands": 5, "openrl.quickstart": 5, "openrl": 6,
}
"""Lower layers never import higher ones: optim < rl < meta < eval < cli. `plugins` (entry points,
loaded by name at run time) and `tracking` (metrics sinks) import nothing of openrl's.
`distributed` (devices and hosts) serves meta-training and evaluation; `eval.commands` is the
command line of the evaluation commands."""

HEAVY = ("optuna", "sqlalchemy", "orbax", "flax", "matplotlib", "tensorboardX", "wandb")
"""Imported on first use, never by `import openrl`."""


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return LAYERS[module]


def imports(module: str) -> set[str]:
    """The openrl modules `module` imports anywhere (functions and `TYPE_CHECKING` blocks included)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from a import b` imports the module a.b when there is one, else a.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found |= {n for n in names if n in MODULES and n != module}
    return found


GRAPH = {module: imports(module) for module in MODULES}


def test_lower_layers_never_import_higher_ones():
    upward = [f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
              for m, deps in GRAPH.items() for d in sorted(deps) if layer(d) > layer(m)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    # A package's __init__ importing its own submodules is how it re-exports them, not a cycle.
    graph = {m: {d for d in deps if not (MODULES[m].name == "__init__.py" and d.startswith(m + "."))}
             for m, deps in GRAPH.items()}
    cycles, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_the_layering_check_sees_upward_and_lazy_imports():
    assert "openrl.eval.report" in GRAPH["openrl.eval.evaluation"]
    assert "openrl.rl.envs" in GRAPH["openrl.meta.tasks"]  # imported inside make_task
    assert layer("openrl.eval.plots") > layer("openrl.meta.train")
    assert "openrl.eval.plots" not in GRAPH["openrl.meta.train"]


def classes():
    for module in MODULES:
        for _, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            if cls.__module__ == module:
                yield cls


def is_abstract(cls: type) -> bool:
    return inspect.isabstract(cls) or bool(getattr(cls, "__abstractvars__", None)) or bool(
        getattr(cls, "__abstractclassvars__", None)) or cls.__name__.startswith("Abstract")


def test_concrete_classes_are_final():
    subclassed = [f"{cls.__module__}.{cls.__qualname__} subclasses the concrete {base.__module__}.{base.__qualname__}"
                  for cls in classes() if issubclass(cls, (eqx.Module, Logger))
                  for base in cls.__mro__[1:] if base.__module__.startswith("openrl") and not is_abstract(base)]
    assert not subclassed, "\n".join(subclassed)


def test_abstract_fields_are_seen_by_equinox():
    # Under `from __future__ import annotations` an `eqx.AbstractVar[...]` annotation is a string, which
    # equinox does not recognise: it silently becomes an ordinary field and the class is not abstract.
    stringified = [f"{cls.__module__}.{cls.__qualname__}.{name}: {hint}" for cls in classes()
                   if issubclass(cls, eqx.Module) for name, hint in inspect.get_annotations(cls).items()
                   if isinstance(hint, str) and ("AbstractVar[" in hint or "AbstractClassVar[" in hint)]
    assert not stringified, "\n".join(stringified)
    assert Task.__abstractvars__ == {"name", "config"}


@pytest.mark.parametrize("base", [AbstractOptimizer, AbstractNetwork, Task, Logger])
def test_abstract_bases_cannot_be_instantiated(base):
    assert inspect.isabstract(base)
    with pytest.raises(TypeError, match="abstract"):
        base()


def test_a_subclass_missing_an_abstract_method_cannot_be_instantiated():
    class InitOnly(AbstractOptimizer):
        def init(self, params, layout=None):
            return ()

    with pytest.raises(TypeError, match="abstract method.*update"):
        InitOnly()


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_openrl_is_light_and_has_no_side_effects():
    loaded = json.loads(run_python(
        f"import sys, json, openrl; print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"))
    assert loaded == []


def test_writing_figures_keeps_the_users_matplotlib_backend(tmp_path):
    out = run_python(
        "import matplotlib; matplotlib.use('svg'); import numpy as np; import openrl; "
        "from openrl.eval.plots import plot_curves; "
        f"plot_curves({{'a': np.ones((2, 3))}}, {str(tmp_path / 'c.png')!r}, ylabel='y'); "
        "import sys; print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    assert out.split() == ["svg", "False"]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def distribution_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0].strip()
        for stop in "<>=!~[ ":
            name = name.split(stop)[0]
        names.add(name.lower().replace("_", "-"))
    return names


def test_every_imported_package_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = distribution_names(project["dependencies"])
    extras = {name: distribution_names(reqs) for name, reqs in project["optional-dependencies"].items()}
    optional = set().union(*extras.values())
    providers = importlib.metadata.packages_distributions()
    stdlib = sys.stdlib_module_names
    missing = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in stdlib or top == "openrl":
                    continue
                if top not in providers:
                    # Not installed here: an optional extra's package (e.g. wandb) must name it.
                    if top.lower() not in optional:
                        missing.append(f"{module} imports {top}, which no installed distribution provides")
                    continue
                dists = {d.lower().replace("_", "-") for d in providers[top]}
                if not dists & (declared | optional):
                    missing.append(f"{module} imports {top} (from {sorted(dists)}), not declared in pyproject.toml")
    assert not missing, "\n".join(sorted(set(missing)))


def test_optional_trackers_are_extras_not_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = distribution_names(project["dependencies"])
    assert {"tensorboardx", "wandb"}.isdisjoint(declared)
    assert "tensorboardx" in distribution_names(project["optional-dependencies"]["tensorboard"])
    assert "wandb" in distribution_names(project["optional-dependencies"]["wandb"])
