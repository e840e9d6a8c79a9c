"""The plugin registry: built-ins through entry points, broken and conflicting plugins, the example plugin."""

import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import openrl as orl
from openrl import plugins
from openrl.optim import features, heads, presets

EXAMPLE_PLUGIN = pathlib.Path(__file__).resolve().parents[1] / "plugins" / "openrl-example-plugin"

BUILTINS = [
    ("openrl.features", name, getattr(features, name))
    for name in ("ParamValue", "Momentum", "Gradient", "TrainingProp", "BatchProp", "LayerProp", "Dormancy")
] + [
    ("openrl.heads", "MagnitudeHead", heads.MagnitudeHead),
    ("openrl.heads", "StochasticHead", heads.StochasticHead),
] + [
    ("openrl.optimizers", name, factory)
    for name, factory in [("open", presets.open_), ("no_features", presets.no_features), ("adam", presets.adam),
                          ("rmsprop", presets.rmsprop), ("lion", presets.lion)]
]

FAKE_MODULE = """
from typing import ClassVar
import openrl as orl

class Good(orl.Feature):
    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = False

    def __call__(self, inputs, state):
        return inputs.param[None, :], state

def good_optimizer():
    return orl.presets.adam()

def bad_optimizer():
    return "not an optimizer"

NOT_CALLABLE = 3
"""


@pytest.fixture
def fake_dists(tmp_path, monkeypatch):
    """`add(dist, entry_points, modules)` installs a fake distribution: metadata and modules on sys.path."""
    modules = []

    def add(dist: str, entry_points: dict[str, dict[str, str]], sources: dict[str, str]) -> pathlib.Path:
        # One sys.path entry per distribution, so importlib.metadata's per-directory cache never goes stale.
        root = tmp_path / dist
        info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "top_level.txt").write_text("".join(f"{module}\n" for module in sources))
        (info / "entry_points.txt").write_text(
            "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in entry_points.items())
        )
        for module, source in sources.items():
            (root / f"{module}.py").write_text(textwrap.dedent(source))
            modules.append(module)
        monkeypatch.syspath_prepend(str(root))
        return root

    yield add
    for module in modules:
        sys.modules.pop(module, None)


@pytest.mark.parametrize(("group", "name", "obj"), BUILTINS, ids=[f"{g}:{n}" for g, n, _ in BUILTINS])
def test_builtins_are_registered_through_entry_points(group, name, obj):
    found = plugins.available(group)
    assert name in found, f"{group}:{name} not registered; refresh the install with `pip install -e .`"
    assert found[name].package == "openrl"
    loaded = plugins.load(group, name)
    assert loaded is obj or loaded.__wrapped__ is obj


def test_optimizer_factories_are_checked_when_called(fake_dists):
    fake_dists("fake-dist", {"openrl.optimizers": {
        "good": "fake_plugin:good_optimizer", "bad": "fake_plugin:bad_optimizer", "number": "fake_plugin:NOT_CALLABLE",
    }}, {"fake_plugin": FAKE_MODULE})
    assert isinstance(plugins.load("openrl.optimizers", "adam")("breakout"), orl.OptaxOptimizer)
    assert isinstance(plugins.load("openrl.optimizers", "good")(), orl.AbstractOptimizer)
    bad = plugins.load("openrl.optimizers", "bad")
    with pytest.raises(plugins.PluginError, match=r"'bad'.*'fake-dist'.* returned a str; expected a callable returning an openrl\.optim\.optimizer\.AbstractOptimizer"):
        bad()
    with pytest.raises(plugins.PluginError, match=r"'number'.*'fake-dist'.*expected a callable"):
        plugins.load("openrl.optimizers", "number")


def test_listing_imports_no_plugin(fake_dists):
    fake_dists("fake-dist", {"openrl.features": {"Good": "fake_plugin:Good"}}, {"fake_plugin": FAKE_MODULE})
    info = plugins.available("openrl.features")["Good"]
    assert (info.package, info.version, info.value) == ("fake-dist", "0.1", "fake_plugin:Good")
    assert ("Good", "fake-dist") in plugins.describe()["openrl.features"]
    assert "fake_plugin" not in sys.modules
    assert issubclass(plugins.load("openrl.features", "Good"), orl.Feature)


