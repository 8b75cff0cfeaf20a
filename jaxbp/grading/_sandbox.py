"""Running a learner's code in the grading worker (``_worker.py``), from outside.

:class:`Sandbox` starts the worker (a fresh ``python -I -S``, whose ``sys.path`` holds
the standard library and a directory of links to the third-party packages JAX needs:
not jaxbp, not ``solutions/``, not the grader) and hands it one job per exercise: the
case inputs (``.npz``), a private copy of the learner's files, the limits. The worker
forks a child for the job, and this side watches it: the child's heartbeats say how long
the learner's code has run in the current import or call, JAX's compilation not counted,
and the child's process group is killed past the time limit, past a compilation limit,
or when it falls silent. Whatever happens to the child (an exit, a signal, a hang) ends
that exercise only: the next job gets a new child, and a new worker if need be.

Nothing here imports or calls the learner's code, and nothing the child sends is more
than JSON and plain arrays.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib.metadata
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jaxbp.grading import _wire

DEFAULT_TIME_LIMIT = 10.0      # seconds per import or call, compilation not counted
DEFAULT_MEMORY_LIMIT = 4 << 30  # bytes of address space, on top of JAX's own
COMPILE_LIMIT = 120.0          # seconds one JAX compilation may take
ALL_CASES = -1                 # the case the worker reports while every case runs at once
SILENCE = 5.0                  # seconds without a heartbeat (past the limit) to give up
START_LIMIT = 180.0            # seconds the worker may take to import JAX


def compile_limit(n_cases: int, case) -> float:
    """The seconds one compilation may take: :data:`COMPILE_LIMIT` a case, so the program
    the worker compiles from all of an exercise's cases gets that many times as long."""
    return COMPILE_LIMIT * max(1, n_cases) if case == ALL_CASES else COMPILE_LIMIT


# Never importable in the worker, even where installed beside JAX: the answers, and
# other autodiff systems.
DENIED = ("jaxbp", "solutions", "exercises", "torch", "functorch", "tensorflow",
          "autograd", "sympy", "theano", "mxnet", "paddle", "optax", "flax", "equinox",
          "haiku", "chex", "keras")
# The worker's third-party packages: these distributions and what they require.
BASE_DISTRIBUTIONS = ("jax", "jaxlib", "numpy")
MAX_FILES, MAX_BYTES = 200, 20 << 20  # the learner's folder, as copied for the worker

WORKER_SOURCE = Path(__file__).with_name("_worker.py")


class SandboxError(Exception):
    """The worker could not be started (a broken installation, not the learner)."""


@dataclasses.dataclass
class Job:
    """One exercise for the worker."""

    exercise: str
    module: str                 # e.g. "01_activations.py"
    impl_root: Path             # the learner's folder (copied; never run from here)
    cases: list                 # every call's arguments (trees of arrays and numbers)
    static_argnums: tuple = ()
    time_limit: float | None = DEFAULT_TIME_LIMIT
    scan: bool = True           # the source scan (off only in tests of the run-time locks)
    jit: bool = True
    mutation_cases: tuple = ()  # cases also called eagerly on numpy inputs, then compared
    scan_only: tuple = ()       # ((module, function), ...): only the source checks
    compiler_options: dict | None = None  # XLA options for the learner's jitted function


@dataclasses.dataclass
class Outcome:
    """What came back for one job.

    ``stop``: every check fails for one reason (``{"kind": ...}``: ``syntax``,
    ``refused``, ``stub``, ``not_done``, ``import``, ``missing``, ``timeout``, ``crash``,
    ``worker``...), else None. ``outputs``/``errors``: each case's output, or what it
    raised (a dict from the worker). ``jit_error``: the first error only ``jax.jit``
    raised. ``mutated``: cases whose inputs the function changed in place, and where.
    """

    stop: dict | None = None
    outputs: dict[int, Any] = dataclasses.field(default_factory=dict)
    errors: dict[int, dict] = dataclasses.field(default_factory=dict)
    jit_error: dict | None = None
    mutated: dict[int, str] = dataclasses.field(default_factory=dict)
    scanned: dict[str, dict] = dataclasses.field(default_factory=dict)  # scan_only jobs
    seconds: float = 0.0  # wall time of the job
    cpu: float = 0.0      # CPU time of the child, as it reported it
    landlock: int = 0     # the Landlock ABI that confined the child (0: none)


