"""Not a test: the released SpaceInvaders OPEN and tuned Adam on the SpaceInvaders the paper's code played.

    python benchmarks/spaceinvaders_gymnax_006.py [--seeds 2] [--budget 1.0]

The paper's code used gymnax 0.0.6; gymnax 1.0.1 (ours) changed two rules of SpaceInvaders-MinAtar,
both towards the original MinAtar game, and no rule of Asterix, Breakout or Freeway:

- the first wave: 0.0.6 filled columns 2-8 of rows 0-3 (28 aliens), 1.0.1 fills columns 2-7 (24), as
  every later wave does in both;
- an enemy bullet: 0.0.6 ended the episode when it reached the cannon's column *before* the cannon's
  move of that step, 1.0.1 checks the column after the move.

`PaperEraSpaceInvaders` restores both, and this script evaluates the released optimizer against the
paper's tuned Adam on it at `test_fidelity.py`'s settings (1e7 steps, 2 seeds per call), storing the
runs under `results/fidelity_<steps>/spaceinvaders-gymnax-0.0.6/` to be continued like that benchmark's.
"""

import argparse
from unittest import mock

import jax.numpy as jnp
from gymnax.environments.minatar import space_invaders
from test_fidelity import (  # the same labels and batch shape
    ADAM,
    RESULTS,
    SEEDS_PER_CALL,
    SINGLE,
)

import openrl as orl
from openrl.meta import EnvTask
from openrl.optim.pretrained import released
from openrl.rl import envs

_STEP_AGENT = space_invaders.step_agent


def _step_agent_0_0_6(action, state, params):
    """gymnax 1.0.1's `step_agent` with 0.0.6's collision check: the bullet against the cannon's old column."""
    moved = _STEP_AGENT(action, state, params)
    return moved.replace(terminal=jnp.logical_or(state.terminal, moved.e_bullet_map[9, state.pos]))


class PaperEraSpaceInvaders(space_invaders.MinSpaceInvaders):
    """SpaceInvaders-MinAtar with gymnax 0.0.6's first wave and enemy-bullet collision."""

    def step_env(self, key, state, action, params):
        # The patch is in force only while this step is traced; other environments keep 1.0.1's rule.
        with mock.patch.object(space_invaders, "step_agent", _step_agent_0_0_6):
            return super().step_env(key, state, action, params)

    def reset_env(self, key, params):
        _, state = super().reset_env(key, params)
        state = state.replace(alien_map=jnp.zeros((10, 10)).at[0:4, 2:9].set(True))
        return self.get_obs(state), state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds per optimizer (stored runs are reused)")
    parser.add_argument("--budget", type=float, default=1.0, help="fraction of the 1e7 steps")
    args = parser.parse_args()
    if not args.budget > 0:
        parser.error(f"--budget: expected a positive fraction of the 1e7 steps, got {args.budget}")
    entry = released("spaceinvaders")
    config = orl.PPOConfig.minatar(total_timesteps=int(entry.total_timesteps * args.budget))
    task = EnvTask(name="SpaceInvaders-MinAtar (gymnax 0.0.6 rules)", config=config,
                   env=envs.from_gymnax(PaperEraSpaceInvaders(), num_envs=config.num_envs))
    optimizers = {SINGLE: orl.load_pretrained("spaceinvaders"), ADAM: orl.presets.adam(entry.adam[0])}
    report = orl.evaluate(optimizers, task, seeds=args.seeds, seeds_per_call=SEEDS_PER_CALL, analysis=False,
                          out_dir=RESULTS / f"fidelity_{config.total_timesteps}" / "spaceinvaders-gymnax-0.0.6")
    print(report.table())


if __name__ == "__main__":
    main()