def test_wrong_kind_names_package_entry_point_and_expectation(fake_dists):
    fake_dists("fake-dist", {"openrl.features": {"NotAFeature": "fake_plugin:good_optimizer"},
                             "openrl.heads": {"NotAHead": "fake_plugin:Good"}}, {"fake_plugin": FAKE_MODULE})
    with pytest.raises(plugins.PluginError, match=r"'NotAFeature'.*'fake-dist'.*expected a subclass of openrl\.optim\.features\.Feature"):
        plugins.load("openrl.features", "NotAFeature")
    with pytest.raises(plugins.PluginError, match=r"'NotAHead'.*'fake-dist'.*expected a subclass of openrl\.optim\.heads\.UpdateHead"):
        plugins.load("openrl.heads", "NotAHead")


def test_broken_plugin_warns_and_spares_the_others(fake_dists):
    fake_dists("fake-dist", {"openrl.features": {
        "Ghost": "no_such_module_for_openrl_tests:Ghost", "Boom": "boom_plugin:Boom", "Good": "fake_plugin:Good",
    }}, {"fake_plugin": FAKE_MODULE, "boom_plugin": "raise RuntimeError('boom at import')\n"})
    with pytest.raises(plugins.PluginError, match=r"'Ghost'.*'fake-dist' failed to import: ModuleNotFoundError"):
        plugins.load("openrl.features", "Ghost")
    with pytest.raises(plugins.PluginError, match=r"'Boom'.*'fake-dist' failed to import: RuntimeError: boom at import"):
        plugins.load("openrl.features", "Boom")
    with pytest.warns(plugins.PluginWarning) as record:
        loaded = plugins.load_all("openrl.features")
    assert sorted(str(w.message).split("'")[1] for w in record) == ["Boom", "Ghost"]
    assert {"Good", "ParamValue", "Dormancy"} <= set(loaded)
    assert not {"Ghost", "Boom"} & set(loaded)


