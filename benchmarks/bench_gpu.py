"""How fast does CNNClassifier train Fashion-MNIST on one GPU, in fp32 and bf16?

``CNNClassifier()`` with its defaults, trained on the 60,000 Fashion-MNIST
training images on a CUDA GPU once per ``precision`` ("32", then
"bf16-mixed"), and scored on the 10,000 test images: fit seconds, training
and prediction images per second, test accuracy. Targets: the default fit
(``precision="auto"``, which is "bf16-mixed" on GPUs that support it) in
<= 10 s on one H100-class GPU, at a test accuracy no lower than the default
CPU fit's in ``benchmarks/results/fashion.md``.

An untimed warm-up fit on a slice of the data comes first: it pays for the
CUDA context, cuDNN's initialisation and the first kernels' loading, which
every later fit in the process reuses. Each timed fit synchronises the GPU
before the clock stops.

Where no CUDA device is available, nothing is measured: the results file says
"not measured" with the date and the command, and never holds invented
numbers. Writes ``benchmarks/results/gpu.md``. Run:
``python benchmarks/bench_gpu.py`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import provenance, write_markdown
from _data import fashion_mnist

from sk_mlc import CNNClassifier

RESULTS = Path(__file__).parent / "results"
TARGET_SECONDS = 10.0
PRECISIONS = ("32", "bf16-mixed")
HEADER = [
    "precision",
    "fit seconds",
    "train images/s",
    "predict images/s",
    "test accuracy",
    "remark",
]
NOT_MEASURED = "not measured: no GPU was available to this run"


def cpu_reference(path: Path = RESULTS / "fashion.md") -> float | None:
    """The default CNNClassifier's test accuracy on the CPU, from fashion.md."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("| CNNClassifier() defaults |"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            number = re.fullmatch(r"0\.\d+", cells[4])
            return float(cells[4]) if number else None
    return None


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timed_fit(params: dict, device: str, X, y) -> tuple[CNNClassifier, float]:
    clf = CNNClassifier(**params)
    synchronize(device)
    start = time.perf_counter()
    clf.fit(X, y)
    synchronize(device)
    return clf, time.perf_counter() - start


def measure(args, device: str) -> list[list]:
    X_train, y_train, X_test, y_test = fashion_mnist()
    X_train, y_train = X_train[: args.n_train], y_train[: args.n_train]
    X_test, y_test = X_test[: args.n_test], y_test[: args.n_test]
    base = {"device": device, "random_state": 0}
    if args.max_epochs is not None:
        base["max_epochs"] = args.max_epochs
    # Warm-up (untimed): CUDA context, cuDNN, kernel loading.
    warm = min(len(X_train), 2048)
    for precision in args.precisions:
        CNNClassifier(**{**base, "max_epochs": 1}, precision=precision).fit(
            X_train[:warm], y_train[:warm]
        )
    reference = cpu_reference()
    rows = []
    for precision in args.precisions:
        clf, seconds = timed_fit(
            {**base, "precision": precision}, device, X_train, y_train
        )
        start = time.perf_counter()
        proba = clf.predict_proba(X_test)
        synchronize(device)
        predict_seconds = time.perf_counter() - start
        accuracy = float(np.mean(clf.classes_[proba.argmax(1)] == y_test))
        remarks = []
        if clf.precision_ == "bf16-mixed" or precision == "auto":
            remarks.append(f"target <= {TARGET_SECONDS:g} s: ")
            remarks[-1] += "met" if seconds <= TARGET_SECONDS else "missed"
        if reference is not None:
            verdict = ">=" if accuracy >= reference else "<"
            remarks.append(f"accuracy {verdict} CPU's {reference:.4f}")
        rows.append(
            [
                clf.precision_,
                f"{seconds:.2f}",
                f"{len(X_train) * clf.n_iter_ / seconds:,.0f}",
                f"{len(X_test) / predict_seconds:,.0f}",
                f"{accuracy:.4f}",
                "; ".join(remarks),
            ]
        )
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="default: CNNClassifier's"
    )
    parser.add_argument("--device", default="cuda", help="a CUDA device")
    parser.add_argument(
        "--precisions",
        type=lambda text: tuple(text.split(",")),
        default=PRECISIONS,
        help="comma-separated precision values, e.g. 32,bf16-mixed,16-mixed",
    )
    parser.add_argument("--out", default=str(RESULTS / "gpu.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.max_epochs = 2000, 500, 1

    title = "CNNClassifier on one GPU: Fashion-MNIST in fp32 and bf16-mixed"
    notes = provenance("bench_gpu.py", sys.argv[1:] if argv is None else argv)
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    if not (args.device.startswith("cuda") and torch.cuda.is_available()):
        # Honest by construction: no GPU, no numbers.
        rows = [
            [p, "not measured", "-", "-", "-", NOT_MEASURED] for p in args.precisions
        ]
        notes = [
            f"{NOT_MEASURED} (torch.cuda.is_available() is False), {today}.",
            *notes,
        ]
        print(NOT_MEASURED, flush=True)
    else:
        rows = measure(args, args.device)
        notes = [
            f"Measured {today}: {args.n_train:,} training and {args.n_test:,} "
            "test images, default CNNClassifier parameters but precision "
            f"(max_epochs={args.max_epochs or 'default'}); one untimed warm-up "
            "fit first.",
            *notes,
        ]
    write_markdown(args.out, title=title, header=HEADER, rows=rows, notes=notes)


if __name__ == "__main__":
    main()
