"""How fast does CNNClassifier train Fashion-MNIST on one GPU, and where does time go?

Parts (``--parts`` picks some; all by default):

* ``defaults``: ``CNNClassifier()`` with its defaults, trained on the 60,000
  Fashion-MNIST training images once per ``precision`` ("32", then
  "bf16-mixed") and scored on the 10,000 test images: fit seconds, training
  images per second, the share of the GPU's dense peak that the training's
  useful arithmetic reaches, prediction images per second (with the
  test-time flips the defaults apply), test accuracy. Targets: the default
  fit in <= 10 s at test accuracy >= 0.935; prediction >= 100,000 images/s.
* ``long``: the longer setting (``width=32, residual=True,
  augment="flip+shift", label_smoothing=0.1, max_epochs=30``) in
  "bf16-mixed". Target: <= 30 s at test accuracy >= 0.945.
* ``batch``: the defaults at batch sizes 128 to 1024, the learning rate
  scaled linearly or by the square root of the batch size, to measure the
  rule ``batch_size="auto"`` should follow on a GPU (faster to the same
  accuracy), rather than guess it.
* ``compile``: the defaults with ``compile=True``: the fit's seconds, and
  its first epoch against an uncompiled fit's (the warm-up cost).
* ``profile``: ``torch.profiler`` over one epoch of the defaults: the
  kernels' time against the wall time, kernel launches and host-device
  synchronisations per step, and the top operators by GPU time (written to
  ``gpu_profile.txt`` beside the results).

The share of the dense peak: a training step's arithmetic is taken as three
times the forward pass's (forward, and the backward's two products), counted
by ``torch.utils.flop_counter.FlopCounterMode`` on one batch, over the
device's dense peak for the precision (bf16: bfloat16 tensor cores; "32":
TF32 tensor cores, which cuDNN uses for float32 convolutions by default),
from the vendor's sheet for the device name (``--peak-tflops`` overrides).

An untimed warm-up fit on a slice of the data comes first: it pays for the
CUDA context, cuDNN's initialisation and the first kernels' loading, which
every later fit in the process reuses. Each timed fit synchronises the GPU
before the clock stops.

Where no CUDA device is available, nothing is measured: the results file says
"not measured" with the date and the command, and never holds invented
numbers (``--device cpu --quick`` runs every part's code on tiny data for a
smoke test, into a file marked as such). Writes ``benchmarks/results/gpu.md``.
Run: ``python benchmarks/bench_gpu.py`` (``--quick`` for a smoke test); on
the lent GPU machine, ``benchmarks/gpu_session.sh`` (its header has the
exact command).
"""

from __future__ import annotations

import argparse
import datetime
import math
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from _common import provenance, write_markdown
from _data import fashion_mnist

from sk_mlc import CNNClassifier

RESULTS = Path(__file__).parent / "results"
TARGET_SECONDS = 10.0
TARGET_ACCURACY = 0.935
TARGET_LONG_SECONDS = 30.0
TARGET_LONG_ACCURACY = 0.945
TARGET_PREDICT_RATE = 100_000
PRECISIONS = ("32", "bf16-mixed")
PARTS = ("defaults", "long", "batch", "compile", "profile")
LONG = {
    "width": 32,
    "residual": True,
    "augment": "flip+shift",
    "label_smoothing": 0.1,
    "max_epochs": 30,
}
BATCH_SIZES = (128, 256, 512, 1024)
HEADER = [
    "part",
    "setting",
    "fit seconds",
    "train images/s",
    "share of dense peak",
    "predict images/s",
    "test accuracy",
    "remark",
]
NOT_MEASURED = "not measured: no GPU was available to this run"
# Dense (no sparsity) tensor-core peaks in TFLOP/s from the vendors' sheets:
# (device name pattern, bf16, tf32). The first pattern that matches wins.
PEAKS = (
    (r"H200", 989.0, 494.0),
    (r"H100.*(SXM|HBM3)", 989.0, 494.0),
    (r"H100.*PCIe", 756.0, 378.0),
    (r"H100", 989.0, 494.0),
    (r"A100", 312.0, 156.0),
    (r"L4\b", 121.0, 60.0),
)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def peak_tflops(device: str, precision: str, override: float | None) -> float | None:
    """The device's dense peak for ``precision``, or None where unknown."""
    if override is not None:
        return override
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(device)
    for pattern, bf16, tf32 in PEAKS:
        if re.search(pattern, name):
            return bf16 if precision == "bf16-mixed" else tf32
    return None


