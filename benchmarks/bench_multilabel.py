"""Multi-label images: what does CNNClassifier give over the usual alternatives?

56x56 mosaics of 1-4 Fashion-MNIST items (training canvases from training
images, test canvases from test images); the labels are the classes present.
Compared on held-out micro-, macro- and samples-F1 and fit time:

* ``CNNClassifier()`` at threshold 0.5, and with one threshold per label tuned
  by ``ThresholdTunerCV(cv=0.2)``: one training on 80% of the canvases,
  thresholds tuned on the other 20%, then one refit on all of them (the 0.5
  row is that refitted network at 0.5);
* ``MLPClassifier(early_stopping=True)`` and
  ``OneVsRestClassifier(LogisticRegression())`` on the flattened pixels / 255;
* skorch's ``NeuralNetClassifier`` used naively with ``BCEWithLogitsLoss``:
  what fails, what ``predict_proba`` and ``predict`` return when it trains;
* skorch's ``NeuralNet`` set up by hand (BCEWithLogitsLoss, float targets,
  sigmoid >= 0.5 applied by the user) with the same CNN.

Targets: tuned CNNClassifier micro-F1 >= 0.93 (it was 0.90 before the recipe
of issue 13), and >= 0.10 above the best scikit-learn baseline (MLP,
one-vs-rest logistic regression).

Writes ``benchmarks/results/multilabel.md``. Run:
``python benchmarks/bench_multilabel.py`` (``--quick`` for a smoke test,
``--only cnn,mlp,ovr`` for a subset of the methods).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import (
    cnn_defaults,
    initial_network,
    multilabel_scores,
    provenance,
    write_markdown,
)
from _data import fashion_mosaics
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNet, NeuralNetClassifier

from sk_mlc import CNNClassifier, ThresholdTunerCV

RESULTS = Path(__file__).parent / "results"
TARGET_F1 = 0.93
TARGET_MARGIN = 0.10
METHODS = ("cnn", "mlp", "ovr", "skorch_naive", "skorch_hand")


DEFAULTS = cnn_defaults()
# skorch's default device is "cpu"; train where CNNClassifier's "auto" does.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


AVERAGES = ("micro", "macro", "samples")


def scores(Y_true, Y_pred, proba=None):
    """F1 of three averages, and mAP (None without ``proba``): _common's."""
    return {"mAP": None, **multilabel_scores(Y_true, Y_pred, proba)}


