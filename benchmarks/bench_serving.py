"""What does serving a fitted CNNClassifier cost, in torch and in onnxruntime?

A default-size ``CNNClassifier()`` (width 16, 4 stages at 28x28, test-time
flips), trained briefly on Fashion-MNIST (generated 28x28 images when
Fashion-MNIST is not installed: the costs measured here do not depend on the
pixels), answers the same uint8 test images along three paths:

* ``CNNClassifier.predict_proba``, in torch, with its input checks;
* the bare network in torch (eval mode, ``inference_mode``, uint8 -> float32
  / 255, softmax): what the estimator's overhead is measured against;
* the graph written by ``sk_mlc.to_onnx``, run by onnxruntime.

For each: the latency of one image (p50 and p99 over many single-image calls,
the paths taking turns call by call, in a rotating order, so that drifts in
machine load hit all of them alike) and the throughput on batches of 256
images. Each path computes on ``--threads`` threads (default 1: one request
per core is how a CPU server scales, and on a shared machine more threads
mostly measure the other jobs); onnxruntime's idle threads do not spin, so
they take no CPU from the path measured after them. For each saved form
of the model: its file size and the time to load it (warm file cache, in
process, torch already imported): a pickle, the ONNX file, and the
``sk_mlc.save`` file where this sk_mlc has it. The ONNX graph's answers are
checked against ``predict_proba`` on all test images.

Writes ``benchmarks/results/serving.md``. Run:
``python benchmarks/bench_serving.py`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import provenance, write_markdown

import sk_mlc
from sk_mlc import CNNClassifier, to_onnx
from sk_mlc.datasets import load_fashion_mnist

RESULTS = Path(__file__).parent / "results"
BATCH = 256


def fashion_or_generated(n_train: int, n_test: int, seed: int = 0):
    """``(X_train, y_train, X_test, y_test, source)``: uint8 28x28 images.

    Fashion-MNIST when installed; else noise with a bright band whose row
    says the class, so that training has something to learn.
    """
    try:
        X, y = load_fashion_mnist("train", return_X_y=True)
        X_test, y_test = load_fashion_mnist("test", return_X_y=True)
        source = "Fashion-MNIST"
        return X[:n_train], y[:n_train], X_test[:n_test], y_test[:n_test], source
    except FileNotFoundError:
        pass
    rng = np.random.RandomState(seed)
    n = n_train + n_test
    y = rng.randint(10, size=n)
    X = rng.randint(0, 128, size=(n, 28, 28)).astype(np.uint8)
    for label in range(10):
        X[y == label, 2 + 2 * label : 4 + 2 * label] += 127
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:], "generated"


def network_path(clf: CNNClassifier):
    """The bare network on uint8 (n, 28, 28) images: no checks, no wrapper."""
    module = clf.net_.module_.eval()
    scale = np.float32(1 / 255)

    def predict(X):
        with torch.inference_mode():
            x = torch.from_numpy(X).unsqueeze(1).float() * scale
            return torch.softmax(module(x), dim=1).numpy()

    return predict


def onnx_path(path: Path):
    """An onnxruntime session on as many threads as torch uses; its predict."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    # Spinning worker threads would eat the CPU of whichever path runs next.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]
    )
    return lambda X: session.run(["probabilities"], {"images": X})[0]


def turns(names: list, i: int) -> list:
    """``names`` rotated by ``i``: each path follows each other one in turn."""
    shift = i % len(names)
    return names[shift:] + names[:shift]


def latencies(paths: dict, X: np.ndarray, n_calls: int, n_warm: int = 20):
    """Seconds per single-image call, per path; the paths take turns per call."""
    for predict in paths.values():
        for i in range(n_warm):
            predict(X[i % len(X)][None])
    times = {name: [] for name in paths}
    names = list(paths)
    for i in range(n_calls):
        image = X[i % len(X)][None]
        for name in turns(names, i):
            start = time.perf_counter()
            paths[name](image)
            times[name].append(time.perf_counter() - start)
    return times


def throughputs(paths: dict, X: np.ndarray, repeats: int):
    """Images per second on batches of ``len(X)``: median over ``repeats``."""
    times = {name: [] for name in paths}
    names = list(paths)
    for predict in paths.values():
        predict(X)  # warm-up
    for repeat in range(repeats):
        for name in turns(names, repeat):
            start = time.perf_counter()
            paths[name](X)
            times[name].append(time.perf_counter() - start)
    return {name: len(X) / statistics.median(t) for name, t in times.items()}