def forward_flops(clf: CNNClassifier, shape) -> float:
    """The fitted network's forward arithmetic per image (multiply-adds x 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    module = clf.net_.module_
    x = torch.zeros((8, *shape), device=clf.device_)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(x)
    finally:
        module.train(was_training)
    return counter.get_total_flops() / len(x)


def timed_fit(params: dict, device: str, X, y) -> tuple[CNNClassifier, float]:
    clf = CNNClassifier(**params)
    synchronize(device)
    start = time.perf_counter()
    clf.fit(X, y)
    synchronize(device)
    return clf, time.perf_counter() - start


def predict_rate(clf, X, device: str, repeats: int = 3) -> float:
    """Images per second of ``predict_proba`` (the median of a few passes)."""
    clf.predict_proba(X[:1024])  # warm: this batch size's kernels
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        clf.predict_proba(X)
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return len(X) / statistics.median(seconds)


def row(part, setting, clf, seconds, X, y, X_test, y_test, args, remarks=()):
    """One table row for a fitted ``clf``: throughput, peak share, accuracy."""
    rate = len(X) * clf.n_iter_ / seconds
    flops = 3 * forward_flops(clf, clf.input_shape_)
    peak = peak_tflops(args.device, clf.precision_, args.peak_tflops)
    share = "-" if peak is None else f"{rate * flops / (peak * 1e12):.2%}"
    accuracy = float(clf.score(X_test, y_test))
    predict = predict_rate(clf, X_test, args.device)
    cells = [
        part,
        setting,
        f"{seconds:.2f}",
        f"{rate:,.0f}",
        share,
        f"{predict:,.0f}",
        f"{accuracy:.4f}",
        "; ".join(remarks),
    ]
    print(cells, flush=True)
    return cells, accuracy, predict


def part_defaults(args, data, base) -> list[list]:
    X, y, X_test, y_test = data
    rows = []
    for precision in PRECISIONS:
        clf, seconds = timed_fit({**base, "precision": precision}, args.device, X, y)
        cells, accuracy, predict = row(
            "defaults", f'precision="{precision}"', clf, seconds, *data, args
        )
        verdicts = [
            f"fit <= {TARGET_SECONDS:g} s: "
            + ("met" if seconds <= TARGET_SECONDS else "missed"),
            f"accuracy >= {TARGET_ACCURACY}: "
            + ("met" if accuracy >= TARGET_ACCURACY else "missed"),
            f"predict >= {TARGET_PREDICT_RATE:,} images/s (tta_={clf.tta_!r}): "
            + ("met" if predict >= TARGET_PREDICT_RATE else "missed"),
        ]
        cells[-1] = "; ".join(verdicts)
        rows.append(cells)
    return rows


def part_long(args, data, base) -> list[list]:
    X, y, _, _ = data
    params = {**base, **LONG, "precision": "bf16-mixed"}
    if args.quick:
        params["max_epochs"] = 1
    clf, seconds = timed_fit(params, args.device, X, y)
    cells, accuracy, _ = row(
        "long", "width 32, residual, ...", clf, seconds, *data, args
    )
    cells[-1] = (
        f"fit <= {TARGET_LONG_SECONDS:g} s: "
        + ("met" if seconds <= TARGET_LONG_SECONDS else "missed")
        + f"; accuracy >= {TARGET_LONG_ACCURACY}: "
        + ("met" if accuracy >= TARGET_LONG_ACCURACY else "missed")
    )
    return [cells]


def part_batch(args, data, base) -> list[list]:
    X, y, _, _ = data
    lr = CNNClassifier().lr
    rows = []
    for batch_size in BATCH_SIZES:
        rules = {"linear": batch_size / 128, "sqrt": math.sqrt(batch_size / 128)}
        if batch_size == 128:
            rules = {"default": 1.0}
        for rule, factor in rules.items():
            params = {**base, "batch_size": batch_size, "lr": lr * factor}
            clf, seconds = timed_fit(params, args.device, X, y)
            setting = f"batch_size={batch_size}, lr={lr * factor:.4g} ({rule})"
            rows.append(row("batch", setting, clf, seconds, *data, args)[0])
    return rows


def part_compile(args, data, base) -> list[list]:
    X, y, _, _ = data
    rows = []
    first = {}
    for compiled in (False, True):
        clf, seconds = timed_fit({**base, "compile": compiled}, args.device, X, y)
        durations = clf.net_.history[:, "dur"]
        first[compiled] = durations[0]
        rest = statistics.median(durations[1:]) if len(durations) > 1 else math.nan
        remark = f"first epoch {durations[0]:.2f} s, later epochs {rest:.2f} s"
        if compiled:
            remark += f"; warm-up cost {durations[0] - first[False]:.1f} s"
        cells = row("compile", f"compile={compiled}", clf, seconds, *data, args)[0]
        cells[-1] = remark
        rows.append(cells)
    return rows


def part_profile(args, data, base, out: Path) -> list[str]:
    """One profiled epoch of the defaults; the summary lines for the notes."""
    from torch.profiler import ProfilerActivity, profile

    X, y, _, _ = data
    activities = [ProfilerActivity.CPU]
    if args.device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    params = {**base, "max_epochs": 1}
    CNNClassifier(**params).fit(X[:4096], y[:4096])  # warm this shape
    synchronize(args.device)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        clf = CNNClassifier(**params).fit(X, y)
        synchronize(args.device)
        wall = time.perf_counter() - start
    events = prof.key_averages()
    steps = len(clf.net_.history[-1, "batches"])
    device_us = sum(getattr(e, "self_device_time_total", 0.0) for e in events)

    def count(pattern):
        return sum(e.count for e in events if re.search(pattern, e.key))

    launches = count(r"cudaLaunchKernel|cuLaunchKernel|cudaLaunchKernelExC")
    syncs = count(r"cudaStreamSynchronize|cudaDeviceSynchronize|cudaEventSynchronize")
    copies = count(r"cudaMemcpyAsync|cudaMemcpy\b")
    sort = "self_device_time_total" if len(activities) > 1 else "self_cpu_time_total"
    table = events.table(sort_by=sort, row_limit=25)
    path = out.with_name(out.stem + "_profile.txt")
    path.write_text(
        f"One epoch of CNNClassifier() defaults on {args.device}, "
        f"{len(X):,} images, {steps} steps, {wall:.2f} s wall.\n\n{table}\n"
    )
    return [
        f"Profile (one epoch of the defaults, {steps} steps, {wall:.2f} s wall, "
        f"under the profiler): GPU kernels busy {device_us / 1e6:.2f} s "
        f"({device_us / 1e6 / wall:.0%} of the wall time); per step "
        f"{launches / steps:.1f} kernel launches, {syncs / steps:.2f} "
        f"synchronisations, {copies / steps:.2f} memory copies; top operators "
        f"in `{path.name}`.",
    ]


def measure(args, parts, out: Path) -> tuple[list[list], list[str]]:
    X, y, X_test, y_test = fashion_mnist()
    X, y = X[: args.n_train], y[: args.n_train]
    X_test, y_test = X_test[: args.n_test], y_test[: args.n_test]
    data = (X, y, X_test, y_test)
    base = {"device": args.device, "random_state": 0}
    if args.max_epochs is not None:
        base["max_epochs"] = args.max_epochs
    # Warm-up (untimed): CUDA context, cuDNN, kernel loading.
    warm = min(len(X), 2048)
    for precision in PRECISIONS:
        CNNClassifier(**{**base, "max_epochs": 1}, precision=precision).fit(
            X[:warm], y[:warm]
        )
    rows, notes = [], []
    if "defaults" in parts:
        rows += part_defaults(args, data, base)
    if "long" in parts:
        rows += part_long(args, data, base)
    if "batch" in parts:
        rows += part_batch(args, data, base)
    if "compile" in parts:
        rows += part_compile(args, data, base)
    if "profile" in parts:
        notes += part_profile(args, data, base, out)
    return rows, notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="default: CNNClassifier's"
    )
    parser.add_argument("--device", default="cuda", help="a CUDA device")
    parser.add_argument("--parts", default=",".join(PARTS), help=", ".join(PARTS))
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the device's dense peak"
    )
    parser.add_argument("--out", default=str(RESULTS / "gpu.md"))
    args = parser.parse_args(argv)
    parts = [part for part in args.parts.split(",") if part]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    if args.quick:
        args.n_train, args.n_test, args.max_epochs = 2000, 500, 1

    title = "CNNClassifier on one GPU: Fashion-MNIST"
    notes = provenance("bench_gpu.py", sys.argv[1:] if argv is None else argv)
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    on_gpu = args.device.startswith("cuda") and torch.cuda.is_available()
    smoke = args.quick and args.device == "cpu"
    out = Path(args.out)
    if not (on_gpu or smoke):
        # Honest by construction: no GPU, no numbers.
        rows = [
            [part, "-", "not measured", "-", "-", "-", "-", NOT_MEASURED]
            for part in parts
        ]
        notes = [
            f"{NOT_MEASURED} (torch.cuda.is_available() is False), {today}. "
            "The command that measures it on a lent GPU machine is in "
            "`benchmarks/gpu_session.sh`.",
            f"Targets on one H100-class GPU: the default fit of Fashion-MNIST in "
            f"<= {TARGET_SECONDS:g} s at test accuracy >= {TARGET_ACCURACY}; the "
            f"longer setting in <= {TARGET_LONG_SECONDS:g} s at >= "
            f"{TARGET_LONG_ACCURACY}; prediction with test-time flips at >= "
            f"{TARGET_PREDICT_RATE:,} images/s.",
            *notes,
        ]
        print(NOT_MEASURED, flush=True)
    else:
        rows, measured = measure(args, parts, out)
        device = torch.cuda.get_device_name(args.device) if on_gpu else "the CPU"
        notes = [
            *(
                ["CPU SMOKE RUN: tiny sizes on the CPU; numbers are not results."]
                if smoke
                else []
            ),
            f"Measured {today} on {device}: {args.n_train:,} training and "
            f"{args.n_test:,} test images, default CNNClassifier parameters "
            f"except those named (max_epochs={args.max_epochs or 'default'}); "
            "one untimed warm-up fit first.",
            *measured,
            *notes,
        ]
    write_markdown(out, title=title, header=HEADER, rows=rows, notes=notes)


if __name__ == "__main__":
    main()