def test_import_openrl_and_listing_survive_a_broken_plugin(fake_dists):
    root = fake_dists("fake-dist", {"openrl.features": {"Boom": "boom_plugin:Boom"}},
                      {"boom_plugin": "raise RuntimeError('boom at import')\n"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    code = "import openrl, openrl.plugins; print(openrl.plugins.format_plugins())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Boom" in result.stdout and "fake-dist 0.1" in result.stdout and "ParamValue" in result.stdout


def test_duplicate_name_is_a_conflict_naming_both_packages(fake_dists):
    fake_dists("fake-dist", {"openrl.features": {"Twin": "fake_plugin:Good"}}, {"fake_plugin": FAKE_MODULE})
    fake_dists("other-dist", {"openrl.features": {"Twin": "other_plugin:Good"}}, {"other_plugin": FAKE_MODULE})
    with pytest.raises(plugins.PluginError, match=r"'Twin' is registered by more than one package: '(fake|other)-dist'.* and '(fake|other)-dist'"):
        plugins.load("openrl.features", "Twin")
    assert "Twin" not in plugins.available("openrl.features")
    assert sorted(i.package for i in plugins.conflicts("openrl.features")["Twin"]) == ["fake-dist", "other-dist"]
    rows = sorted(line.split() for line in plugins.format_plugins().splitlines() if "Twin" in line)
    assert rows == [["Twin", "fake-dist", "0.1", "CONFLICT"], ["Twin", "other-dist", "0.1", "CONFLICT"]]
    with pytest.warns(plugins.PluginWarning, match="more than one package"):
        assert "Twin" not in plugins.load_all("openrl.features")


def test_meta_learners_are_checked_against_metalearner(fake_dists):
    source = "from openrl.meta import MetaLearner\n\nclass Mine(MetaLearner):\n    pass\n"
    fake_dists("fake-dist", {"openrl.meta_learners": {"Mine": "meta_plugin:Mine", "Nope": "fake_plugin:Good"}},
               {"fake_plugin": FAKE_MODULE, "meta_plugin": source})
    assert {"Mine", "Nope", "OpenES"} <= set(plugins.available("openrl.meta_learners"))
    assert plugins.load("openrl.meta_learners", "Mine").__name__ == "Mine"
    with pytest.raises(plugins.PluginError, match=r"'Nope'.*expected a callable returning an openrl\.meta\.learners\.MetaLearner"):
        plugins.load("openrl.meta_learners", "Nope")


FAMILY_MODULE = """
import functools
import openrl as orl
from openrl import plugins
from openrl.rl import envs

class Suite(plugins.Family):
    def names(self):
        return ("Counter-3", "Counter-5", "Broken")

    def bind(self, name):
        if name == "Broken":
            return lambda num_envs: "not an env"
        return functools.partial(envs.make, "CartPole-v1")

SUITE = Suite()
"""


def test_a_family_serves_each_of_its_names(fake_dists):
    fake_dists("suite-dist", {"openrl.envs": {"Counter-3": "suite_plugin:SUITE", "Broken": "suite_plugin:SUITE",
                                              "Stray": "suite_plugin:SUITE"}}, {"suite_plugin": FAMILY_MODULE})
    from openrl.rl import envs

    assert {"Counter-3", "Broken", "Stray"} <= set(envs.names())
    assert envs.make("Counter-3", num_envs=2).num_envs == 2
    with pytest.raises(plugins.PluginError, match=r"'Broken'.*'suite-dist' returned a str; expected a callable returning an openrl\.rl\.envs\.VecEnv"):
        envs.make("Broken", num_envs=2)
    with pytest.raises(plugins.PluginError, match=r"'Stray'.*'suite-dist' points to a Suite, which serves no 'Stray'"):
        envs.make("Stray")


def test_builtin_learners_and_environments_are_entry_points():
    learners = plugins.available("openrl.meta_learners")
    assert {"OpenES", "SNES", "PGPE", "Sep_CMA_ES"} <= set(learners)
    assert {learners[n].package for n in ("OpenES", "SNES")} == {"openrl"}
    snes = plugins.load("openrl.meta_learners", "SNES")(population_size=4)
    assert isinstance(snes, orl.meta.MetaLearner) and snes.strategy == "SNES"
    found = plugins.available("openrl.envs")
    assert {"Acrobot-v1", "Pendulum-v1", "MountainCar-v0", "hopper", "halfcheetah", "humanoid", "gridworld-all"} <= set(found)
    table = plugins.format_plugins()
    assert "openrl.meta_learners" in table and "openrl.envs" in table
    assert any(line.split()[:2] == ["Sep_CMA_ES", "openrl"] for line in table.splitlines())
    assert any(line.split()[:2] == ["hopper", "openrl"] for line in table.splitlines())


def test_unknown_group_or_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown plugin group 'openrl.feature'.*'openrl.features'.*'openrl.envs'"):
        plugins.available("openrl.feature")
    with pytest.raises(ValueError, match=r"no plugin 'Momentun' in group 'openrl.features'; available: .*'Momentum'"):
        plugins.load("openrl.features", "Momentun")
    assert set(plugins.describe()) == set(plugins.GROUPS)


def _build_in_place() -> bool:
    """Whether this environment's setuptools builds wheels by itself (else pip fetches a build backend)."""
    if importlib.util.find_spec("wheel") is not None:
        return True
    setuptools = importlib.metadata.version("setuptools") if importlib.util.find_spec("setuptools") else "0"
    return tuple(int(x) for x in setuptools.split(".")[:2]) >= (70, 1)


@pytest.fixture(scope="module")
def example_plugin(tmp_path_factory):
    """The example plugin installed by pip into a temporary target on sys.path."""
    if importlib.util.find_spec("pip") is None:
        pytest.skip("pip is not installed in this environment, so the example plugin cannot be installed")
    tmp = tmp_path_factory.mktemp("example_plugin")
    source, target = tmp / "src", tmp / "site"
    shutil.copytree(EXAMPLE_PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)]
    if _build_in_place():
        command.insert(4, "--no-build-isolation")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"pip install of the example plugin failed:\n{result.stderr}"
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))


