"""Running a learner's function: a time limit, autodiff refused, failures classified.

Every call to a learner's function goes through :func:`call`. It runs the function in a
worker thread (with float64 enabled there: JAX's x64 switch is per thread) and waits:

* **time limit**: the limit counts the learner's running time, not JAX's compilation:
  the time JAX reports spending on lowering and compiling (``jax.monitoring`` events)
  while the call runs is added to the deadline. A call past its deadline is stopped
  (an asynchronous exception in the worker ends a Python loop at once) and reported.
* **autodiff refused at run time**: while the call runs, ``jax.grad``, ``jax.vjp`` and
  the rest of :data:`~jaxbp.grading._impl.AUTODIFF` (and any of the learner module's
  globals bound to them) raise :class:`AutodiffRefused`. The source scan catches the
  plain uses first; this catches the indirect ones.
* **classified failures**: ``NotImplementedError("not done yet: ...")`` is
  :class:`NotDone`; any other exception becomes :class:`LearnerError` with the
  learner's own frame (file, line, code), never a traceback from inside jaxbp.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time

import jax

from jaxbp.grading._impl import AUTODIFF, learner_frame
from jaxbp.grading.generate import NOT_DONE

DEFAULT_TIME_LIMIT = 10.0  # seconds per call, compilation not counted

_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_compile_seconds = 0.0
_compile_lock = threading.Lock()
_listening = False


def _on_duration(event, duration, **kwargs):
    global _compile_seconds
    del kwargs
    if event in _COMPILE_EVENTS:
        with _compile_lock:
            _compile_seconds += duration


def _listen():
    global _listening
    if not _listening:
        jax.monitoring.register_event_duration_secs_listener(_on_duration)
        _listening = True


def compile_seconds() -> float:
    """Seconds JAX has spent lowering and compiling since the grader started."""
    with _compile_lock:
        return _compile_seconds


class Failure(Exception):
    """A learner's call that gave no answer; ``str(self)`` is the feedback."""

    status = "error"


class NotDone(Failure):
    status = "not done yet"


class TimedOut(Failure):
    status = "timeout"


class Refused(Failure):
    status = "refused"


class LearnerError(Failure):
    status = "error"


class AutodiffRefused(Exception):
    """Raised in place of JAX's autodiff while a learner's function runs."""


class _Stop(BaseException):
    """Thrown into a worker thread that ran past its time limit."""


def _refuser(name):
    def refused(*args, **kwargs):
        del args, kwargs
        raise AutodiffRefused(name)
    refused.__name__ = name.rsplit(".", 1)[-1]
    return refused


@contextlib.contextmanager
def _autodiff_refused(modules=()):
    originals = {name: getattr(jax, name) for name in AUTODIFF if hasattr(jax, name)}
    patched = []
    for name, fn in originals.items():
        setattr(jax, name, _refuser(f"jax.{name}"))
        patched.append((jax, name, fn))
    for module in modules:
        for key, value in list(vars(module).items()):
            for name, fn in originals.items():
                if value is fn:
                    setattr(module, key, _refuser(f"jax.{name}"))
                    patched.append((module, key, fn))
    try:
        yield
    finally:
        for obj, key, fn in reversed(patched):
            setattr(obj, key, fn)


def _raise_in(thread: threading.Thread):
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                               ctypes.py_object(_Stop))


def call(fn, args=(), kwargs=None, *, name: str, root, time_limit=DEFAULT_TIME_LIMIT,
         modules=(), transform=None):
    """Runs ``fn(*args, **kwargs)`` for the learner; returns its result or raises a Failure.

    Args:
      fn: the learner's function.
      args, kwargs: its arguments.
      name: the exercise's name, for messages.
      root: the learner's directory: frames in it are the learner's.
      time_limit: seconds of running time allowed, compilation not counted; ``None``
        for no limit.
      modules: the learner's modules whose globals to guard against autodiff.
      transform: optional ``transform(fn)`` applied inside the guard (e.g. ``jax.jit``).
    """
    _listen()
    kwargs = kwargs or {}
    box = {}

    done = threading.Event()

    def work():
        try:
            with jax.enable_x64(True):
                f = transform(fn) if transform else fn
                out = f(*args, **kwargs)
                try:
                    out = jax.block_until_ready(out)
                except Exception:  # noqa: BLE001 - not arrays: the comparison says so
                    pass
                box["out"] = out
        except _Stop:
            box["stopped"] = True
        except BaseException as e:  # noqa: BLE001 - the learner's code may raise anything
            box["error"] = e
        finally:
            done.set()

    with _autodiff_refused(modules):
        worker = threading.Thread(target=work, name=f"jaxbp-grade-{name}", daemon=True)
        start, compiled = time.monotonic(), compile_seconds()
        worker.start()
        while True:
            running = time.monotonic() - start - (compile_seconds() - compiled)
            left = None if time_limit is None else time_limit - running
            if done.wait(None if left is None else max(left, 0.01)):
                break
            running = time.monotonic() - start - (compile_seconds() - compiled)
            if running > time_limit:
                _raise_in(worker)
                done.wait(2.0)
                raise TimedOut(f"stopped after {time_limit:g} s (an infinite loop?): "
                               f"{name} ran longer than the limit, which counts your "
                               f"code's running time, not JAX's compilation")
    if "out" in box:
        return box["out"]
    if box.get("stopped"):
        raise TimedOut(f"stopped after {time_limit:g} s (an infinite loop?)")
    raise classify(box["error"], name=name, root=root)


def classify(e: BaseException, *, name: str, root) -> Failure:
    """The Failure that describes an exception raised by a learner's call."""
    if isinstance(e, NotImplementedError) and str(e).startswith(NOT_DONE):
        return NotDone(f"not done yet: write {name}")
    refused = _find(e, AutodiffRefused)
    if refused is not None:
        return Refused(f"refused: {name} called {refused.args[0]} at run time; the "
                       f"exercise is to write the backward pass by hand, and the grader "
                       f"checks it against JAX's autodiff, so calling it proves nothing")
    frame = learner_frame(e, root)
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    hint = ""
    if "rank promotion" in str(e) or "rank_promotion" in str(e):
        hint = ("; implicit rank promotion is off: broadcast explicitly, e.g. "
                "b[None, :] or keepdims=True")
    elif isinstance(e, jax.errors.ConcretizationTypeError) or isinstance(
            e, jax.errors.TracerBoolConversionError):
        hint = ("; under jax.jit, Python `if`/`while` on array values cannot work: use "
                "jnp.where, or keep such decisions on shapes")
    return LearnerError(f"your code raised {type(e).__name__}: {first}{frame}{hint}")


def _find(e, kind):
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, kind):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None
