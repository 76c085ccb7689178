"""Shared fixtures: real photos from scikit-image, the bundled release weights, the `slow` marker gate.

Plain helper functions (random weights, tiny datasets) are in ``tests/helpers.py``; the independent
reference of the original code is ``tests/reference.py``.
"""

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


@pytest.fixture(scope="session")
def chelsea_rgb():
    """A real 300x451 RGB photo (odd sizes) shipped inside scikit-image."""
    from skimage import data
    return data.chelsea()


@pytest.fixture(scope="session")
def release_tensors():
    """The 36 ``{tf1_name: array}`` tensors of the bundled ``model-33999``, read with ``tf.train`` only."""
    import tensorflow as tf
    from wbc_tf.weights import pretrained_checkpoint_dir
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(pretrained_checkpoint_dir()))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.fixture(scope="session")
def cartoonizer():
    """`Cartoonizer` with the bundled release weights and the original's defaults, built once."""
    from wbc_tf.inference import Cartoonizer
    return Cartoonizer.from_pretrained()


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
