"""JAX's persistent compilation cache for the ``jaxbp`` command.

Most of the wait in ``jaxbp check``, ``jaxbp notes`` and ``jaxbp demo`` is XLA compiling
many small programs, the same ones on every run. With the persistent cache the second
run of a command loads them from disk instead (``jaxbp check``: about 48 s of CPU on a
first run, 11 s on the next, measured on a busy 2-core machine).

Where: ``$JAXBP_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/jaxbp/xla`` (by default
``~/.cache/jaxbp/xla``). It is safe to delete at any time. ``JAXBP_CACHE_DIR=off``
switches it off (``benchmarks/latency.py`` does, to measure first runs), and with it the
cache key JAX otherwise computes for every compilation (:func:`disable`). ``jaxbp bench``
never uses it (it reports first-call compile times). ``jaxbp grade`` caches the grader's
own programs only, and only where Landlock confines the learner's code (which runs in
a sandboxed worker with a clean environment that neither reads nor writes the cache)
to its job's folder: without Landlock that code could write where the grader reads.
"""

from __future__ import annotations

import os
import sys

ENV = "JAXBP_CACHE_DIR"


def cache_dir() -> str | None:
    """The folder the cache lives in, or ``None`` when it is switched off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "none") else value
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxbp", "xla")


def enable() -> str | None:
    """Points JAX's persistent compilation cache at :func:`cache_dir`, caching every
    program however quickly it compiled (jaxbp's are many and small). Returns the
    folder, or ``None`` when switched off or not writable (then :func:`disable`)."""
    path = cache_dir()
    if path is not None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            path = None
    if path is None or not os.access(path, os.W_OK):
        disable()
        return None
    _configure({"jax_enable_compilation_cache": True, "jax_compilation_cache_dir": path,
                "jax_persistent_cache_min_compile_time_secs": 0.0,
                "jax_persistent_cache_min_entry_size_bytes": 0})
    return path


def disable() -> None:
    """No persistent cache in this process: JAX then skips the cache key it otherwise
    computes for every compilation, cache or no cache (it serializes and hashes the
    program: a tenth of the CPU time of compiling small programs, measured 2026-12-02).
    A cache the user set up for JAX itself (``JAX_COMPILATION_CACHE_DIR``) is kept."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    if "jax" in sys.modules:
        import jax

        if jax.config.jax_compilation_cache_dir:
            return
    _configure({"jax_enable_compilation_cache": False})


def _configure(settings: dict) -> None:
    if "jax" not in sys.modules:
        # JAX reads JAX_<OPTION> from the environment when it is imported: set so, the
        # command imports JAX only when its work needs it (an argument error does not).
        for name, value in settings.items():
            os.environ[name.upper()] = str(value)
        return
    import jax

    for name, value in settings.items():
        jax.config.update(name, value)
