"""Test configuration: strict JAX numerics, shared fixtures."""

import jax
import pytest

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
