"""Does CNNClassifier's cost grow linearly with the data, and how fast does it predict?

Two measurements on Fashion-MNIST with the default network:

* fit time of one epoch (``CNNClassifier(max_epochs=1)``) on 1k, 4k, 16k and
  60k training images, in seconds and microseconds per image. Target: the
  per-image time at the largest size is within 1.3x of that at 4k (nothing
  grows faster than the data);
* predict throughput (images/s) of a fitted model on the 10,000 test images
  for batch sizes 32 to 2048.

Writes ``benchmarks/results/scaling.md`` and a two-panel PNG. Run:
``python benchmarks/bench_scaling.py`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import provenance, save_figure, subplots, write_markdown
from _data import fashion_mnist

from sk_mlc import CNNClassifier

RESULTS = Path(__file__).parent / "results"
TARGET_RATIO = 1.3


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--sizes", type=ints, default=[1000, 4000, 16000, 60000])
    parser.add_argument("--batch-sizes", type=ints, default=[32, 128, 512, 2048])
    parser.add_argument(
        "--reference", type=int, default=4000, help="size the largest is compared to"
    )
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3, help="predict passes")
    parser.add_argument("--width", type=int, default=CNNClassifier().width)
    parser.add_argument("--out", default=str(RESULTS / "scaling.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batch_sizes, args.reference = (
            [500, 1000, 2000],
            [32, 512],
            1000,
        )
        args.n_test, args.repeats, args.width = 1000, 1, 8
    if args.reference not in args.sizes:
        parser.error(f"--reference {args.reference} must be one of --sizes")

    X_train, y_train, X_test, _ = fashion_mnist()
    X_test = X_test[: args.n_test]
    params = {"width": args.width, "max_epochs": 1, "random_state": 0}
    # Untimed warm-up: the first fit in a process pays one-time costs (torch's
    # first optimizer imports torch._dynamo and sympy, ~2 s).
    CNNClassifier(**dict(params, width=8)).fit(X_train[:256], y_train[:256])

    fit_rows = []  # (n, seconds, microseconds per image)
    for n in args.sizes:
        start = time.perf_counter()
        clf = CNNClassifier(**params).fit(X_train[:n], y_train[:n])
        seconds = time.perf_counter() - start
        fit_rows.append((n, seconds, 1e6 * seconds / n))
        print(f"fit {n} images: {seconds:.2f} s", flush=True)

    predict_rows = []  # (batch size, seconds, images/s)
    for batch_size in args.batch_sizes:
        # predict uses the batch size the network was trained with; the fitted
        # skorch net is where it lives (set_params on the estimator does not
        # reach it).
        clf.set_params(batch_size=batch_size)
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            clf.predict_proba(X_test)
            best = min(best, time.perf_counter() - start)
        predict_rows.append((batch_size, best, len(X_test) / best))
        print(f"predict batch {batch_size}: {len(X_test) / best:,.0f} images/s")

    per_image = {n: us for n, _, us in fit_rows}
    largest = max(args.sizes)
    ratio = per_image[largest] / per_image[args.reference]
    ok = ratio <= TARGET_RATIO
    rows = [
        ["fit, 1 epoch", f"{n} images", f"{s:.2f}", f"{us:.0f} µs/image"]
        for n, s, us in fit_rows
    ] + [
        ["predict_proba", f"batch {b}", f"{s:.3f}", f"{ips:,.0f} images/s"]
        for b, s, ips in predict_rows
    ]
    plot = Path(args.out).with_suffix(".png")
    _plot(fit_rows, predict_rows, plot)
    notes = [
        f"Model: CNNClassifier(width={args.width}, max_epochs=1), other defaults "
        "(batch size 128 for training); Fashion-MNIST uint8 images.",
        f"Per-image fit time at {largest} images is {ratio:.2f}x that at "
        f"{args.reference} (target <= {TARGET_RATIO}x): {'PASS' if ok else 'gap'}.",
        f"Predict: best of {args.repeats} passes over {len(X_test)} test images "
        "with the model fitted on the largest size, batch size set with "
        "clf.set_params(batch_size=...).",
        f"Fit time and throughput: `{plot.name}`.",
        *provenance("bench_scaling.py", argv),
    ]
    if args.quick:
        notes.insert(0, "QUICK smoke run: tiny sizes, numbers are not results.")
    write_markdown(
        args.out,
        "Scaling: fit time vs data size, predict throughput vs batch size",
        ["measurement", "size", "seconds", "rate"],
        rows,
        notes,
    )
    print(Path(args.out).read_text())
    if not args.quick and not ok:
        sys.exit(
            f"per-image fit time grows {ratio:.2f}x from {args.reference} to "
            f"{largest} images (> {TARGET_RATIO}x)"
        )


def _plot(fit_rows, predict_rows, path: Path) -> None:
    fig, (left, right) = subplots(1, 2, figsize=(10, 4))
    sizes, seconds, per_image = zip(*fit_rows, strict=True)
    left.loglog(sizes, seconds, "o-", label="fit, 1 epoch")
    # The line a perfectly linear cost would follow through the first point.
    left.loglog(sizes, [seconds[0] * n / sizes[0] for n in sizes], "k:", label="linear")
    left.set_xlabel("training images")
    left.set_ylabel("seconds")
    left.set_title("Fit time vs data size")
    left.legend()
    batch_sizes, _, throughput = zip(*predict_rows, strict=True)
    right.semilogx(batch_sizes, throughput, "o-", base=2)
    right.set_xlabel("predict batch size")
    right.set_ylabel("images / s")
    right.set_title("Predict throughput")
    right.set_ylim(bottom=0)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