def timed_fit(model, X, Y):
    """Fit; returns seconds and whether a ConvergenceWarning was raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, Y)
        seconds = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return seconds, converged


def skorch_module(X_float, Y, width):
    """The CNN a skorch user would write: CNNClassifier's network, returning logits.

    CNNClassifier's own network for this data (``initial_network``), at its
    starting weights, standardising with the statistics of ``X_float``.
    Returns it and the batch size CNNClassifier trains with.
    """
    stats = ([float(X_float.mean())], [float(X_float.std())])
    module, probe = initial_network(
        X_float[:, 0], Y, width=width, augment=None, normalize=stats
    )
    return module, probe.net_.batch_size


def naive_skorch(X_float, Y, X_test_float, Y_test, width, epochs):
    """NeuralNetClassifier as a user new to multi-label would try it.

    Returns one table row per attempt: (name, scores or None, seconds, remark).
    """
    common = {
        "criterion": torch.nn.BCEWithLogitsLoss,
        "optimizer": torch.optim.AdamW,
        "lr": DEFAULTS["lr"],
        "max_epochs": epochs,
        "device": DEVICE,
        "verbose": 0,
    }
    attempts = [
        ("default train_split, int y", {}, Y),
        ("train_split=None, int y", {"train_split": None}, Y),
        ("train_split=None, float32 y", {"train_split": None}, Y.astype(np.float32)),
    ]
    rows = []
    for name, extra, target in attempts:
        module, batch_size = skorch_module(X_float, Y, width)
        net = NeuralNetClassifier(module, batch_size=batch_size, **common, **extra)
        start = time.perf_counter()
        try:
            net.fit(X_float, target)
        except Exception as exc:
            seconds = time.perf_counter() - start
            message = str(exc).splitlines()[0] if str(exc) else ""
            rows.append(
                (name, None, seconds, f"fit fails: {type(exc).__name__}: {message}")
            )
            continue
        seconds = time.perf_counter() - start
        proba = net.predict_proba(X_test_float)
        predicted = net.predict(X_test_float)
        remark = (
            f"predict_proba shape {proba.shape} (not (n, k)); predict shape "
            f"{predicted.shape} dtype {predicted.dtype} (argmax over axis 1 of "
            f"[1-p, p], i.e. p > 0.5); classes_ = {net.classes_.tolist()}"
        )
        try:
            result = scores(Y_test, predicted)
        except Exception as exc:
            result = None
            remark += f"; f1_score fails: {type(exc).__name__}: {exc}"
        rows.append((name, result, seconds, remark))
    return rows


def skorch_by_hand(X_float, Y, X_test_float, width, epochs):
    """skorch's NeuralNet with the loss, target dtype and decision done by hand."""
    module, batch_size = skorch_module(X_float, Y, width)
    net = NeuralNet(
        module,
        criterion=torch.nn.BCEWithLogitsLoss,
        optimizer=torch.optim.AdamW,
        lr=DEFAULTS["lr"],
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        iterator_train__shuffle=True,
        device=DEVICE,
        verbose=0,
    )
    start = time.perf_counter()
    net.fit(X_float, Y.astype(np.float32))
    seconds = time.perf_counter() - start
    # NeuralNet.forward returns the logits on the CPU, whatever the device.
    proba = torch.sigmoid(net.forward(X_test_float)).numpy()
    return (proba >= 0.5).astype(Y.dtype), proba, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--n-train", type=int, default=40000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=DEFAULTS["max_epochs"])
    parser.add_argument("--width", type=int, default=DEFAULTS["width"])
    parser.add_argument("--mlp-max-iter", type=int, default=200)
    parser.add_argument("--logreg-max-iter", type=int, default=200)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--out", default=str(RESULTS / "multilabel.md"))
    args = parser.parse_args(argv)
    only = METHODS if args.only is None else tuple(args.only.split(","))
    unknown = set(only) - set(METHODS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {METHODS}")
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.width = 400, 200, 2, 8
        args.mlp_max_iter, args.logreg_max_iter = 5, 20

    X, Y, X_test, Y_test = fashion_mosaics(args.n_train, args.n_test)
    flat = X.reshape(len(X), -1).astype(np.float32) / 255
    flat_test = X_test.reshape(len(X_test), -1).astype(np.float32) / 255
    X_float, X_test_float = (
        X[:, None] / np.float32(255),
        X_test[:, None] / np.float32(255),
    )

    # Untimed warm-up: the first fit in a process pays one-time costs (torch's
    # first optimizer imports torch._dynamo and sympy, ~2 s) that would
    # otherwise land on CNNClassifier's row.
    CNNClassifier(width=8, max_epochs=1, random_state=0).fit(X[:64], Y[:64])

    rows = []  # (method, scores or None, fit seconds, remark)
    cnn_tuned, baselines = None, {}
    if "cnn" in only:
        tuner = ThresholdTunerCV(
            CNNClassifier(width=args.width, max_epochs=args.epochs, random_state=0),
            cv=0.2,
            per_label=True,
        )
        seconds, _ = timed_fit(tuner, X, Y)
        proba = tuner.predict_proba(X_test)
        cnn_half = scores(Y_test, tuner.estimator_.predict(X_test), proba)
        cnn_tuned = scores(Y_test, tuner.predict(X_test), proba)
        rows.append(
            ("CNNClassifier, threshold 0.5", cnn_half, seconds, "the refitted network")
        )
        thresholds = " ".join(f"{t:.2f}" for t in tuner.best_thresholds_)
        rows.append(
            (
                "CNNClassifier + ThresholdTunerCV (per-label thresholds)",
                cnn_tuned,
                seconds,
                f"same fit; thresholds {thresholds}",
            )
        )
        print(f"CNNClassifier: {seconds:.1f} s, micro-F1 {cnn_tuned['micro']:.3f}")

    sklearn_models = {
        "mlp": (
            "MLPClassifier(early_stopping=True)",
            MLPClassifier(
                early_stopping=True, max_iter=args.mlp_max_iter, random_state=0
            ),
        ),
        "ovr": (
            "OneVsRestClassifier(LogisticRegression())",
            OneVsRestClassifier(LogisticRegression(max_iter=args.logreg_max_iter)),
        ),
    }
    for key, (name, model) in sklearn_models.items():
        if key not in only:
            continue
        seconds, converged = timed_fit(model, flat, Y)
        proba = np.asarray(model.predict_proba(flat_test))
        baselines[name] = scores(Y_test, model.predict(flat_test), proba)
        remark = "" if converged else "did not converge (ConvergenceWarning)"
        rows.append((name, baselines[name], seconds, remark))
        print(f"{name}: {seconds:.1f} s", flush=True)

    if "skorch_naive" in only:
        for name, result, seconds, remark in naive_skorch(
            X_float, Y, X_test_float, Y_test, args.width, args.epochs
        ):
            rows.append(
                (f"skorch NeuralNetClassifier naive: {name}", result, seconds, remark)
            )
    if "skorch_hand" in only:
        predicted, proba, seconds = skorch_by_hand(
            X_float, Y, X_test_float, args.width, args.epochs
        )
        rows.append(
            (
                "skorch NeuralNet by hand (BCEWithLogitsLoss, sigmoid >= 0.5)",
                scores(Y_test, predicted, proba),
                seconds,
                "train_split=None, iterator_train__shuffle=True, no LR schedule",
            )
        )

    checks = []  # (passed, sentence)
    if cnn_tuned is not None:
        tuned = cnn_tuned["micro"]
        ok = tuned >= TARGET_F1
        checks.append(
            (
                ok,
                f"Tuned CNNClassifier micro-F1 {tuned:.3f} (target >= {TARGET_F1}): "
                f"{'PASS' if ok else 'gap'}.",
            )
        )
        if baselines:
            best_name = max(baselines, key=lambda name: baselines[name]["micro"])
            margin = tuned - baselines[best_name]["micro"]
            ok = margin >= TARGET_MARGIN
            checks.append(
                (
                    ok,
                    "Margin over the best scikit-learn baseline run ("
                    f"{best_name}, {baselines[best_name]['micro']:.3f}): "
                    f"{margin:+.3f} (target >= +{TARGET_MARGIN}): "
                    f"{'PASS' if ok else 'gap'}.",
                )
            )
    table = [
        [
            method,
            *(
                ["-"] * 4
                if result is None
                else [
                    "-" if result[key] is None else f"{result[key]:.3f}"
                    for key in (*AVERAGES, "mAP")
                ]
            ),
            f"{seconds:.1f}",
            remark,
        ]
        for method, result, seconds, remark in rows
    ]
    notes = [
        f"Data: {len(X)} training / {len(X_test)} test 56x56 mosaics of 1-4 "
        "Fashion-MNIST items on a 2x2 grid (jitter 4 px), 10 labels; train and "
        "test canvases come from disjoint source images.",
        f"CNNs: width={args.width}, max_epochs={args.epochs}, CNNClassifier's "
        "other defaults; skorch nets use the same architecture, lr, batch size "
        "and epochs (AdamW, no LR schedule). Every model's final fit uses all "
        "training canvases; ThresholdTunerCV first trains on 80% to tune the "
        "thresholds on the other 20%.",
        *[sentence for _, sentence in checks],
        "Fit seconds of the CNNClassifier rows cover ThresholdTunerCV.fit: two "
        "trainings (80%, then all), one forward pass over the 20% and the "
        "threshold search.",
        *provenance("bench_multilabel.py", argv),
    ]
    if args.quick:
        notes.insert(0, "QUICK smoke run: tiny sizes, numbers are not results.")
    write_markdown(
        args.out,
        "Multi-label Fashion-MNIST mosaics: F1 and fit time",
        [
            "method",
            "micro-F1",
            "macro-F1",
            "samples-F1",
            "mAP",
            "fit seconds",
            "remark",
        ],
        table,
        notes,
    )
    print(Path(args.out).read_text())
    if not args.quick and not all(ok for ok, _ in checks):
        sys.exit("target missed: " + " ".join(t for ok, t in checks if not ok))


if __name__ == "__main__":
    main()
