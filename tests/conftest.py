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


@pytest.fixture(autouse=True)
def _reset_wbc_tf_logger():
    """CLI ``main()`` calls (also inside module-scoped fixtures) give the ``wbc_tf`` logger its own
    handler and turn propagation off; reset it around every test so ``caplog`` sees records
    whatever the test order."""
    import logging
    logger = logging.getLogger("wbc_tf")

    def reset():
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)

    reset()
    yield
    reset()
