"""The paper's seven released OPEN optimizers (shipped in `openrl/pretrained/`), and the flat format they use.

The weights come from github.com/AlexGoldie/rl-learned-optimization (Apache-2.0; see
`openrl/pretrained/NOTICE`). `RELEASED` says what each was meta-trained on and which tuned Adam
and Adam normaliser belong with it; `load_pretrained("asterix")` loads one by name, checking its
sha256, and `load_pretrained(path)` loads any file in the same format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import io
import os
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from openrl.optim.network import LARGE, SMALL, NetworkSize, PerParameterNetwork
from openrl.optim.optimizer import Optimizer
from openrl.optim.presets import open_

SIZES = {1211: SMALL, 3571: LARGE}
"""Released vector length -> network size."""


def _flax_tree(net: PerParameterNetwork) -> dict:
    """The network's parameters in the released Flax layout (kernels are x @ kernel)."""
    h = net.hidden_size
    w_ih, w_hh, b = net.gru.weight_ih.T, net.gru.weight_hh.T, net.gru.bias
    gru = {
        "ir": {"bias": b[:h], "kernel": w_ih[:, :h]},
        "iz": {"bias": b[h : 2 * h], "kernel": w_ih[:, h : 2 * h]},
        "in": {"bias": b[2 * h :], "kernel": w_ih[:, 2 * h :]},
        "hr": {"kernel": w_hh[:, :h]},
        "hz": {"kernel": w_hh[:, h : 2 * h]},
        "hn": {"bias": net.gru.bias_n, "kernel": w_hh[:, 2 * h :]},
    }
    mlp = {}
    for i, (layer, norm) in enumerate(zip(net.hidden_layers, net.norms)):
        mlp[f"layers_{3 * i}"] = {"bias": layer.bias, "kernel": layer.weight.T}
        mlp[f"layers_{3 * i + 1}"] = {"bias": norm.bias, "scale": norm.weight}
    mlp[f"layers_{3 * len(net.norms)}"] = {"bias": net.output.bias, "kernel": net.output.weight.T}
    return {"gru_params": {"params": gru}, "params": {"params": mlp}}


def _from_flax_tree(net: PerParameterNetwork, tree: dict) -> PerParameterNetwork:
    gru, mlp = tree["gru_params"]["params"], tree["params"]["params"]
    cat = lambda *xs: jnp.concatenate(xs, axis=-1)  # noqa: E731
    n = len(net.norms)
    where = lambda m: (  # noqa: E731
        m.gru.weight_ih, m.gru.weight_hh, m.gru.bias, m.gru.bias_n, m.output.weight, m.output.bias,
        *(layer.weight for layer in m.hidden_layers), *(layer.bias for layer in m.hidden_layers),
        *(norm.weight for norm in m.norms), *(norm.bias for norm in m.norms),
    )
    dense = [mlp[f"layers_{3 * i}"] for i in range(n)]
    norms = [mlp[f"layers_{3 * i + 1}"] for i in range(n)]
    values = (
        cat(gru["ir"]["kernel"], gru["iz"]["kernel"], gru["in"]["kernel"]).T,
        cat(gru["hr"]["kernel"], gru["hz"]["kernel"], gru["hn"]["kernel"]).T,
        cat(gru["ir"]["bias"], gru["iz"]["bias"], gru["in"]["bias"]),
        gru["hn"]["bias"],
        mlp[f"layers_{3 * n}"]["kernel"].T,
        mlp[f"layers_{3 * n}"]["bias"],
        *(d["kernel"].T for d in dense), *(d["bias"] for d in dense),
        *(x["scale"] for x in norms), *(x["bias"] for x in norms),
    )
    return eqx.tree_at(where, net, values)


def to_vector(optimizer: Optimizer) -> np.ndarray:
    """The optimizer's network as the released flat float32 vector."""
    flat, _ = ravel_pytree(_flax_tree(optimizer.network))
    return np.asarray(flat, np.float32)


def from_vector(vector: np.ndarray, optimizer: Optimizer) -> Optimizer:
    """`optimizer` with its network parameters replaced by a released flat vector."""
    template = _flax_tree(optimizer.network)
    _, unravel = ravel_pytree(template)
    expected = sum(np.size(x) for x in jax.tree.leaves(template))
    if vector.shape != (expected,):
        raise ValueError(f"vector: expected shape ({expected},) for this optimizer, got {vector.shape}")
    network = _from_flax_tree(optimizer.network, unravel(jnp.asarray(vector)))
    return eqx.tree_at(lambda o: o.network, optimizer, network)


@dataclasses.dataclass(frozen=True)
class Released:
    """One released optimizer: its file and checksum, its size, and what it was meta-trained on.

    `envs` are the environments (or the gridworld distribution) of meta-training, each run
    `total_timesteps` environment steps with the PPO preset `ppo` (`PPOConfig.<ppo>`); `adam[i]`
    names the tuned Adam (`presets.adam(adam[i])`) of `envs[i]` and `normalisers[i]` is the
    Adam return the paper's code divides `envs[i]`'s returns by.
    """

    name: str
    file: str
    sha256: str
    size: str
    envs: tuple[str, ...]
    ppo: str
    total_timesteps: int
    adam: tuple[str, ...]
    normalisers: tuple[float, ...]

    def __post_init__(self):
        if self.size not in ("small", "large"):
            raise ValueError(f"size: expected 'small' or 'large', got {self.size!r}")
        if not len(self.envs) == len(self.adam) == len(self.normalisers):
            raise ValueError(f"{self.name}: envs, adam and normalisers must have one entry per environment")

    def path(self) -> pathlib.Path:
        """Where the packaged file is (inside the installed openrl)."""
        return pathlib.Path(str(importlib.resources.files("openrl") / "pretrained" / self.file))


