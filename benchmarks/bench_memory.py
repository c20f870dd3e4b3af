"""Peak memory of ``fit`` + ``predict``: streamed image files vs. in-memory arrays.

The question: does training on image files keep memory flat as the data set
grows, and does training on a ``uint8`` array avoid a float32 copy of it?

Every configuration runs in a fresh child process, which reports its peak
resident set size when done, so peaks never mix. A first child only imports
``sk_mlc`` and torch: the baseline. A second one fits on two batches: the cost
of training that no data size removes (creating a torch optimizer imports
``torch._dynamo`` and sympy, about 100 MiB; then one batch's activations).
The others fit ``CNNClassifier`` for one epoch and predict the same images, on
N and on 4N 64x64 RGB images:

* ``files``: PNG and JPEG files decoded batch by batch. Bound: the peak grows by
  at most 40 MiB from N to 4N (a float32 copy of the data would grow by
  3N x 48 KiB, 141 MiB for N = 1000).
* ``array``: the same images decoded into one ``uint8`` array first. Bound:
  peak <= the two-batch baseline + 2 x (the float32 size of the data). The
  import-only baseline is reported too; with it, the fixed cost of training
  alone exceeds the bound for small N.

The images are real: Fashion-MNIST garments (or scikit-learn's digits when
Fashion-MNIST is not installed) pasted 1 to 3 per canvas with
:func:`~sk_mlc.datasets.make_mosaic`, tinted one random colour per image.

Run ``python benchmarks/bench_memory.py`` (N = 1000, a few minutes on 2 cores)
or ``--quick`` (N = 100, about a minute). Exits with status 1 when a bound fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import machine_info, write_markdown
from PIL import Image

SIDE = 64
GROWTH_BOUND_MIB = 40
# One epoch of a small network: the data, not the model, should dominate.
PARAMS = {"width": 8, "depth": 3, "max_epochs": 1, "batch_size": 32, "random_state": 0}
# Training has a cost that no data size removes (torch's optimizers import
# torch._dynamo on first use; one batch's activations): two batches measure it.
TRAINING_BASELINE = 2 * PARAMS["batch_size"]
MIB = 2**20


def write_images(folder: Path, n: int) -> None:
    """Write ``n`` 64x64 RGB images (PNG and JPEG alternately) and ``labels.npy``."""
    from sk_mlc.datasets import load_fashion_mnist, make_mosaic

    try:
        pool, labels = load_fashion_mnist("test", return_X_y=True)
    except FileNotFoundError:
        from sklearn.datasets import load_digits

        digits = load_digits()
        pool = np.kron(digits.images, np.ones((3, 3))) * (255 / 16)
        pool, labels = pool.astype(np.uint8), digits.target
    grey, Y = make_mosaic(
        pool,
        labels,
        n_samples=n,
        n_items=(1, 3),
        canvas_size=SIDE,
        jitter=4,
        random_state=0,
    )
    tint = np.random.RandomState(0).uniform(0.3, 1.0, size=(n, 1, 1, 3))
    rgb = (grey[..., None] * tint).astype(np.uint8)
    for index, image in enumerate(rgb):
        suffix = "png" if index % 2 == 0 else "jpg"
        Image.fromarray(image).save(folder / f"{index:06d}.{suffix}", quality=90)
    np.save(folder / "labels.npy", Y)


def child(config: str, n: int, folder: Path) -> None:
    """Run one configuration and print its peak RSS (KiB) as JSON."""
    import torch

    from sk_mlc import CNNClassifier, LazyImages

    # One thread: on a small shared machine, spinning threads only cost time.
    torch.set_num_threads(1)
    if config != "baseline":
        # Zero-padded names: sorted by name is the order they were written in.
        paths = sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg"))
        paths = paths[:n]
        Y = np.load(folder / "labels.npy")[:n]
        X = paths if config == "files" else np.asarray(LazyImages(paths))
        CNNClassifier(**PARAMS).fit(X, Y).predict(X)
    print(json.dumps({"peak_kib": peak_rss_kib()}))


def peak_rss_kib() -> int:
    """This process's peak resident set size, in KiB.

    Linux's ``VmHWM`` first: ``ru_maxrss`` also counts the parent's memory
    image that a child replaced by ``exec``, so a child of a parent that
    imported torch never reports less than the parent's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def peak_mib(config: str, n: int, folder: Path) -> float:
    """Run ``config`` on the first ``n`` images in a fresh child; its peak in MiB."""
    command = [sys.executable, __file__, "--child", config, "--n", str(n)]
    done = subprocess.run(
        [*command, "--data", str(folder)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_kib"] / 1024


def measure(n: int, folder: Path) -> tuple[list[list], list[str], bool]:
    """The table's rows, notes on the import-only bound, and whether a bound failed."""
    float32_mib = {k: k * SIDE * SIDE * 3 * 4 / MIB for k in (n, 4 * n)}
    baseline = peak_mib("baseline", 0, folder)
    training = peak_mib("array", TRAINING_BASELINE, folder)
    rows = [
        ["baseline: import sk_mlc, torch", "-", f"{baseline:.0f}", "-", "-", "-"],
        ["baseline: array, 2 batches", TRAINING_BASELINE, f"{training:.0f}"]
        + ["-", "-", "-"],
    ]
    small, large = (peak_mib("files", k, folder) for k in (n, 4 * n))
    files_ok = large - small <= GROWTH_BOUND_MIB
    rows += [
        ["files (streamed)", n, f"{small:.0f}", "-", "-", "-"],
        ["files (streamed)", 4 * n, f"{large:.0f}", f"{large - small:+.0f}"]
        + [f"growth <= {GROWTH_BOUND_MIB}", "pass" if files_ok else "FAIL"],
    ]
    arrays_ok, literal, previous = True, [], None
    for k in (n, 4 * n):
        peak = peak_mib("array", k, folder)
        bound = training + 2 * float32_mib[k]
        arrays_ok &= peak <= bound
        rows.append(
            ["array (uint8 in memory)", k, f"{peak:.0f}"]
            + ["-" if previous is None else f"{peak - previous:+.0f}"]
            + [f"peak <= {bound:.0f}", "pass" if peak <= bound else "FAIL"]
        )
        literal.append(f"N={k}: {peak:.0f} vs {baseline + 2 * float32_mib[k]:.0f}")
        previous = peak
    notes = [
        f"files: a float32 copy of the data would grow by "
        f"{float32_mib[4 * n] - float32_mib[n]:.0f} MiB from N to 4N.",
        "array: the bound is the 2-batch baseline + 2 x the float32 size of the "
        f"data ({float32_mib[n]:.0f} MiB for N={n}, {float32_mib[4 * n]:.0f} MiB "
        f"for N={4 * n}). With the import-only baseline instead (peak vs bound, "
        f"MiB): {'; '.join(literal)}. The fixed cost of training (2-batch minus "
        f"import-only baseline, {training - baseline:.0f} MiB, mostly the "
        "torch._dynamo and sympy modules that torch's optimizers import) does not "
        "depend on N.",
    ]
    return rows, notes, not (files_ok and arrays_ok)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="N (default 1000)")
    parser.add_argument("--quick", action="store_true", help="N = 100, about 1 min")
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "memory.md")
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.n, Path(args.data))
        return 0

    n = 100 if args.quick else args.n
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        write_images(Path(tmp), 4 * n)
        rows, notes, failed = measure(n, Path(tmp))

    params = ", ".join(f"{k}={v}" for k, v in PARAMS.items())
    write_markdown(
        args.out,
        title="Peak memory of fit + predict: streamed files vs. in-memory arrays",
        header=["configuration", "N", "peak RSS MiB", "growth MiB", "bound MiB"]
        + ["result"],
        rows=rows,
        notes=[
            f"Images: {SIDE}x{SIDE} RGB, PNG and JPEG alternately. Each row fits "
            f"CNNClassifier({params}) and predicts the same images, with one torch "
            "thread, in a fresh child process; peak RSS is its VmHWM.",
            *notes,
            f"Machine: {machine_info()}.",
            "Command: `python benchmarks/bench_memory.py "
            + ("--quick`." if args.quick else f"--n {n}`."),
        ],
    )
    print(Path(args.out).read_text())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
