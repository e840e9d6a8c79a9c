"""Strict test settings: two fake CPU devices, rank promotion raises, runtime array type checks."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import jaxtyping  # noqa: E402

with jaxtyping.install_import_hook("openrl", "beartype.beartype"):
    import openrl  # noqa: F401,E402

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
