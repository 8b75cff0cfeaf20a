"""``jaxbp bench``: runs, prints the side-by-side table, writes JSON.

Only the plumbing is tested (a quick run on the two small workloads); timings are never
asserted: they belong to a quiet machine, not to a test.
"""

import json
import math

from jaxbp import bench, cli


def test_quick_bench_prints_the_table_and_writes_json(capsys, tmp_path):
    path = tmp_path / "bench.json"
    code = cli.main(["bench", "--quick", "--workloads", "W1,W2", "--no-torch", "--json",
                     str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "man/auto" in out and "loop" in out and "fused" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:2] in
            (["W1", "loop"], ["W2", "loop"])]
    assert len(rows) == 2
    results = json.loads(path.read_text())
    assert set(results["workloads"]) == {"W1", "W2"}
    assert results["machine"]["date"] and results["machine"]["jax"]
    for r in results["workloads"].values():
        for grads in ("manual", "autodiff"):
            for field in ("loop_steps_per_s", "fused_steps_per_s", "loop_first_call_s"):
                assert math.isfinite(r[grads][field]) and r[grads][field] >= 0
        assert r["ratio_loop"] == r["manual"]["loop_ms_per_step"] / \
            r["autodiff"]["loop_ms_per_step"]
    assert results["workloads"]["W2"]["batch"] == 128


def test_bench_rejects_an_unknown_workload(capsys):
    assert cli.main(["bench", "--workloads", "W1,W9"]) == 2
    assert "W9" in capsys.readouterr().err


def test_flop_counts_are_the_matmuls_of_a_training_step():
    # Forward x @ w, weight gradients x.T @ dy, input gradients dy @ w.T for all but
    # the first layer: (2 * 5 * 2 * 3) and (2 * 5 * 3 * 4) per product.
    assert bench._mlp_flops((2, 3, 4), 5) == 3 * (60 + 120) - 60
