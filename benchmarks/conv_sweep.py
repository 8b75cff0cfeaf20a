"""Which convolution geometries make XLA's CPU compiler abort, through jaxbp and through
plain ``jax.vjp``, and do jaxbp's gradients agree with PyTorch on all of them?

Some valid convolutions (for instance a (6, 2) kernel, stride (4, 2), padding 1 over a
5x6 input) kill the process while XLA compiles their backward pass: a failed internal
check, SIGABRT, no Python exception to catch. This script sweeps conv1d and conv2d
geometries (input sizes, kernel sizes, strides, paddings: "VALID", "SAME", an int,
asymmetric (low, high) pairs) and, for each, compiles and runs under ``jax.jit``:

* ``jaxbp.forward``, ``jaxbp.dx``, ``jaxbp.dw``: the layer's forward, its hand-written
  input gradient and its kernel gradient (float32, JAX's default);
* ``vjp.dx``, ``vjp.dw``: ``jax.vjp`` of ``lax.conv_general_dilated`` with the same
  geometry, with respect to the input and to the kernel (float32);
* ``torch`` (when PyTorch is installed): jaxbp's output, ``dx``, ``dw`` and ``db`` in
  float64 against ``torch.nn.functional.conv1d``/``conv2d`` autograd.

Every stage runs in a child process, many per child; when a child dies, the stage it
had begun is recorded as an abort (with the compiler's message) and a new child takes
the remaining stages, so an abort is a result, not the end of the sweep.

    python benchmarks/conv_sweep.py                  # 76 geometries, ~150 s of CPU
    python benchmarks/conv_sweep.py --full           # 3600 geometries
    python benchmarks/conv_sweep.py --json out.json  # also every result as JSON
    python benchmarks/conv_sweep.py --configs out.json --only vjp   # re-run a list

The default sample always includes the geometries of ``KNOWN``, which aborted through
``jax.vjp`` with jax 0.10.2, so a new JAX release is re-checked with one command. Exit
status 1 when any jaxbp stage aborts, raises or disagrees with PyTorch, else 0.

What it found with jax 0.10.2 (CPU): over 1001 random geometries (300 conv1d, 701
conv2d) and 221 drawn near the trigger, only the input gradient of conv2d ever aborted
(2 and 10 geometries, through ``jax.vjp`` and through jaxbp alike), exactly where XLA's
operand swap meets an axis with kernel 2, stride 2 and no padding in the ``dx``
correlation (``jaxbp/layers/conv.py`` explains it); no forward, no kernel gradient, no
conv1d. jaxbp now computes those ``dx`` another way and aborts on none of them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import zlib

JAXBP_STAGES = ("jaxbp.forward", "jaxbp.dx", "jaxbp.dw")
VJP_STAGES = ("vjp.dx", "vjp.dw")
TORCH_STAGE = "torch"

# Ranges the configurations are drawn from (per spatial axis).
SIZES = range(1, 10)
KERNELS = range(1, 8)
STRIDES = range(1, 6)
PADS = range(0, 4)

# Geometries that aborted through jax.vjp (and through jaxbp before it routed them to
# another formulation) with jax 0.10.2: (input sizes, kernel, stride, padding). The
# first is the one reported; all have an axis with kernel 2, stride 2 and a dx
# correlation without padding, and a kernel larger than dy on the other axis.
KNOWN = [
    ((5, 6), (6, 2), (4, 2), 1),
    ((7, 6), (6, 2), (2, 2), 1),
    ((4, 4), (2, 6), (2, 2), 1),
    ((5, 8), (5, 2), (1, 2), ((2, 0), (1, 2))),
    ((6, 4), (2, 5), (2, 3), ((1, 2), (2, 0))),
    ((8, 5), (2, 4), (2, 2), ((1, 2), (0, 0))),
]


# ----------------------------------------------------------------------- configurations


def explicit_pads(cfg):
    """(low, high) per axis, resolving "VALID"/"SAME" as ``lax`` does."""
    n, sizes, ks, ss, pad = cfg["n"], cfg["size"], cfg["k"], cfg["s"], cfg["padding"]
    if pad == "VALID":
        return [(0, 0)] * n
    if pad == "SAME":
        out = []
        for size, k, s in zip(sizes, ks, ss):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            out.append((total // 2, total - total // 2))
        return out
    if isinstance(pad, int):
        return [(pad, pad)] * n
    return [tuple(p) for p in pad]


def output_sizes(cfg):
    return [(size + lo + hi - k) // s + 1 for size, k, s, (lo, hi)
            in zip(cfg["size"], cfg["k"], cfg["s"], explicit_pads(cfg))]


def make_config(n, sizes, ks, ss, padding, index):
    # Input channels vary (1, 2, 5) so that both forward formulations are exercised.
    cfg = {"n": n, "size": list(sizes), "k": list(ks), "s": list(ss),
           "padding": padding, "c_in": (1, 2, 5)[index % 3], "c_out": 3, "batch": 2}
    return cfg if min(output_sizes(cfg)) >= 1 else None


def describe(cfg):
    def tup(v):
        return "(" + ", ".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"
    pad = cfg["padding"]
    if isinstance(pad, list):
        pad = tup(pad[0]) if cfg["n"] == 1 else "(" + ", ".join(tup(p) for p in pad) + ")"
    elif isinstance(pad, str):
        pad = repr(pad)
    return (f"conv{cfg['n']}d k={tup(cfg['k'])} stride={tup(cfg['s'])} padding={pad} "
            f"x=({cfg['batch']}, {', '.join(map(str, cfg['size']))}, {cfg['c_in']})")


def random_padding(rng, n):
    kind = rng.choice(("VALID", "SAME", "int", "pairs"))
    if kind in ("VALID", "SAME"):
        return kind
    if kind == "int":
        return rng.choice(PADS[1:])
    return [[rng.choice(PADS), rng.choice(PADS)] for _ in range(n)]


def sample_configs(n_1d, n_2d, seed):
    """``n_1d`` conv1d and ``n_2d`` conv2d valid configurations, distinct, drawn
    uniformly from the ranges above (with a fixed seed), after those of ``KNOWN``."""
    rng = random.Random(seed)
    configs, seen = [], set()

    def add(cfg):
        if cfg is None:
            return False
        key = json.dumps([cfg["n"], cfg["size"], cfg["k"], cfg["s"], cfg["padding"]])
        if key in seen:
            return False
        seen.add(key)
        configs.append(cfg)
        return True

    for sizes, ks, ss, pad in KNOWN:
        pad = [list(p) for p in pad] if isinstance(pad, tuple) else pad
        add(make_config(2, sizes, ks, ss, pad, len(configs)))
    for n, count in ((1, n_1d), (2, n_2d)):
        if n == 1:  # the whole 1-D grid, shuffled, when it is small enough
            grid = [make_config(1, (size,), (k,), (s,), pad, 0)
                    for size, k, s in itertools.product(SIZES, KERNELS, STRIDES)
                    for pad in ("VALID", "SAME", *PADS[1:],
                                *([[lo, hi]] for lo in PADS for hi in PADS if lo != hi))]
            grid = [c for c in grid if c is not None]
            rng.shuffle(grid)
            for cfg in grid[:count]:
                cfg["c_in"] = (1, 2, 5)[len(configs) % 3]
                add(cfg)
            continue
        added, attempts = 0, 0
        while added < count and attempts < 100 * count:
            attempts += 1
            cfg = make_config(n, [rng.choice(SIZES) for _ in range(n)],
                              [rng.choice(KERNELS) for _ in range(n)],
                              [rng.choice(STRIDES) for _ in range(n)],
                              random_padding(rng, n), len(configs))
            added += add(cfg)
    return configs


def load_configs(path, parser):
    """Configurations from a JSON file (a list, or --json's output)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        parser.error(f"--configs: cannot read {path}: {e}")
    items = data["configurations"] if isinstance(data, dict) else data
    keys = ("n", "size", "k", "s", "padding", "c_in", "c_out", "batch")
    configs = []
    for item in items if isinstance(items, list) else [None]:
        if not isinstance(item, dict) or any(k not in item for k in keys):
            parser.error(f"--configs: each configuration needs the keys {', '.join(keys)}, "
                         f"got {item!r}"[:300])
        cfg = {k: item[k] for k in keys}
        try:
            ok = min(output_sizes(cfg)) >= 1
        except (TypeError, ValueError, IndexError):
            ok = False
        if not ok:
            parser.error(f"--configs: not a valid convolution: {cfg}")
        configs.append(cfg)
    return configs


# ----------------------------------------------------------------------------- child


def _child():
    """Runs the stages given as JSON on stdin, announcing each on stdout before it
    starts (``B``) and after it ends (``E``), so that the parent knows which one a
    crash interrupted."""
    import numpy as np

    import jax
    import jax.numpy as jnp
    from jax import lax

    import jaxbp

    def layer_of(cfg):
        pad = cfg["padding"]
        if isinstance(pad, list):
            pad = tuple(tuple(p) for p in pad)
            pad = pad[0] if cfg["n"] == 1 else pad
        make = jaxbp.conv1d if cfg["n"] == 1 else jaxbp.conv2d
        return make(cfg["c_out"], tuple(cfg["k"]), stride=tuple(cfg["s"]), padding=pad)

    def arrays(cfg):
        """x, w, b, dy as float64 NumPy arrays, the same for every stage of ``cfg``."""
        rng = np.random.default_rng(zlib.crc32(describe(cfg).encode()))
        return (rng.standard_normal((cfg["batch"], *cfg["size"], cfg["c_in"])),
                rng.standard_normal((*cfg["k"], cfg["c_in"], cfg["c_out"])),
                rng.standard_normal((cfg["c_out"],)),
                rng.standard_normal((cfg["batch"], *output_sizes(cfg), cfg["c_out"])))

    def lax_conv(cfg):
        n = cfg["n"]
        sp = "W" if n == 1 else "HW"
        pad = cfg["padding"]
        pad = pad if isinstance(pad, str) else explicit_pads(cfg)
        return lambda x, w: lax.conv_general_dilated(
            x, w, window_strides=tuple(cfg["s"]), padding=pad,
            dimension_numbers=("N" + sp + "C", sp + "IO", "N" + sp + "C"))

    def run_jaxbp(cfg, what, dtype):
        """jaxbp's forward, dx or dw, or all three (``what == "all"``) in one jit."""
        layer = layer_of(cfg)
        x, w, b, dy = (jnp.asarray(a, dtype) for a in arrays(cfg))
        p = {"w": w, "b": b}

        def stage(p, x, dy):
            y, res = layer.forward(p, x)
            if what == "forward":
                return y
            grads, dx = layer.backward(p, res, dy)
            return {"dx": dx, "dw": grads, "all": (y, grads, dx)}[what]
        return jax.block_until_ready(jax.jit(stage)(p, x, dy))

    def run_vjp(cfg, what):
        conv = lax_conv(cfg)
        x, w, _, dy = (jnp.asarray(a, jnp.float32) for a in arrays(cfg))
        if what == "dx":
            f = jax.jit(lambda x, w, dy: jax.vjp(lambda x: conv(x, w), x)[1](dy)[0])
        else:
            f = jax.jit(lambda x, w, dy: jax.vjp(lambda w: conv(x, w), w)[1](dy)[0])
        return jax.block_until_ready(f(x, w, dy))

    def torch_check(cfg):
        try:  # imported only here: children that never reach this stage start faster
            import torch
            import torch.nn.functional as F
        except ImportError:
            return "skipped", "torch not installed"
        n = cfg["n"]
        x, w, b, dy = arrays(cfg)
        xt = torch.tensor(np.moveaxis(x, -1, 1), requires_grad=True)
        wt = torch.tensor(np.moveaxis(np.moveaxis(w, -1, 0), -1, 1), requires_grad=True)
        bt = torch.tensor(b, requires_grad=True)
        flat = [v for lo_hi in reversed(explicit_pads(cfg)) for v in lo_hi]
        conv = F.conv1d if n == 1 else F.conv2d
        yt = conv(F.pad(xt, flat), wt, bt, stride=tuple(cfg["s"]))
        yt.backward(torch.tensor(np.moveaxis(dy, -1, 1)))
        ref = {"y": np.moveaxis(yt.detach().numpy(), 1, -1),
               "dx": np.moveaxis(xt.grad.numpy(), 1, -1),
               "dw": np.moveaxis(np.moveaxis(wt.grad.numpy(), 0, -1), 0, -2),
               "db": bt.grad.numpy()}
        with jax.enable_x64(True):
            y, grads, dx = run_jaxbp(cfg, "all", jnp.float64)
        got = {"y": y, "dx": dx, "dw": grads["w"], "db": grads["b"]}
        bad = []
        for name, r in ref.items():
            g = np.asarray(got[name])
            if g.dtype != np.float64:
                bad.append(f"{name} dtype {g.dtype}, expected float64")
            elif g.shape != r.shape:
                bad.append(f"{name} shape {g.shape} != torch {r.shape}")
            elif not np.allclose(g, r, rtol=1e-9, atol=1e-9 * (1 + np.abs(r).max())):
                bad.append(f"{name} max error {np.abs(g - r).max():.3g}")
        return ("mismatch", "; ".join(bad)) if bad else ("ok", "")

    for idx, cfg, stage in json.load(sys.stdin):
        print(f"B {idx} {stage}", flush=True)
        try:
            family, what = stage.split(".") if "." in stage else (stage, "all")
            if family == "jaxbp":
                run_jaxbp(cfg, what, jnp.float32)
                status, detail = "ok", ""
            elif family == "vjp":
                run_vjp(cfg, what)
                status, detail = "ok", ""
            else:
                status, detail = torch_check(cfg)
        except Exception as e:  # a Python exception is a result too (not an abort)
            status, detail = "error", f"{type(e).__name__}: {e}"[:300]
        print("E " + json.dumps([idx, stage, status, detail]), flush=True)


# ---------------------------------------------------------------------------- parent


def _abort_message(stderr_path):
    """The compiler's failed check, from the dead child's stderr (first such line)."""
    try:
        with open(stderr_path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for i, line in enumerate(lines):
        if "Check failed" in line or "Fatal Python error" in line:
            return " ".join([line.strip(), *(s.strip() for s in lines[i + 1:i + 3])])[:400]
    tail = [s for s in lines if s.strip() and not s.lstrip().startswith("@")]
    return (tail[-1].strip() if tail else "")[:400]


def _run_shard(tasks, results, progress, lock, stage_timeout):
    """Runs ``tasks`` in as many children as it takes: a stage that kills its child is
    recorded as an abort and a new child starts after it. A combined ``jaxbp`` stage
    that aborts is split into its forward, dx and dw stages, to find which one does."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    pending = list(tasks)
    while pending:
        with tempfile.TemporaryFile("w+") as stdin, \
                tempfile.NamedTemporaryFile("w+", suffix=".stderr", delete=False) as err:
            json.dump(pending, stdin)
            stdin.seek(0)
            proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child"],
                                    stdin=stdin, stdout=subprocess.PIPE, stderr=err,
                                    text=True, env=env)
        lines = queue.Queue()

        def read(stream=proc.stdout, lines=lines):
            for line in stream:
                lines.put(line)
            lines.put(None)  # end of the child's output

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        started, done, timed_out = None, set(), False
        while True:
            try:
                line = lines.get(timeout=stage_timeout)
            except queue.Empty:
                proc.kill()  # a stage that hangs is recorded as such, and skipped
                timed_out = True
                break
            if line is None:
                break
            if line.startswith("B "):
                _, idx, stage = line.split()
                started = (int(idx), stage)
            elif line.startswith("E "):
                idx, stage, status, detail = json.loads(line[2:])
                with lock:
                    results[(idx, stage)] = {"status": status, "detail": detail}
                    progress[0] += 1
                done.add((idx, stage))
                started = None
        reader.join(timeout=5)
        rc = proc.wait()
        message = _abort_message(err.name)
        os.unlink(err.name)
        if started is not None:  # the child died (or hung) inside this stage
            with lock:
                results[started] = {"status": "timeout" if timed_out else "abort",
                                    "detail": message, "rc": rc}
                progress[0] += 1
            done.add(started)
        elif rc != 0:
            raise RuntimeError(f"a sweep child failed outside any stage (exit {rc}): "
                               f"{message}")
        rest = [t for t in pending if (t[0], t[2]) not in done]
        if started is not None and started[1] == "jaxbp":
            cfg = next(t[1] for t in pending if t[0] == started[0])
            rest = [[started[0], cfg, s] for s in JAXBP_STAGES] + rest
            with lock:
                progress[1] += len(JAXBP_STAGES)
        pending = rest


def run_sweep(configs, stages, workers, stage_timeout=300, quiet=False):
    """Runs every stage of every configuration, ``workers`` children at a time; returns
    {(config index, stage): {"status", "detail"}}."""
    main_stages = [s for s in stages if s != TORCH_STAGE]
    shards = []
    for w in range(workers):  # each shard's PyTorch checks come last: one torch import
        mine = [(i, c) for i, c in enumerate(configs) if i % workers == w]
        shards.append([[i, c, s] for i, c in mine for s in main_stages]
                      + [[i, c, TORCH_STAGE] for i, c in mine if TORCH_STAGE in stages])
    results, lock, errors = {}, threading.Lock(), []
    progress = [0, sum(map(len, shards))]  # stages done, stages to run

    def shard_main(shard):
        try:
            _run_shard(shard, results, progress, lock, stage_timeout)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=shard_main, args=(s,), daemon=True) for s in shards]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    tty, last = sys.stderr.isatty(), t0
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        now = time.monotonic()
        if quiet or not (tty or now - last > 60):  # a line a minute when not a terminal
            continue
        last = now
        print(f"{progress[0]}/{progress[1]} stages, {now - t0:.0f} s",
              end="\r" if tty else "\n", file=sys.stderr, flush=True)
    if tty and not quiet:
        print(file=sys.stderr)
    if errors:
        raise errors[0]
    return results


REPORTED = (*JAXBP_STAGES, *VJP_STAGES, TORCH_STAGE)


def summarize(configs, stages, results):
    """Counts per reported stage and one row per configuration. A combined ``jaxbp``
    stage that did not abort stands for its three parts."""
    reported = [s for s in REPORTED
                if s in stages or (s in JAXBP_STAGES and "jaxbp" in stages)]
    counts = {s: dict.fromkeys(("ok", "abort", "error", "mismatch", "skipped", "timeout",
                                "missing"), 0) for s in reported}
    rows = []
    for i, cfg in enumerate(configs):
        row = {"config": describe(cfg), **cfg, "results": {}}
        for s in reported:
            r = results.get((i, s))
            if r is None and s in JAXBP_STAGES:
                r = results.get((i, "jaxbp"))
            r = r or {"status": "missing", "detail": ""}
            counts[s][r["status"]] += 1
            row["results"][s] = r
        rows.append(row)
    return reported, counts, rows


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="conv_sweep.py",
        description="Sweeps conv1d/conv2d geometries for XLA compiler aborts through jaxbp "
                    "and through jax.vjp of lax.conv_general_dilated, each stage in a "
                    "child process; checks jaxbp's values against PyTorch when installed.")
    parser.add_argument("--full", action="store_true",
                        help="a larger sample (1200 conv1d, 2400 conv2d; some tens of "
                             "minutes on 2 cores)")
    parser.add_argument("--n1d", type=int, default=None,
                        help="conv1d configurations (default 30, --full 1200)")
    parser.add_argument("--n2d", type=int, default=None,
                        help="conv2d configurations (default 40, --full 2400)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--configs", metavar="FILE", default=None,
                        help="sweep the configurations listed in FILE instead (JSON: a "
                             "list of objects with n, size, k, s, padding, c_in, c_out, "
                             "batch, as in --json's output)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="child processes at once (default: min(2, CPUs))")
    parser.add_argument("--only", choices=("jaxbp", "vjp"), default=None,
                        help="run only jaxbp's stages or only jax.vjp's")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the value check against PyTorch")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write every configuration and result as JSON "
                             "('-' for stdout)")
    parser.add_argument("--list", type=int, default=10, metavar="N",
                        help="aborting configurations listed per stage (default 10)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child()
        return 0
    for name in ("n1d", "n2d", "workers", "list"):
        value = getattr(args, name)
        if value is not None and value < (1 if name == "workers" else 0):
            least = 1 if name == "workers" else 0
            parser.error(f"--{name} must be >= {least}, got {value}")

    n1d = args.n1d if args.n1d is not None else (1200 if args.full else 30)
    n2d = args.n2d if args.n2d is not None else (2400 if args.full else 40)
    if args.configs:
        configs = load_configs(args.configs, parser)
    else:
        configs = sample_configs(n1d, n2d, args.seed)
    stages = []
    if args.only != "vjp":
        stages.append("jaxbp")
    if args.only != "jaxbp":
        stages += VJP_STAGES
    if args.only != "vjp" and not args.no_torch:
        stages.append(TORCH_STAGE)

    t0 = time.monotonic()
    results = run_sweep(configs, stages, args.workers)
    elapsed = time.monotonic() - t0
    reported, counts, rows = summarize(configs, stages, results)

    import jax  # only for the version in the report
    out = sys.stderr if args.json == "-" else sys.stdout
    n1 = sum(c["n"] == 1 for c in configs)
    print(f"conv sweep: {len(configs)} configurations ({n1} conv1d, {len(configs) - n1} "
          f"conv2d), jax {jax.__version__} on {jax.default_backend()}, "
          f"{elapsed:.0f} s, {args.workers} worker(s)\n", file=out)
    columns = ("ok", "abort", "error", "mismatch", "skipped", "timeout")
    print(f"{'stage':<15}" + "".join(f"{k:>9}" for k in columns), file=out)
    for s in reported:
        print(f"{s:<15}" + "".join(f"{counts[s][k]:>9}" for k in columns), file=out)

    def failing(prefix, bad):
        return [r for r in rows if any(v["status"] in bad for s, v in r["results"].items()
                                       if s.startswith(prefix))]

    jaxbp_aborts = failing("jaxbp.", ("abort", "timeout"))
    vjp_aborts = failing("vjp.", ("abort", "timeout"))
    jaxbp_bad = failing("jaxbp.", ("abort", "timeout", "error", "missing")) + failing(
        TORCH_STAGE, ("abort", "timeout", "error", "mismatch", "missing"))
    print(f"\nconfigurations that abort: jaxbp {len(jaxbp_aborts)}"
          + (f", plain jax.vjp {len(vjp_aborts)}" if args.only != "jaxbp" else "")
          + f" (of {len(configs)})", file=out)
    for s in reported:
        listed = [r for r in rows if r["results"][s]["status"] not in ("ok", "skipped")]
        if listed and args.list:
            print(f"\n{s}: {len(listed)} not ok", file=out)
            for r in listed[:args.list]:
                v = r["results"][s]
                extra = f"  {v['detail'][:100]}" if v["status"] != "abort" else ""
                print(f"  {v['status']:<8} {r['config']}{extra}", file=out)
            if len(listed) > args.list:
                print(f"  ... and {len(listed) - args.list} more (--list, --json)",
                      file=out)
    messages = sorted({re.sub(r"^[FEW]\d{4} [\d:.]+\s+\d+ ", "", v["detail"])
                       .split("Window:")[0].strip()[:200]
                       for r in rows for v in r["results"].values()
                       if v["status"] == "abort"})
    if messages:
        print("\ncompiler messages:", file=out)
        for m in messages[:5]:
            print("  " + m, file=out)
    if args.json:
        record = {"jax": jax.__version__, "seconds": elapsed, "stages": reported,
                  "counts": counts, "configurations": rows,
                  "aborts": {"jaxbp": len(jaxbp_aborts), "vjp": len(vjp_aborts)}}
        if args.json == "-":
            json.dump(record, sys.stdout, indent=1)
        else:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1)
            print(f"\nresults written to {args.json}", file=out)
    return 1 if jaxbp_bad else 0


if __name__ == "__main__":
    sys.exit(main())
