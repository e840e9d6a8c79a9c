"""Strict test settings: two fake CPU devices, rank promotion raises, runtime array type checks."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import jaxtyping  # noqa: E402

with jaxtyping.install_import_hook("openrl", "beartype.beartype"):
    import openrl  # noqa: F401,E402

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Free each test module's compiled XLA programs when it ends.

    One pytest process compiles thousands of programs over the suite. A full run (2026-12-01)
    crashed with a segfault inside XLA's CPU compiler late in the suite, in a sweep test that
    passes alone; bounding what the process accumulates keeps later modules independent of
    earlier ones.
    """
    yield
    jax.clear_caches()