def load_time(load, repeats: int) -> float:
    """Median seconds of ``load()`` (the file is in the OS cache after the first)."""
    load()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def saved_forms(clf: CNNClassifier, folder: Path, repeats: int):
    """``{form: (file size in bytes, load seconds)}`` of each saved form."""
    import onnxruntime

    forms = {}
    pickled = folder / "model.pkl"
    pickled.write_bytes(pickle.dumps(clf))
    forms["pickle (pickle.dumps)"] = (
        pickled.stat().st_size,
        load_time(lambda: pickle.loads(pickled.read_bytes()), repeats),
    )
    if hasattr(sk_mlc, "save"):  # sk_mlc.save / sk_mlc.load (issue 11)
        saved = folder / "model.skmlc"
        sk_mlc.save(clf, saved)
        forms["sk_mlc.save"] = (
            saved.stat().st_size,
            load_time(lambda: sk_mlc.load(saved), repeats),
        )
    graph = folder / "model.onnx"
    to_onnx(clf, graph)
    forms["ONNX (sk_mlc.to_onnx)"] = (
        graph.stat().st_size,
        load_time(
            lambda: onnxruntime.InferenceSession(
                str(graph), providers=["CPUExecutionProvider"]
            ),
            repeats,
        ),
    )
    return forms, graph


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="per path")
    parser.add_argument("--calls", type=int, default=2000, help="one-image calls")
    parser.add_argument("--repeats", type=int, default=20, help="batches of 256")
    parser.add_argument("--load-repeats", type=int, default=9)
    parser.add_argument("--out", default=str(RESULTS / "serving.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs = 1024, 512, 1
        args.calls, args.repeats, args.load_repeats = 40, 2, 2

    X, y, X_test, y_test, source = fashion_or_generated(args.n_train, args.n_test)
    torch.set_num_threads(args.threads)
    clf = CNNClassifier(max_epochs=args.epochs, random_state=0, device="cpu")
    start = time.perf_counter()
    clf.fit(X, y)
    fit_seconds = time.perf_counter() - start
    print(f"fitted in {fit_seconds:.1f} s", flush=True)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        forms, graph = saved_forms(clf, Path(folder), args.load_repeats)
        print("saved and loaded:", forms, flush=True)
        paths = {
            "CNNClassifier.predict_proba (torch)": clf.predict_proba,
            "bare network (torch)": network_path(clf),
            "to_onnx graph (onnxruntime)": onnx_path(graph),
        }
        times = latencies(paths, X_test, args.calls)
        print("one-image latencies measured", flush=True)
        rates = throughputs(paths, X_test[:BATCH], args.repeats)
        print("throughputs measured", flush=True)
        answers = {name: predict(X_test) for name, predict in paths.items()}
        labels = onnx_labels(graph, X_test)

    reference = answers["CNNClassifier.predict_proba (torch)"]
    gap = np.abs(answers["to_onnx graph (onnxruntime)"] - reference).max()
    same_labels = np.array_equal(labels, clf.predict(X_test))
    accuracy = float(np.mean(clf.classes_[reference.argmax(1)] == y_test))
    forms_of_paths = ["pickle (pickle.dumps)", None, "ONNX (sk_mlc.to_onnx)"]
    saved_as = dict(zip(paths, forms_of_paths, strict=True))
    rows = []
    for name in paths:
        ms = np.array(times[name]) * 1e3
        form = saved_as[name]
        size, load = forms[form] if form else (None, None)
        rows.append(
            [
                name,
                f"{np.percentile(ms, 50):.2f}",
                f"{np.percentile(ms, 99):.2f}",
                f"{rates[name]:,.0f}",
                form or "-",
                "-" if size is None else f"{size / 1024:,.0f}",
                "-" if load is None else f"{load * 1e3:.1f}",
            ]
        )
    if "sk_mlc.save" in forms:
        size, load = forms["sk_mlc.save"]
        rows.insert(
            1,
            ["(same, loaded by sk_mlc.load)", "", "", "", "sk_mlc.save"]
            + [f"{size / 1024:,.0f}", f"{load * 1e3:.1f}"],
        )
    notes = [
        f"Model: CNNClassifier(max_epochs={args.epochs}, random_state=0), other "
        "parameters default (width 16, 4 stages, test-time flips), fitted in "
        f"{fit_seconds:.0f} s on "
        f"{len(X)} {source} 28x28 uint8 images; test accuracy {accuracy:.4f} on "
        f"{len(X_test)} test images.",
        f"One image: {args.calls} calls per path, each on one (1, 28, 28) uint8 "
        "image, the paths taking turns call by call after 20 warm-up calls each. "
        f"Batch: images/s on {BATCH} images, median of {args.repeats} calls "
        "(CNNClassifier.predict_proba cuts them into its batches of 128).",
        "Load: median of "
        f"{args.load_repeats} loads from a warm file cache, in this process "
        "(torch and onnxruntime already imported): pickle.loads of the file, "
        "onnxruntime.InferenceSession of the .onnx file"
        + (", sk_mlc.load." if "sk_mlc.save" in forms else ".")
        + " Sizes in KiB.",
        f"onnxruntime {onnx_version()} on {torch.get_num_threads()} intra-op "
        "threads (torch's count). The graph's probabilities differ from "
        f"predict_proba by at most {gap:.1e} on the test images; its labels "
        f"equal predict's: {'yes' if same_labels else 'NO'}.",
        "Machine load (1-minute load average, other jobs included) before and "
        f"after the measurements: {load_before:.1f}, {os.getloadavg()[0]:.1f}, "
        f"on {os.cpu_count()} CPUs (a load above the CPU count means the paths "
        "also competed with other processes, which inflates p99 most).",
        *provenance("bench_serving.py", argv),
    ]
    if "sk_mlc.save" not in forms:
        notes.insert(
            -4,
            "sk_mlc.save / sk_mlc.load are not in this sk_mlc: no row for them "
            "(rerun this script once they are).",
        )
    if args.quick:
        notes.insert(0, "QUICK smoke run: tiny sizes, numbers are not results.")
    write_markdown(
        args.out,
        "Serving a fitted CNNClassifier: torch and onnxruntime",
        [
            "path",
            "one image p50 ms",
            "one image p99 ms",
            f"batch {BATCH} images/s",
            "saved as",
            "file KiB",
            "load ms",
        ],
        rows,
        notes,
    )
    print(Path(args.out).read_text())


def onnx_labels(graph: Path, X: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(graph), providers=["CPUExecutionProvider"]
    )
    return session.run(["label"], {"images": X})[0]


def onnx_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


if __name__ == "__main__":
    main()
