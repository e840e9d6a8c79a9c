"""An example openrl plugin: one feature and one update head, registered through entry points."""

from openrl_example_plugin.features import ParamNorm
from openrl_example_plugin.heads import ClippedHead

__all__ = ["ClippedHead", "ParamNorm"]
