"""Test configuration: strict JAX numerics, shared fixtures."""

import os
import tempfile

import jax
import pytest

# One persistent compilation cache for the whole run, shared by the pytest processes
# (pytest-xdist workers) and every `jaxbp` subprocess the tests start: the same small
# programs then compile once per run, not once per process. Outside the user's own cache.
os.environ.setdefault("JAXBP_CACHE_DIR", os.path.join(tempfile.gettempdir(),
                                                      f"jaxbp-test-cache-{os.getuid()}"))
from jaxbp import _cache  # noqa: E402

_cache.enable()

# Implicit rank promotion hides shape bugs (a (batch, out) + (out, 1) broadcast is a
# silently wrong answer); every jaxbp computation broadcasts explicitly.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Runs the test with 64-bit floats enabled."""
    with jax.enable_x64(True):
        yield


def pytest_addoption(parser):
    parser.addoption(
        "--impl", default="solutions",
        help="the exercise implementation the grading tests grade: 'solutions' (the "
             "default), 'exercises', or the path to a learner's copy of exercises/")
