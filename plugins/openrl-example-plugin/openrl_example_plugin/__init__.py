"""An example openrl plugin: two features and one update head, registered through entry points."""

from openrl_example_plugin.features import ParamNorm, PolicyEntropy
from openrl_example_plugin.heads import ClippedHead

__all__ = ["ClippedHead", "ParamNorm", "PolicyEntropy"]
