"""Probe environments with known answers (one-step episodes), in openrl's vectorised env interface."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from gymnax.environments import spaces


@dataclasses.dataclass(frozen=True)
class OneStepProbe:
    """Constant observation; every episode lasts one step; reward depends on the action only.

    `kind`: "constant" (reward 1 whatever the action: the critic must learn V = 1),
    "bandit" (two arms paying 0 and 1: the actor must pick arm 1),
    "continuous" (reward -(a - 0.5)^2: the Gaussian mean must reach 0.5).
    """

    kind: str
    num_envs: int = 8

    @property
    def is_discrete(self) -> bool:
        return self.kind != "continuous"

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (3,)

    @property
    def action_space(self):
        if self.kind == "continuous":
            return spaces.Box(-1.0, 1.0, (1,))
        return spaces.Discrete(2)

    def _obs(self):
        return jnp.ones((self.num_envs, 3))

    def reset(self, key):
        return self._obs(), jnp.zeros(self.num_envs)

    def step(self, key, state, action):
        if self.kind == "constant":
            reward = jnp.ones(self.num_envs)
        elif self.kind == "bandit":
            reward = action.astype(jnp.float32)
        else:
            reward = -((action[:, 0] - 0.5) ** 2)
        done = jnp.ones(self.num_envs, bool)
        info = {"returned_episode_returns": reward, "returned_episode": done}
        return self._obs(), state, reward, done, info
