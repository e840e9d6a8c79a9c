"""Strict test settings: two fake CPU devices, rank promotion raises, runtime array type checks."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import jaxtyping  # noqa: E402

with jaxtyping.install_import_hook("openrl", "beartype.beartype"):
    import openrl  # noqa: F401,E402

import pathlib  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
PRETRAINED = SHARED / "pretrained"


@pytest.fixture
def pretrained_path():
    """Path to a released OPEN weights file, or skip when ../shared is not beside the checkout."""

    def get(name: str) -> pathlib.Path:
        path = PRETRAINED / name
        if not path.is_file():
            pytest.skip(f"{path} not found: the released OPEN weights live in ../shared/pretrained/")
        return path

    return get