# ----------------------------------------------------------------------- the site view


def _requirements(dist) -> list[str]:
    out = []
    for req in dist.requires or ():
        if "extra ==" in req.replace('"', " ").replace("'", " ") or "extra==" in req:
            continue
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if m:
            out.append(m.group(1))
    return out


def _top_levels(dist) -> set[str]:
    names = set()
    text = dist.read_text("top_level.txt")
    if text:
        names |= {line.strip() for line in text.splitlines() if line.strip()}
    for f in dist.files or ():
        first = f.parts[0] if f.parts else ""
        if first and first != ".." and not first.endswith((".dist-info", ".egg-info",
                                                           ".data")) \
                and first != "__pycache__":
            names.add(first[:-3] if first.endswith(".py") else first)
    return names


def site_entries() -> list[Path]:
    """The files and directories of the distributions JAX needs (and theirs)."""
    seen, queue, entries = set(), list(BASE_DISTRIBUTIONS), []
    while queue:
        name = queue.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        base = Path(dist.locate_file(""))
        for top in _top_levels(dist):
            for candidate in (base / top, base / f"{top}.py", base / f"{top}.libs"):
                if candidate.exists() and candidate.name.split(".")[0] not in DENIED:
                    entries.append(candidate)
        queue += _requirements(dist)
    return sorted(set(entries))


def site_view(dest: Path) -> Path:
    """A directory of links to :func:`site_entries`: the worker's site-packages."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in site_entries():
        link = dest / entry.name
        if not link.exists():
            link.symlink_to(entry)
    return dest


# ----------------------------------------------------------------------- the sandbox


def copy_impl(src: Path, dest: Path) -> str | None:
    """Copies the learner's Python files; returns why not, if the folder is too big."""
    count = size = 0
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
        rel = Path(dirpath).relative_to(src)
        for name in filenames:
            path = Path(dirpath) / name
            if not name.endswith(".py") or path.is_symlink() or not path.is_file():
                continue
            count += 1
            size += path.stat().st_size
            if count > MAX_FILES or size > MAX_BYTES:
                return (f"the folder {src} holds more than {MAX_FILES} Python files or "
                        f"{MAX_BYTES >> 20} MB of them: grade the exercises' folder")
            (dest / rel).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / rel / name)
    dest.mkdir(parents=True, exist_ok=True)
    return None


