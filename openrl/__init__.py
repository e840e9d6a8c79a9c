"""openrl: learned optimization for reinforcement learning."""

from openrl.optim import (
    AbstractOptimizer,
    BatchProp,
    Context,
    Dormancy,
    Feature,
    FeatureSet,
    Gradient,
    LayerProp,
    LeafInfo,
    MagnitudeHead,
    Momentum,
    NetworkSize,
    OptaxOptimizer,
    Optimizer,
    ParamLayout,
    ParamValue,
    StochasticHead,
    TrainingProp,
    UpdateHead,
    VeLO,
    load,
    load_pretrained,
    load_velo,
    presets,
    save,
    save_pretrained,
)
from openrl import eval, meta, plugins, tracking
from openrl.eval import evaluate
from openrl.meta import MetaConfig, MetaLearner, OpenES, meta_train
from openrl.rl import ActorCritic, PPOConfig, TrainResult, train

__all__ = [
    "AbstractOptimizer", "ActorCritic", "BatchProp", "Context", "Dormancy", "Feature", "FeatureSet",
    "Gradient", "LayerProp", "LeafInfo", "MagnitudeHead", "Momentum", "NetworkSize", "OptaxOptimizer",
    "Optimizer", "PPOConfig", "ParamLayout", "ParamValue", "StochasticHead", "TrainResult", "TrainingProp",
    "UpdateHead", "VeLO", "load", "load_pretrained", "load_velo", "presets", "save", "save_pretrained", "train",
    "MetaConfig", "MetaLearner", "OpenES", "eval", "evaluate", "meta", "meta_train", "plugins", "tracking",
]
