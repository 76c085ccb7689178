"""Shared fixtures: tiny images, a real photo from scikit-image, the `slow` marker gate."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def astronaut_rgb():
    """A real 512x512 RGB photo shipped inside scikit-image (no download)."""
    from skimage import data
    return data.astronaut()


@pytest.fixture(scope="session")
def coffee_rgb():
    """A real 400x600 RGB photo (non-square) shipped inside scikit-image."""
    from skimage import data
    return data.coffee()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
