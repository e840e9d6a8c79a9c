"""Learned and handcrafted optimizers."""

from openrl.optim.features import (
    BatchProp,
    Dormancy,
    Feature,
    FeatureInputs,
    FeatureSet,
    Gradient,
    LayerProp,
    Momentum,
    ParamValue,
    TrainingProp,
)
from openrl.optim.heads import AbstractDeterministicHead, MagnitudeHead, StochasticHead, UpdateHead
from openrl.optim.layout import Context, LeafInfo, ParamLayout
from openrl.optim.mlp import mlp_activity, mlp_layout, mlp_names
from openrl.optim.network import LARGE, SMALL, AbstractNetwork, NetworkSize, PerParameterNetwork
from openrl.optim.optim4rl import MomentNetwork, Optim4RLHead, Optim4RLNetwork, SignLogGradient
from openrl.optim.optimizer import AbstractOptimizer, LearnedState, OptaxOptimizer, Optimizer
from openrl.optim import presets
from openrl.optim.pretrained import RELEASED, from_vector, load_pretrained, save_pretrained, to_vector
from openrl.optim.saving import load, save
from openrl.optim.separated import Separated, SeparatedState
from openrl.optim.velo import VeLO, VeLOState, load_velo, save_velo

__all__ = [
    "AbstractDeterministicHead", "AbstractOptimizer", "BatchProp", "Context", "Dormancy", "Feature", "FeatureInputs", "FeatureSet",
    "Gradient", "LARGE", "LayerProp", "LearnedState", "LeafInfo", "MagnitudeHead", "Momentum",
    "NetworkSize", "OptaxOptimizer", "Optimizer", "ParamLayout", "ParamValue", "PerParameterNetwork",
    "SMALL", "StochasticHead", "TrainingProp", "UpdateHead", "from_vector", "load_pretrained",
    "presets", "save_pretrained", "to_vector", "RELEASED", "load", "save", "mlp_activity", "mlp_layout",
    "mlp_names",
    "AbstractNetwork", "MomentNetwork", "Optim4RLHead", "Optim4RLNetwork", "SignLogGradient",
    "VeLO", "VeLOState", "load_velo", "save_velo",
    "Separated", "SeparatedState",
]