class Sandbox:
    """The grading worker, started on first use and restarted whenever it dies."""

    def __init__(self, memory_limit: int | None = DEFAULT_MEMORY_LIMIT, keep: bool = False,
                 landlock: bool = True):
        self.memory_limit = memory_limit
        self.landlock = landlock  # confine the child's filesystem where Linux can
        self.keep = keep  # keep each job's directory (for debugging the grader)
        self._tmp: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._lines = b""
        self._ready = False
        self._jobs = 0
        self.worker_pid: int | None = None

    # -- the worker process

    def _setup(self):
        self._tmp = Path(tempfile.mkdtemp(prefix="grading-sandbox-"))
        shutil.copyfile(WORKER_SOURCE, self._tmp / "worker.py")
        view = site_view(self._tmp / "site")
        (self._tmp / "config.json").write_text(
            json.dumps({"path": [str(view)], "denied": list(DENIED)}), encoding="utf-8")
        (self._tmp / "home").mkdir()
        (self._tmp / "jobs").mkdir()

    def start(self):
        """Starts the worker if none is running (it imports JAX in the background)."""
        if self._proc is not None and self._proc.poll() is None:
            return
        self._stop_worker()
        if self._tmp is None:
            self._setup()
        parent, child = socket.socketpair()
        home = str(self._tmp / "home")
        env = {"PATH": os.defpath, "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
               "JAX_PLATFORMS": "cpu", "MALLOC_ARENA_MAX": "2",
               # no persistent cache here, so no cache key for every compilation
               "JAX_ENABLE_COMPILATION_CACHE": "false",
               # small arrays: one thread, and quick compilation over fast code
               "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false "
                            "--xla_backend_optimization_level=0"}
        with open(self._tmp / "worker.log", "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", str(self._tmp / "worker.py"),
                 str(child.fileno()), str(self._tmp / "config.json")],
                pass_fds=[child.fileno()], cwd=home, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        child.close()
        self._sock, self._lines, self._ready = parent, b"", False
        self.worker_pid = self._proc.pid

    def _wait_ready(self):
        self.start()
        if self._ready:
            return
        message = self._read_line(START_LIMIT)
        if not message or not message.get("ready"):
            log = self._log_tail()
            self._stop_worker()
            raise SandboxError(f"the grading worker did not start (python {sys.executable})"
                               f"{': ' + log if log else ''}")
        self._ready = True

    def _log_tail(self) -> str:
        try:
            return (self._tmp / "worker.log").read_text(errors="replace")[-1500:].strip()
        except OSError:
            return ""

    def _read_line(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._lines:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(1 << 16)
            except (socket.timeout, OSError):
                return None
            if not chunk:
                return None
            self._lines += chunk
        line, self._lines = self._lines.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return None

    def _stop_worker(self):
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self._sock is not None:
            self._sock.close()
        self._proc, self._sock, self._ready = None, None, False

    def close(self):
        """Stops the worker and removes its files."""
        self._stop_worker()
        if self._tmp is not None and not self.keep:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one job

    def run(self, job: Job) -> Outcome:
        """Grades one exercise in a fresh child of the worker; never raises for anything
        the learner's code does."""
        started = time.monotonic()
        self._wait_ready()
        self._jobs += 1
        d = self._tmp / "jobs" / f"{self._jobs:03d}-{job.exercise}"
        (d / "work").mkdir(parents=True)
        problem = copy_impl(job.impl_root, d / "impl")
        if problem:
            return Outcome(stop={"kind": "too_big", "text": problem})
        arrays: dict = {}
        cases = [_wire.encode_args(tuple(args), arrays) for args in job.cases]
        (d / "inputs.npz").write_bytes(_wire.npz_bytes(arrays))
        limit = job.time_limit
        spec = {"dir": str(d), "impl": str(d / "impl"), "module": job.module,
                "function": job.exercise, "static_argnums": list(job.static_argnums),
                "jit": job.jit, "scan": job.scan, "cases": cases,
                "mutation_cases": list(job.mutation_cases),
                "scan_only": [list(pair) for pair in job.scan_only],
                "compiler_options": job.compiler_options,
                # capped where the kernel's limit is (a huge --time-limit is no limit)
                "cpu_limit": int(3600 if limit is None else
                                 min(300 + 3 * limit * (len(cases) + 2), 2 ** 31 - 1)),
                "memory_limit": self.memory_limit, "landlock": self.landlock,
                "view": [str(self._tmp / "site")]}
        (d / "job.json").write_text(json.dumps(spec), encoding="utf-8")
        try:
            outcome = self._watch(job, d, len(cases))
        finally:
            if not self.keep:
                shutil.rmtree(d, ignore_errors=True)
        outcome.seconds = time.monotonic() - started
        return outcome

    def scan(self, impl_root: Path, pairs) -> dict[str, dict]:
        """The source checks of several exercises at once (``[(module, function)]``),
        before any of the learner's code runs: ``{function: found}``, where ``found``
        is ``{}`` (go ahead) or why the exercise stops (a refusal, a stub...)."""
        pairs = [tuple(p) for p in pairs]
        if not pairs:
            return {}
        outcome = self.run(Job(pairs[0][1], pairs[0][0], impl_root, [], scan_only=tuple(pairs)))
        if outcome.stop is not None:  # the checks themselves failed: grade one by one
            return {}
        return outcome.scanned

    def _send(self, d: Path, nonce: str) -> int | None:
        """Hands the job to the worker; returns the read end of the child's pipe."""
        r, w = os.pipe()
        try:
            message = json.dumps({"nonce": nonce, "job": str(d / "job.json")}).encode()
            socket.send_fds(self._sock, [message], [w])
            return r
        except OSError:
            os.close(r)
            return None
        finally:
            os.close(w)

    def _watch(self, job: Job, d: Path, n_cases: int) -> Outcome:
        nonce = secrets.token_hex(8)
        r = self._send(d, nonce)
        if r is None:  # the worker died since the last job: once more, with a new one
            self._stop_worker()
            self._wait_ready()
            r = self._send(d, nonce)
            if r is None:
                return Outcome(stop={"kind": "worker", "text": "cannot reach the worker"})
        watch = _Watch(self, job, nonce, r, n_cases)
        try:
            return watch.run()
        finally:
            os.close(r)
            if watch.worker_died:
                self._stop_worker()


class _Watch:
    """Reads one child's frames and the worker's messages; enforces the limits."""

    def __init__(self, sandbox: Sandbox, job: Job, nonce: str, fd: int, n_cases: int):
        self.sandbox, self.job, self.nonce, self.fd = sandbox, job, nonce, fd
        self.n_cases = n_cases
        self.outcome = Outcome()
        self.buffer = b""
        self.pending = None     # a case message waiting for its arrays
        self.pid = None
        self.status = None
        self.done = False
        self.killed = None      # why this side stopped the child
        self.worker_died = False
        self.last = {"phase": "setup", "run_s": 0.0, "compiling": False, "compile_s": 0.0,
                     "case": None}
        self.last_at = time.monotonic()

    def run(self) -> Outcome:
        sel = selectors.DefaultSelector()
        sel.register(self.fd, selectors.EVENT_READ, "child")
        sel.register(self.sandbox._sock, selectors.EVENT_READ, "worker")
        limit = self.job.time_limit
        started = time.monotonic()
        wall_cap = None if limit is None else 300 + 3 * limit * (self.n_cases + 2)
        child_open = True
        try:
            while self.status is None and not self.worker_died:
                for key, _ in sel.select(0.05):
                    if key.data == "child":
                        chunk = self._read(self.fd)
                        if chunk:
                            self._feed(chunk)
                        else:
                            sel.unregister(self.fd)
                            child_open = False
                    else:
                        self._worker_messages()
                if self.pid is None and time.monotonic() - started > 60:
                    self.worker_died = True
                    break
                if self.killed is None and self.pid is not None and not self.done:
                    self._check_limits(limit, wall_cap, started)
            if child_open and not self.worker_died:  # what the child wrote before it ended
                while True:
                    chunk = self._read(self.fd, block=False)
                    if not chunk:
                        break
                    self._feed(chunk)
        finally:
            sel.close()
            if self.pid is not None:  # the child's group: anything it left running
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except OSError:
                    pass
        return self._finish()

    @staticmethod
    def _read(fd, block=True) -> bytes:
        if not block:
            import select
            if not select.select([fd], [], [], 0)[0]:
                return b""
        try:
            return os.read(fd, 1 << 20)
        except OSError:
            return b""

    def _worker_messages(self):
        try:
            chunk = self.sandbox._sock.recv(1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.worker_died = True
            return
        self.sandbox._lines += chunk
        while b"\n" in self.sandbox._lines:
            line, self.sandbox._lines = self.sandbox._lines.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("nonce") != self.nonce:
                continue
            if "pid" in message:
                self.pid = int(message["pid"])
            if "status" in message:
                self.status = int(message["status"])

    def _feed(self, chunk: bytes):
        self.buffer += chunk
        while len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if size > 512 << 20:
                self._protocol("a message too large")
                self.buffer = b""
                return
            if len(self.buffer) < 4 + size:
                return
            frame, self.buffer = self.buffer[4:4 + size], self.buffer[4 + size:]
            kind, payload = frame[:1], frame[1:]
            if kind == b"B" and self.pending is not None:
                message, self.pending = self.pending, None
                try:
                    arrays = _wire.read_npz(payload)
                    self.outcome.outputs[message["i"]] = _wire.decode_output(
                        message["tree"], arrays)
                except Exception as e:  # noqa: BLE001 - anything the child sent
                    self.outcome.errors[message["i"]] = {
                        "kind": "error", "text": f"its output could not be read ({e})"}
                continue
            try:
                message = json.loads(payload)
            except ValueError:
                self._protocol("unreadable data")
                continue
            self._message(message)

    def _protocol(self, what):
        if self.outcome.stop is None:
            self.outcome.stop = {"kind": "protocol", "text": what}

    def _message(self, m: dict):
        t = m.get("t")
        if t == "hb":
            self.last, self.last_at = m, time.monotonic()
        elif t == "case":
            if "error" in m:
                self.outcome.errors[int(m["i"])] = m["error"]
            else:
                self.pending = m
        elif t == "stop":
            if self.outcome.stop is None:
                self.outcome.stop = m
        elif t == "jit":
            self.outcome.jit_error = m.get("error")
        elif t == "scanned":
            self.outcome.scanned[str(m.get("function"))] = m.get("found") or {}
        elif t == "landlock":
            self.outcome.landlock = int(m.get("abi") or 0)
        elif t == "mutated":
            self.outcome.mutated[int(m["i"])] = str(m.get("where"))[:200]
        elif t == "done":
            self.done = True
            self.outcome.cpu = float(m.get("cpu_s") or 0.0)

    def _check_limits(self, limit, wall_cap, started):
        now = time.monotonic()
        last = self.last
        phase = last.get("phase")
        if last.get("compiling") and float(last.get("compile_s", 0)) > compile_limit(
                self.n_cases, last.get("case")):
            self._kill("compile")
        elif limit is not None and phase in ("import", "call") and \
                float(last.get("run_s", 0)) > limit:
            self._kill("limit")
        elif limit is not None and now - self.last_at > limit + SILENCE and \
                not last.get("compiling"):
            self._kill("silent")
        elif wall_cap is not None and now - started > wall_cap:
            self._kill("wall")

    def _kill(self, why):
        self.killed = why
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def _finish(self) -> Outcome:
        out = self.outcome
        phase, case = self.last.get("phase"), self.last.get("case")
        if self.killed is not None:
            out.stop = {"kind": "timeout", "why": self.killed, "phase": phase,
                        "case": case}
        elif self.worker_died and not self.done:
            out.stop = out.stop or {"kind": "crash", "how": "the grading worker died",
                                    "phase": phase, "case": case}
        elif not self.done:
            out.stop = out.stop if out.stop and out.stop.get("kind") != "protocol" else {
                "kind": "crash", "how": describe_status(self.status), "phase": phase,
                "case": case, "signal": _signal_of(self.status)}
        return out


def _signal_of(status):
    if status is not None and os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return None


def describe_status(status: int | None) -> str:
    """How a child ended, in words."""
    if status is None:
        return "for an unknown reason"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        why = {"SIGSEGV": ": a segmentation fault (a C stack overflow from deep recursion, "
                          "or native code)",
               "SIGABRT": ": aborted (out of memory inside XLA?)",
               "SIGKILL": ": killed (out of memory?)",
               "SIGXCPU": ": past its CPU time limit",
               "SIGXFSZ": ": it wrote more than 64 MiB to a file or to its output",
               "SIGBUS": ": a bus error (native code)"}.get(name, "")
        return f"by {name}{why}"
    return f"with exit status {os.WEXITSTATUS(status)}"


_SHARED: Sandbox | None = None


def shared() -> Sandbox:
    """This process's sandbox (one worker, started on first use, stopped at exit)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Sandbox()
        atexit.register(_close_shared)
    return _SHARED


def _close_shared():
    global _SHARED
    if _SHARED is not None:
        _SHARED.close()
        _SHARED = None
