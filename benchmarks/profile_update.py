"""Where one learned-optimizer update spends its time, stage by stage, on a MinAtar-sized agent.

`python benchmarks/profile_update.py [open|no_features]` jits 50 updates in a `lax.scan`, records a
`jax.profiler` trace of two runs and attributes every executed XLA operation to the source file (and,
for the network, the function) that produced it, using the compiled HLO's metadata:

- features: momentum, signs and logs, the per-tensor second-moment normalisation (`features.py`, `layout.py`);
- GRU, MLP: the per-parameter network (`network.py`);
- head: the update formula and its noise, random numbers included (`heads.py`);
- optimizer: ravel/unravel and zero-meaning (`optimizer.py`); loop: the benchmark's own scan and apply.

Stages are the `jax.named_scope`s `openrl.features`, `openrl.gru`, `openrl.mlp`, `openrl.head` and
`openrl.update`, or, where an operation has none, the innermost openrl file on its Python stack.

Prints milliseconds per update by stage and the top operations. Works on any backend whose trace
names operations after HLO instructions (XLA:CPU does); the backend is printed.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import re
import sys
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp

import openrl as orl
from openrl.optim import presets
from openrl.rl.agent import ActorCritic

UPDATES = 50
RUNS = 2
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = .*? ([a-z][\w\-]*)\(.*op_name=\"([^\"]*)\".*stack_frame_id=(\d+)")
SCOPES = {"openrl.features": "features", "openrl.gru": "GRU", "openrl.mlp": "MLP", "openrl.head": "head",
          "openrl.update": "optimizer"}
"""`jax.named_scope`s of `Optimizer.update_with_stats` and the network (innermost wins)."""
SECTION_ROW = re.compile(r"^(\d+) (.*)$")


def minatar_problem():
    agent = ActorCritic(400, 3, discrete=True, width=64, depth=2, key=jax.random.key(0))
    params, layout = eqx.filter(agent, eqx.is_inexact_array), agent.layout()
    _, _, activity = agent(jax.random.normal(jax.random.key(1), (1024, 400)))
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(2), p.shape), params)
    ctx = orl.Context(iteration=jnp.asarray(3), epoch=jnp.asarray(1), activations=activity, num_iterations=10,
                      num_epochs=4)
    return params, layout, grads, ctx


def stage_of(op_name: str, frames: list[tuple[str, str]]) -> str:
    """The stage of an operation: its innermost named scope, else its Python stack (innermost frame first)."""
    scopes = [SCOPES[part] for part in op_name.split("/") if part in SCOPES]
    if scopes:
        return scopes[-1]
    for path, function in frames:
        name = path.rsplit("/", 1)[-1]
        if "/openrl/optim/" not in path:
            continue
        if name in ("features.py", "layout.py"):
            return "features"
        if name == "network.py":
            return "GRU" if function == "gru_step" else "MLP"
        if name == "heads.py":
            return "head"
        return "optimizer"
    return "loop"


def instruction_stages(hlo: str) -> tuple[dict[str, str], dict[str, str]]:
    """Kind and stage of every HLO instruction, read from the module's stack-frame tables."""
    sections: dict[str, dict[int, str]] = collections.defaultdict(dict)
    section = None
    kinds, frame_ids, op_names = {}, {}, {}
    for text in hlo.splitlines():
        if text in ("FileNames", "FunctionNames", "FileLocations", "StackFrames"):
            section = text
            continue
        row = SECTION_ROW.match(text) if section else None
        if row:
            sections[section][int(row.group(1))] = row.group(2)
            continue
        section = None
        match = INSTRUCTION.match(text)
        if match:
            kinds[match.group(1)] = match.group(2)
            op_names[match.group(1)] = match.group(3)
            frame_ids[match.group(1)] = int(match.group(4))
    field = lambda text, key: int(re.search(key + r"=(\d+)", text).group(1))

    def frames(frame_id: int) -> list[tuple[str, str]]:
        out = []
        while frame_id in sections["StackFrames"] and len(out) < 64:
            frame = sections["StackFrames"][frame_id]
            location = sections["FileLocations"][field(frame, "file_location_id")]
            out.append((sections["FileNames"][field(location, "file_name_id")].strip('"'),
                        sections["FunctionNames"][field(location, "function_name_id")].strip('"')))
            parent = field(frame, "parent_frame_id")
            frame_id = parent if parent != frame_id else -1
        return out

    return kinds, {name: stage_of(op_names[name], frames(frame_id)) for name, frame_id in frame_ids.items()}


def main(which: str = "open") -> dict[str, float]:
    params, layout, grads, ctx = minatar_problem()
    optimizer = {"open": presets.open_, "no_features": presets.no_features}[which](key=jax.random.key(1))
    state = optimizer.init(params, layout)
    keys = jax.random.split(jax.random.key(0), UPDATES)

    @jax.jit
    def run(state, params):
        def body(carry, key):
            updates, state = optimizer.update(grads, carry[0], carry[1], ctx=ctx, key=key)
            return (state, eqx.apply_updates(carry[1], updates)), None

        return jax.lax.scan(body, (state, params), keys)[0]

    hlo = run.lower(state, params).compile().as_text()
    kinds, stages = instruction_stages(hlo)
    jax.block_until_ready(run(state, params))
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp, create_perfetto_trace=True)
        for _ in range(RUNS):
            jax.block_until_ready(run(state, params))
        jax.profiler.stop_trace()
        with gzip.open(glob.glob(f"{tmp}/**/*.trace.json.gz", recursive=True)[0]) as f:
            events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    per_stage, per_op = collections.Counter(), collections.Counter()
    scale = 1e-3 / (RUNS * UPDATES)  # trace microseconds -> milliseconds per update
    for event in events:
        name = event.get("name")
        if event.get("ph") != "X" or name not in kinds or kinds[name] in ("while", "conditional", "call"):
            continue
        per_stage[stages[name]] += event["dur"] * scale
        per_op[f"{name} [{stages[name]}]"] += event["dur"] * scale
    print(f"backend: {jax.default_backend()}; {which} update on {layout.num_params} parameters, ms per update")
    for stage in ("features", "GRU", "MLP", "head", "optimizer", "loop"):
        print(f"  {stage:10s} {per_stage[stage]:7.3f}")
    print(f"  {'total':10s} {sum(per_stage.values()):7.3f}")
    print("top operations:")
    for name, ms in per_op.most_common(15):
        print(f"  {ms:7.3f}  {name}")
    return dict(per_stage)


if __name__ == "__main__":
    main(*sys.argv[1:])
