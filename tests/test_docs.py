"""The documentation site builds strictly, documents every public name, and its examples work."""

import importlib
import os
import pathlib
import pkgutil
import re
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mkdocstrings import Inventory

import openrl
from openrl.rl import envs

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def python_blocks(page: str) -> list[str]:
    """The ```python code blocks of a docs page, in order."""
    return re.findall(r"^```python\n(.*?)^```", (DOCS / page).read_text(), flags=re.S | re.M)


def run_blocks(page: str, *indices: int) -> dict:
    """Run the chosen code blocks of `page` in one namespace, as a reader pasting them would.

    The reader's own code is not held to openrl's strict rank promotion.
    """
    namespace = {"__name__": "docs_example"}
    blocks = python_blocks(page)
    with jax.numpy_rank_promotion("allow"):
        for i in indices:
            exec(compile(blocks[i], f"{page}[{i}]", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr}"
    return out


def test_docs_build_strictly_with_every_page(site):
    for page in DOCS.rglob("*.md"):
        relative = page.relative_to(DOCS).with_suffix("")  # mkdocs writes a/b.md to a/b/index.html
        html = site / (relative.parent if relative.name == "index" else relative) / "index.html"
        assert html.is_file(), f"{page} was not built"
    assert "openrl.optim.Optimizer" in (site / "reference" / "optim" / "index.html").read_text()


def public_modules() -> list[str]:
    """`openrl`, its subpackages and the modules they export, such as `openrl.optim.presets`."""
    packages = [openrl] + [importlib.import_module(f"openrl.{m.name}")
                           for m in pkgutil.iter_modules(openrl.__path__) if m.ispkg]
    exported = [getattr(p, name) for p in packages for name in getattr(p, "__all__", [])]
    return sorted({m.__name__ for m in packages + [x for x in exported if isinstance(x, types.ModuleType)]})


@pytest.mark.parametrize("module", public_modules())
def test_every_public_name_is_in_the_api_reference(site, module):
    with open(site / "objects.inv", "rb") as f:
        inventory = Inventory.parse_sphinx(f)
    names = getattr(importlib.import_module(module), "__all__", [])
    missing = [name for name in names if f"{module}.{name}" not in inventory]
    assert not missing, (
        f"{module}.__all__ names missing from the API reference: {missing}; an exported submodule needs "
        "its own `::: module.path` line on its subpackage's page in docs/reference/"
    )
    for name in names:
        assert inventory[f"{module}.{name}"].uri.startswith("reference/")


def test_concepts_example_has_nineteen_inputs():
    run_blocks("concepts.md", 0)


def test_optax_loop_guide_fits_the_regression_it_claims(monkeypatch):
    monkeypatch.chdir(ROOT)
    losses = run_blocks("guides/optax-loop.md", 0)["losses"]
    claimed = re.search(r"It prints `loss ([\d.]+) -> ([\d.]+)`", (DOCS / "guides/optax-loop.md").read_text())
    assert losses[0] == pytest.approx(float(claimed[1]), abs=1e-3)
    assert losses[-1] < 1e-3 and float(claimed[2]) < 1e-3


def test_optax_loop_guide_actor_critic_and_stateful_feature_do_what_it_says():
    guide = (DOCS / "guides/optax-loop.md").read_text()
    rewards = run_blocks("guides/optax-loop.md", 1)["rewards"]
    claimed = re.search(r"It prints `mean reward ([\d.]+) -> ([\d.]+)`", guide)
    assert sum(rewards[:20]) / 20 == pytest.approx(float(claimed[1]), abs=0.005)
    assert sum(rewards[-20:]) / 20 == pytest.approx(float(claimed[2]), abs=0.005)
    stateful = run_blocks("guides/optax-loop.md", 2)
    assert stateful["opt_state"].features[1].shape == (stateful["opt_state"].layout.num_params,)


def test_own_environment_guide_chain_pays_at_the_right_end():
    chain = run_blocks("guides/own-environment.md", 0)["Chain"]
    env = envs.from_gymnax(chain(), num_envs=2)
    key = jax.random.key(0)
    obs, state = env.reset(key)
    np.testing.assert_array_equal(obs, np.tile(np.eye(6)[0], (2, 1)))
    obs, state, reward, done, _ = env.step(key, state, jnp.zeros(2, jnp.int32))  # left at the wall: stays
    np.testing.assert_array_equal(obs, np.tile(np.eye(6)[0], (2, 1)))
    for step in range(1, 6):
        obs, state, reward, done, info = env.step(jax.random.key(step), state, jnp.ones(2, jnp.int32))
        end = step == 5
        np.testing.assert_array_equal(reward, [float(end)] * 2)
        np.testing.assert_array_equal(done, [end] * 2)
    np.testing.assert_array_equal(obs, np.tile(np.eye(6)[0], (2, 1)))  # reset after reaching the end
    np.testing.assert_array_equal(info["returned_episode_returns"], [1.0, 1.0])


def test_plugin_guide_code_is_the_example_plugin():
    example = pytest.importorskip("openrl_example_plugin", reason="pip install -e plugins/openrl-example-plugin")
    guide = run_blocks("guides/plugin.md", 0, 1, 2)
    layout = openrl.ParamLayout(((2,), (3,)))
    inputs = openrl.optim.FeatureInputs(jnp.zeros(5), jnp.asarray([3.0, 4.0, 0.0, 1.0, 2.0]), openrl.Context(), layout)
    ours, theirs = guide["ParamNorm"](), example.ParamNorm()
    np.testing.assert_array_equal(ours(inputs, ours.init(layout))[0], theirs(inputs, theirs.init(layout))[0])
    outputs = jnp.asarray([[0.1, -0.2, 2.0, -7.0], [3.0, 0.0, 0.0, 1.0]])
    head = dict(alpha1=1.0, alpha2=0.5, max_step=0.5)
    inputs = openrl.optim.FeatureInputs(jnp.zeros(4), jnp.zeros(4), openrl.Context(), openrl.ParamLayout(((4,),)))
    np.testing.assert_array_equal(guide["ClippedHead"](**head).deterministic(outputs, inputs),
                                  example.ClippedHead(**head).deterministic(outputs, inputs))