def _minatar(name: str, env: str, adam: str, normaliser: float, sha256: str) -> Released:
    return Released(name, f"{name}_OPEN.npy", sha256, "small", (env,), "minatar", 10_000_000, (adam,), (normaliser,))


RELEASED: dict[str, Released] = {
    r.name: r
    for r in (
        Released("ant", "ant_OPEN.npy", "e1901cafe323d1c5619b84e5178b3075c95a7cde920777e2c15e58c812c3e725",
                 "small", ("ant",), "ant", 50_000_000, ("ant",), (6517.31,)),
        _minatar("asterix", "Asterix-MinAtar", "asterix", 15.04,
                 "55d96c80dca70e4a308352798daec00fc962d7a3faacc24f612e1b437c1893aa"),
        _minatar("breakout", "Breakout-MinAtar", "breakout", 50.08,
                 "d7f0876c78736a0e354f8837e2a549dc7f45ff4d01f952ba9d547d8afc6f7926"),
        _minatar("freeway", "Freeway-MinAtar", "freeway", 61.84,
                 "97ea3f8f9a6e34523dd50c138a1538b33fbd2b1c3a5ee05a31014460825ea9f0"),
        Released("gridworld", "gridworld_OPEN.npy", "16ebb93a79adbcbfdb3e6019986109ee374764cb9cc8b0ad65f69bdcaedd9bb5",
                 "small", ("gridworld-all",), "gridworld", 30_000_000, ("gridworld",), (1.0,)),
        Released("multi", "multi_OPEN.npy", "9ba2dea70b0b308a365516dab092808b7b9211c70072bca934d83affaee5f60c",
                 "large", ("Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar"),
                 "minatar", 10_000_000, ("asterix", "breakout", "freeway", "space_invaders"),
                 (15.04, 50.08, 61.84, 167.09)),
        _minatar("spaceinvaders", "SpaceInvaders-MinAtar", "space_invaders", 167.09,
                 "42845f4c0b6b460789afffb1788f806e676b27acafa0febf34e86bd63d3e362f"),
    )
}
"""The paper's released optimizers by name (source: github.com/AlexGoldie/rl-learned-optimization,
commit 0e847c55a3d0230b0bb713c16b25e82774d40bf0, `rl_optimizer/pretrained/`)."""


def released(name: str) -> Released:
    """The registry entry `name`; an unknown name is an error listing the known ones."""
    if name not in RELEASED:
        raise ValueError(f"no released OPEN optimizer called {name!r}; known: {', '.join(RELEASED)} "
                         "(or give the path of a .npy weights file)")
    return RELEASED[name]


def format_released() -> str:
    """The registry, one block per optimizer (what `openrl pretrained` prints)."""
    lines = [
        "The paper's released OPEN optimizers (Apache-2.0; github.com/AlexGoldie/rl-learned-optimization,",
        "commit 0e847c55a3d0230b0bb713c16b25e82774d40bf0), shipped in openrl/pretrained/. Load one with",
        "orl.load_pretrained(NAME) or `openrl evaluate --optimizer OPEN=NAME`. gridworld was",
        "meta-trained on the `all` distribution, a new gridworld per run (`--env gridworld-all` is one draw",
        "of it): evaluate it as the paper does with `openrl evaluate --distribution all`.",
    ]
    for r in RELEASED.values():
        steps = f"{r.total_timesteps:.0e}".replace("e+0", "e")
        lines += ["", f"{r.name}: {r.size} ({ {'small': 1211, 'large': 3571}[r.size] } numbers), {r.file}, sha256 {r.sha256}",
                  f"  trained on: {', '.join(r.envs)}; PPO preset {r.ppo}, {steps} steps per run"]
        lines += [f"  {env}: tuned Adam presets.adam({adam!r}), Adam normaliser {n:g}"
                  for env, adam, n in zip(r.envs, r.adam, r.normalisers)]
    return "\n".join(lines)


def _is_name(source: str | os.PathLike) -> bool:
    return isinstance(source, str) and not source.endswith(".npy") and os.sep not in source and "/" not in source


def load_pretrained(source: str | os.PathLike) -> Optimizer:
    """OPEN with released weights: a name of `RELEASED` (e.g. "asterix"; its sha256 is checked) or the
    path of a `.npy` flat float32 vector of 1211 (small) or 3571 (large) numbers."""
    if _is_name(source):
        entry = released(source)
        data = entry.path().read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.sha256:
            raise ValueError(f"{entry.path()}: sha256 {digest} does not match the released {entry.sha256}; "
                             "the installed file is damaged, reinstall openrl")
        vector = np.load(io.BytesIO(data), allow_pickle=False)
        return _from_released_vector(vector, entry.path())
    path = source
    if not os.path.isfile(path):
        raise FileNotFoundError(f"source: no pretrained weights file at {os.fspath(path)!r}")
    return _from_released_vector(np.load(path, allow_pickle=False), path)


def _from_released_vector(vector: np.ndarray, path: str | os.PathLike) -> Optimizer:
    if vector.dtype != np.float32 or vector.ndim != 1 or vector.shape[0] not in SIZES:
        raise ValueError(
            f"{os.fspath(path)}: expected a flat float32 vector of length {' or '.join(map(str, SIZES))} "
            f"(small or large OPEN), got dtype {vector.dtype} and shape {vector.shape}"
        )
    size: NetworkSize = SIZES[vector.shape[0]]
    return from_vector(vector, open_(size))


def save_pretrained(optimizer: Optimizer, path: str | os.PathLike) -> None:
    """Write the optimizer's network in the released format."""
    np.save(path, to_vector(optimizer), allow_pickle=False)
