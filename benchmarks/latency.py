"""The waits a learner feels, measured in fresh processes: the README's latency figures.

Each row runs a ``jaxbp`` command (or the test suite) from scratch, several times, and
prints the median, the spread and the machine's load before and after, so a figure
taken on a busy machine says so. Run from the project's root::

    python benchmarks/latency.py                 # every row but the test suite, 3 runs each
    python benchmarks/latency.py --rows help,grade1 --runs 5
    python benchmarks/latency.py --rows suite --runs 1
    python benchmarks/latency.py --json latency.json

The persistent compilation cache is switched off for every row unless ``--warm-cache``
is given, so the figures are those of a first run; the test suite runs as the README's
command runs it (``tests/conftest.py`` switches the cache off for the tests). With
``--warm-cache`` the suite gets a cache folder of its own, kept across its runs (the
first run fills it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (what it measures, argv after the interpreter)
ROWS = {
    "help": ("jaxbp --help", ["-m", "jaxbp", "--help"]),
    "argerror": ("an argument error (jaxbp grade --time-limit -5)",
                 ["-m", "jaxbp", "grade", "--time-limit", "-5"]),
    "check": ("jaxbp check (built-in networks)", ["-m", "jaxbp", "check"]),
    "grade1": ("jaxbp grade 1 --impl solutions (one exercise)",
               ["-m", "jaxbp", "grade", "1", "--impl", "solutions"]),
    "grade": ("jaxbp grade --impl solutions (the whole set)",
              ["-m", "jaxbp", "grade", "--impl", "solutions"]),
    "demo": ("jaxbp demo --no-plots (digits CNN, with the jax.grad comparison)",
             ["-m", "jaxbp", "demo", "--no-plots"]),
    "suite": ("the test suite (pytest -q -n auto)",
              ["-m", "pytest", "-q", "-n", "auto", "-p", "no:cacheprovider"]),
}
DEFAULT_ROWS = ["help", "argerror", "check", "grade1", "grade", "demo"]


def load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} {five:.2f} {fifteen:.2f}"
    except OSError:
        return "unknown"


def versions() -> str:
    """The packages whose versions move these figures (ml_dtypes: its 0.7.0 takes
    over a second to import, which every row pays through `import jax`)."""
    from importlib import metadata

    out = []
    for name in ("jax", "jaxlib", "ml_dtypes", "numpy"):
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} missing")
    return ", ".join(out)


def time_command(argv, env, cwd) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, proc.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                        help=f"comma-separated rows from {', '.join(ROWS)} "
                             f"(default: {','.join(DEFAULT_ROWS)})")
    parser.add_argument("--runs", type=int, default=3, help="runs per row (default 3)")
    parser.add_argument("--warm-cache", action="store_true",
                        help="keep JAX's persistent compilation cache (second-run figures)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write JSON")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"--rows: unknown row {unknown[0]!r}; choose from {', '.join(ROWS)}")
    if args.runs < 1:
        parser.error(f"--runs must be a positive int, got {args.runs}")

    env = dict(os.environ)
    cache_dir = None
    if not args.warm_cache:
        cache_dir = tempfile.mkdtemp(prefix="jaxbp-latency-")
        env["JAXBP_CACHE_DIR"] = "off"
    env.setdefault("MPLBACKEND", "Agg")
    out_dir = tempfile.mkdtemp(prefix="jaxbp-latency-out-")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"versions: {versions()}")
    print(f"load average (1, 5, 15 min) at start: {load()}")
    results = []
    try:
        for name in rows:
            what, cmd = ROWS[name]
            if name == "demo":
                cmd = cmd + ["--out", out_dir]
            times, codes = [], []
            run_env = env
            if name == "suite" and args.warm_cache:
                # the tests keep no cache unless given a folder (tests/conftest.py)
                suite_cache = tempfile.mkdtemp(prefix="jaxbp-latency-suite-")
                run_env = dict(env, JAXBP_CACHE_DIR=suite_cache)
            for _ in range(args.runs):
                t, rc = time_command(cmd, run_env, ROOT)
                times.append(t)
                codes.append(rc)
            if run_env is not env:
                shutil.rmtree(run_env["JAXBP_CACHE_DIR"], ignore_errors=True)
            med = statistics.median(times)
            results.append({"row": name, "what": what, "median_s": med, "min_s": min(times),
                            "max_s": max(times), "exit_codes": codes, "load": load()})
            print(f"  {what:<62} median {med:7.2f} s  (min {min(times):.2f}, max "
                  f"{max(times):.2f}, exit {sorted(set(codes))}, load {load()})", flush=True)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        if cache_dir:
            shutil.rmtree(cache_dir, ignore_errors=True)
    print(f"load average at end: {load()}")
    if (os.cpu_count() or 1) < float(load().split()[0] if load() != "unknown" else 0):
        print("warning: the machine was busier than its cores; these figures are slow")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.machine(), "cores": os.cpu_count(),
                       "versions": versions(),
                       "rows": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
