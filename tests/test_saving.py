"""A saved optimizer loads back from its file alone (`openrl.load`, `--optimizer runs/x/best.eqx`):
presets, feature lists and plugin features, including the `best.eqx` that `meta_train` writes."""

import json
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import openrl as orl
from openrl.cli import learned_optimizer, main
from openrl.meta import MetaConfig, OpenES, meta_train
from openrl.optim.saving import spec_path

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_meta import QuadraticTask

PLUGIN_FEATURES = "ParamValue,Gradient,ParamNorm"


def updates_agree(a, b):
    """One update of each optimizer on the same small agent, gradients and context are identical."""
    agent = orl.ActorCritic(3, 2, discrete=True, width=4, depth=1, key=jax.random.key(0))
    params, layout = eqx.filter(agent, eqx.is_inexact_array), agent.layout()
    grads = jax.tree.map(lambda p: jnp.full(p.shape, 0.1), params)
    _, _, activity = agent(jnp.ones((2, 3)))
    ctx = orl.Context(iteration=jnp.asarray(1), epoch=jnp.asarray(0), activations=activity, num_iterations=4,
                      num_epochs=2)
    out = [o.update(grads, o.init(params, layout), params, ctx=ctx, key=jax.random.key(1))[0] for o in (a, b)]
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(out[0]), jax.tree.leaves(out[1])))


@pytest.mark.parametrize("make", [
    lambda: orl.load_pretrained("multi"),
    lambda: orl.presets.optim4rl("asterix", key=jax.random.key(3)),
    lambda: orl.Optimizer([orl.Momentum(decays=(0.5, 0.9)), orl.Gradient(), orl.Dormancy()], orl.MagnitudeHead(),
                          size=orl.NetworkSize(gru=4, width=8, depth=1), key=jax.random.key(2)),
    lambda: learned_optimizer(PLUGIN_FEATURES, "ClippedHead"),
    lambda: orl.presets.adam("freeway"),
], ids=["released-large", "optim4rl", "feature-list", "plugin-feature-and-head", "adam"])
def test_save_then_load_gives_the_same_optimizer(tmp_path, make):
    optimizer = make()
    orl.save(optimizer, tmp_path / "opt.eqx")
    loaded = orl.load(tmp_path / "opt.eqx")
    assert bool(eqx.tree_equal(loaded, optimizer))
    if isinstance(optimizer, orl.Optimizer):
        assert updates_agree(loaded, optimizer)


def test_spec_names_features_head_size_and_plugins(tmp_path):
    orl.save(learned_optimizer(PLUGIN_FEATURES, "ClippedHead"), tmp_path / "opt.eqx")
    spec = json.loads((tmp_path / "opt.eqx.json").read_text())
    assert spec["features"] == ["ParamValue", "Gradient", "ParamNorm"]
    assert spec["head"] == "ClippedHead"
    assert spec["size"] == {"gru": 8, "width": 16, "depth": 2}
    assert spec["plugins"] == ["openrl-example-plugin"]


def test_a_missing_plugin_is_named(tmp_path):
    orl.save(learned_optimizer(PLUGIN_FEATURES), tmp_path / "opt.eqx")
    text = (tmp_path / "opt.eqx.json").read_text().replace("openrl_example_plugin", "openrl_gone_plugin")
    (tmp_path / "opt.eqx.json").write_text(text)
    with pytest.raises(ImportError, match="needs the plugin package 'openrl-example-plugin' \\(pip install it\\)"):
        orl.load(tmp_path / "opt.eqx")


def test_bad_paths_and_specs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved optimizer at"):
        orl.load(tmp_path / "missing.eqx")
    eqx.tree_serialise_leaves(tmp_path / "old.eqx", orl.presets.open_())
    with pytest.raises(FileNotFoundError, match="has no spec beside it"):
        orl.load(tmp_path / "old.eqx")
    orl.save(orl.presets.open_(), tmp_path / "new.eqx")
    spec = json.loads((tmp_path / "new.eqx.json").read_text())
    (tmp_path / "new.eqx.json").write_text(json.dumps({**spec, "version": 99}))
    with pytest.raises(ValueError, match="expected an openrl-optimizer spec of version 1"):
        orl.load(tmp_path / "new.eqx")
    with pytest.raises(TypeError, match="optimizer"):  # our message, or the runtime type check's
        orl.save(jnp.zeros(3), tmp_path / "x.eqx")


@pytest.mark.parametrize("spec", ["open", PLUGIN_FEATURES])
def test_meta_trained_best_loads_back_in_python_and_the_cli(tmp_path, monkeypatch, spec):
    """`meta_train` writes best.eqx with its spec; `openrl.load` and `--optimizer PATH` need nothing else."""
    result = meta_train(OpenES(population_size=4), learned_optimizer(spec), QuadraticTask(),
                        MetaConfig(generations=2, eval_every=1), out_dir=tmp_path / "run", progress=False)
    best = tmp_path / "run" / "best.eqx"
    assert (tmp_path / "run" / "best.eqx.json").is_file() and spec_path(best) == str(best) + ".json"
    assert bool(eqx.tree_equal(orl.load(best), result.best))

    import openrl.eval.evaluation

    seen = {}

    def fake_evaluate(optimizers, tasks, seeds, **kwargs):
        seen.update(optimizers)
        raise KeyboardInterrupt  # stop before training

    monkeypatch.setattr(openrl.eval.evaluation, "evaluate", fake_evaluate)
    with pytest.raises(KeyboardInterrupt):
        main(["evaluate", "--env", "Asterix-MinAtar", "--optimizer", str(best), "--optimizer", "OPEN=asterix",
              "--optimizer", "multi", "--seeds", "2", "--out", str(tmp_path / "eval")])
    assert bool(eqx.tree_equal(seen["best"], result.best))
    assert bool(eqx.tree_equal(seen["OPEN"], orl.load_pretrained("asterix")))
    assert bool(eqx.tree_equal(seen["OPEN (multi)"], orl.load_pretrained("multi")))


def test_pretrained_command_lists_every_entry(capsys):
    assert main(["pretrained"]) == 0
    out = capsys.readouterr().out
    for name, entry in orl.optim.RELEASED.items():
        assert f"{name}: {entry.size}" in out and entry.sha256 in out
    assert "Asterix-MinAtar: tuned Adam presets.adam('asterix'), Adam normaliser 15.04" in out
    assert "commit 0e847c55a3d0230b0bb713c16b25e82774d40bf0" in out
    assert "as the paper does with `openrl evaluate --distribution all`" in out
