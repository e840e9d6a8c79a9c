"""The RL inner loop: agents, PPO and environments."""

from openrl.rl.agent import MLP, ActorCritic
from openrl.rl.ppo import PPOConfig, TrainResult, make_agent, train

__all__ = ["MLP", "ActorCritic", "PPOConfig", "TrainResult", "make_agent", "train"]
