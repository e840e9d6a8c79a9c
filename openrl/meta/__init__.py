"""Meta-learning: tasks, meta-learners, checkpoints and the meta-training loop."""

from openrl.meta.checkpoint import CheckpointError, Checkpointer
from openrl.meta.learners import EVOSAX_STRATEGIES, EvosaxLearner, MetaLearner, OpenES, learner_names, make_learner
from openrl.meta.tasks import DistributionTask, EnvTask, MultiTask, Task, make_task, reference_returns
from openrl.meta.train import MetaConfig, MetaTrainResult, meta_train, resumable
from openrl.meta import suites
from openrl.meta.suites import gridworld_task

__all__ = [
    "EVOSAX_STRATEGIES", "EvosaxLearner", "learner_names", "make_learner",
    "CheckpointError", "Checkpointer", "DistributionTask", "EnvTask", "MetaConfig", "MetaLearner",
    "MetaTrainResult", "MultiTask", "OpenES", "Task", "gridworld_task", "make_task", "meta_train",
    "reference_returns", "resumable", "suites",
]