def test_example_plugin_is_found_by_name(example_plugin):
    feature_info = plugins.available("openrl.features")["ParamNorm"]
    head_info = plugins.available("openrl.heads")["ClippedHead"]
    assert feature_info.package == head_info.package == "openrl-example-plugin"
    assert issubclass(plugins.load("openrl.features", "ParamNorm"), orl.Feature)
    assert issubclass(plugins.load("openrl.heads", "ClippedHead"), orl.UpdateHead)


def test_example_plugin_works_inside_an_optimizer(example_plugin):
    ParamNorm = plugins.load("openrl.features", "ParamNorm")
    ClippedHead = plugins.load("openrl.heads", "ClippedHead")
    params = {"w": jax.random.normal(jax.random.key(0), (4, 3)), "b": jnp.zeros(3)}
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(p.size), p.shape), params)
    max_step = 1e-4
    optimizer = orl.Optimizer([ParamNorm(), orl.Momentum(), orl.Gradient()], ClippedHead(max_step=max_step),
                              zero_mean=False, key=jax.random.key(1))
    assert optimizer.network.in_size == 1 + 12 + 2
    state = optimizer.init(params)
    step = eqx.filter_jit(lambda s, k: optimizer.update(grads, s, params, ctx=orl.Context(), key=k))
    updates, state = step(state, jax.random.key(2))
    updates, state = step(state, jax.random.key(3))
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    flat = jnp.concatenate([u.ravel() for u in jax.tree.leaves(updates)])
    assert bool(jnp.all(jnp.isfinite(flat)))
    assert 0 < float(jnp.abs(flat).max()) <= max_step * (1 + 1e-6)


BROKEN_FEATURES = """
from typing import ClassVar
import jax.numpy as jnp
import openrl as orl

class TwoForOne(orl.Feature):
    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = True

    def __call__(self, inputs, state):
        return jnp.stack([inputs.grad, inputs.param]), state

class Flat(orl.Feature):
    num_channels: ClassVar[int] = 1
    normalise: ClassVar[bool] = False

    def __call__(self, inputs, state):
        return inputs.grad, state

class Undeclared(orl.Feature):
    num_channels: ClassVar[int] = 1

    def __call__(self, inputs, state):
        return inputs.grad[None, :], state

class NoChannels(orl.Feature):
    normalise: ClassVar[bool] = False

    def __call__(self, inputs, state):
        return inputs.grad[None, :], state
"""


@pytest.mark.parametrize(("name", "when", "match"), [
    ("TwoForOne", "traced", r"TwoForOne \(module broken_features, package broken-dist 0\.1\) returned channels of shape "
                            r"\(2, 5\); expected \(1, 5\): `num_channels` = 1 rows"),
    ("Flat", "traced", r"Flat \(module broken_features, package broken-dist 0\.1\) returned channels of shape \(5,\); "
                       r"expected \(1, 5\).*return `x\[None, :\]` for a single channel"),
    ("Undeclared", "built", r"features\[0\]: Undeclared \(module broken_features, package broken-dist 0\.1\) declares no "
                            r"`normalise` class variable"),
    ("NoChannels", "built", r"features\[0\]: NoChannels \(module broken_features, package broken-dist 0\.1\) declares "
                            r"`num_channels` = None; expected a positive int"),
])
def test_a_broken_plugin_feature_is_named_early(fake_dists, name, when, match):
    """Wrong channel count, [n] instead of [1, n], missing class variables: errors that name the class and package."""
    fake_dists("broken-dist", {"openrl.features": {name: f"broken_features:{name}"}},
               {"broken_features": BROKEN_FEATURES})
    feature = plugins.load("openrl.features", name)()
    if when == "built":
        with pytest.raises(TypeError, match=match):
            orl.Optimizer([feature, orl.Gradient()], orl.MagnitudeHead())
        return
    optimizer = orl.Optimizer([feature, orl.Gradient()], orl.MagnitudeHead())
    params = {"w": jnp.ones(5)}
    state = optimizer.init(params)
    with pytest.raises(ValueError, match=match):
        jax.eval_shape(lambda s: optimizer.update(params, s, params, ctx=orl.Context(), key=jax.random.key(0)), state)

