"""The persistent compilation cache of the ``jaxbp`` command (:mod:`jaxbp._cache`):
on, it is JAX's cache in jaxbp's folder; off, JAX computes no cache key either."""

import os
import subprocess
import sys

import pytest

from jaxbp import _cache

KEYS = ("JAX_ENABLE_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR",
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES")


@pytest.fixture
def before_jax(monkeypatch):
    """As in a ``jaxbp`` command before it imports JAX: the settings go to the
    environment, which JAX reads when it is imported (restored afterwards)."""
    monkeypatch.delitem(sys.modules, "jax")
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.mark.parametrize("value", ["off", "OFF", "0", "none", ""])
def test_off_switches_off_the_cache_keys(before_jax, value):
    before_jax.setenv(_cache.ENV, value)
    assert _cache.enable() is None
    assert os.environ["JAX_ENABLE_COMPILATION_CACHE"] == "False"
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_off_keeps_a_cache_the_user_set_up_for_jax(before_jax, tmp_path):
    before_jax.setenv(_cache.ENV, "off")
    before_jax.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path))
    assert _cache.enable() is None
    assert "JAX_ENABLE_COMPILATION_CACHE" not in os.environ


def test_a_folder_switches_the_cache_on_even_if_an_outer_process_switched_it_off(
        before_jax, tmp_path):
    before_jax.setenv(_cache.ENV, str(tmp_path / "xla"))
    before_jax.setenv("JAX_ENABLE_COMPILATION_CACHE", "False")  # the suite's own, say
    assert _cache.enable() == str(tmp_path / "xla")
    assert os.environ["JAX_ENABLE_COMPILATION_CACHE"] == "True"
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "xla")
    assert (tmp_path / "xla").is_dir()


def test_an_unwritable_folder_is_off(before_jax, tmp_path):
    before_jax.setenv(_cache.ENV, str(tmp_path / "file" / "xla"))
    (tmp_path / "file").write_text("not a folder")
    assert _cache.enable() is None
    assert os.environ["JAX_ENABLE_COMPILATION_CACHE"] == "False"


def test_after_jax_is_imported_the_config_is_updated(monkeypatch):
    import jax

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    was = jax.config.jax_enable_compilation_cache
    try:
        jax.config.update("jax_enable_compilation_cache", True)
        monkeypatch.setenv(_cache.ENV, "off")
        assert _cache.enable() is None
        assert jax.config.jax_enable_compilation_cache is False
    finally:
        jax.config.update("jax_enable_compilation_cache", was)


def test_a_command_with_the_cache_on_writes_its_programs(tmp_path):
    # The test processes run with the cache off (conftest.py) and pass that on in the
    # environment; a command told to cache must still cache.
    env = dict(os.environ, JAXBP_CACHE_DIR=str(tmp_path / "xla"))
    code = ("from jaxbp import _cache\n"
            "_cache.enable()\n"
            "import jax\n"
            "print(float(jax.jit(lambda x: x * 2.0)(1.5)))\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3.0"]
    assert [p for p in (tmp_path / "xla").iterdir() if p.is_file()]
