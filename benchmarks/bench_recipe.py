"""Which ingredients of the default recipe pay on Fashion-MNIST, and at what cost?

An ablation on a shorter setting: the first 20,000 Fashion-MNIST training
images, the 10,000 test images, one fit per row (``random_state=0``), on
this machine. The first rows add the adopted ingredients one at a time, from
the previous release's defaults to today's:

1. previous defaults: 3 stages on 28x28, no augmentation, 12 epochs;
2. a 4th stage (``depth="auto"`` now halves 28 down to 3 pixels);
3. random left-right flips in training (``augment="flip"``, what "auto"
   picks for images of 16 pixels and more), predicted without flips;
4. test-time flips (``tta="flip"``): the same network as row 3, so only
   prediction pays;
5. 14 epochs: today's defaults.

The other rows change one thing of today's defaults and were not adopted:
label smoothing, an exponential moving average of the weights (decay 0.998,
a skorch callback defined here, whose averaged weights replace the trained
ones at the end), residual blocks, more width, shift augmentation, smaller
batches, no dropout. Channels-last memory format is not a row: it has been on
since an earlier release (about 25% less training time for the default CNN).

Differences below about 0.003 are within the spread of seeds at this size
(a GPU sweep of the full set measured 0.9327 / 0.9337 / 0.9327 for three
seeds of the 12-epoch recipe).

``--part small`` checks that the new defaults cost nothing where the recipe
does not apply: scikit-learn's 8x8 digits as images and as ``1 x 64`` rows,
the breast-cancer table as ``1 x 30`` rows, and a tiny training set (300
Fashion-MNIST images); previous vs new defaults (the previous ``depth="auto"``
rule: halve down to about 7 pixels), accuracy on a held-out quarter (the
Fashion-MNIST test set for the tiny one), mean of 3 seeds. It writes
``recipe_small.md``.

Writes ``benchmarks/results/recipe.md`` and ``recipe.png`` (accuracy vs fit
seconds). Run: ``python benchmarks/bench_recipe.py`` (both parts; ``--part
ablation`` or ``--part small`` for one, ``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch
from _common import provenance, save_figure, subplots, write_markdown
from _data import fashion_mnist
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from sk_mlc import CNNClassifier

RESULTS = Path(__file__).parent / "results"
PREVIOUS = {"depth": 3, "augment": None, "tta": None, "max_epochs": 12}


class WeightAverage(Callback):
    """An exponential moving average of the weights, swapped in at the end.

    Float parameters and buffers (BatchNorm's running statistics too) are
    averaged after every training batch, with the warm-up of TensorFlow's
    ``ExponentialMovingAverage`` (decay ``min(decay, (1 + t) / (10 + t))``),
    and copied into the module when training ends, so predict, save and
    export all use them.
    """

    def __init__(self, decay: float = 0.998):
        self.decay = decay

    def on_train_begin(self, net, **kwargs):
        module = net.module_
        self.tensors_ = [
            t
            for t in itertools.chain(module.parameters(), module.buffers())
            if t.is_floating_point()
        ]
        self.average_ = [t.detach().clone() for t in self.tensors_]
        self.steps_ = 0

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        self.steps_ += 1
        decay = min(self.decay, (1 + self.steps_) / (10 + self.steps_))
        with torch.no_grad():
            for average, tensor in zip(self.average_, self.tensors_, strict=True):
                average.lerp_(tensor.detach(), 1 - decay)

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            for tensor, average in zip(self.tensors_, self.average_, strict=True):
                tensor.copy_(average)


def rows_to_run(quick: bool):
    """``(label, parameters, baseline label or None, adopted?)`` per row."""
    adopted = [
        ("previous defaults", dict(PREVIOUS), None),
        ("+ 4th stage (depth 4)", {**PREVIOUS, "depth": "auto"}, "previous defaults"),
        (
            "+ flip augmentation, no test-time flips",
            {**PREVIOUS, "depth": "auto", "augment": "flip"},
            "+ 4th stage (depth 4)",
        ),
        (
            "+ test-time flips",
            {**PREVIOUS, "depth": "auto", "augment": "flip", "tta": "flip"},
            "+ flip augmentation, no test-time flips",
        ),
        ("+ 14 epochs = today's defaults", {}, "+ test-time flips"),
    ]
    base = "+ 14 epochs = today's defaults"
    others = [
        ("label_smoothing=0.1", {"label_smoothing": 0.1}),
        ("EMA of weights (decay 0.998)", {"callbacks": [WeightAverage(0.998)]}),
        ("residual=True", {"residual": True}),
        ("width=24", {"width": 24}),
        ('augment="flip+shift"', {"augment": "flip+shift"}),
        ("batch_size=64", {"batch_size": 64}),
        ("dropout=0", {"dropout": 0.0}),
    ]
    rows = [(label, params, against, True) for label, params, against in adopted]
    rows += [(label, params, base, False) for label, params in others]
    if quick:
        rows = [
            (label, {**params, "width": 8, "max_epochs": 1}, against, adopted)
            for label, params, against, adopted in rows
        ]
    return rows


def small_problems(quick: bool, fashion):
    """``{name: (X, y, X_test, y_test)}``: where the recipe should not matter."""
    digits = load_digits()
    cancer = load_breast_cancer()
    X_train, y_train, X_test, y_test = fashion
    problems = {}
    for name, X, y in [
        ("digits, 8x8 images", digits.images.astype(np.float32), digits.target),
        ("digits, 1 x 64 rows", digits.data.astype(np.float32), digits.target),
        ("breast cancer, 1 x 30 rows", cancer.data.astype(np.float32), cancer.target),
    ]:
        split = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
        problems[name] = (split[0], split[2], split[1], split[3])
    n_tiny = 300
    problems[f"Fashion-MNIST, {n_tiny} training images"] = (
        X_train[:n_tiny],
        y_train[:n_tiny],
        X_test[: 1000 if quick else 10000],
        y_test[: 1000 if quick else 10000],
    )
    return problems


def previous_depth(image_shape) -> int:
    """The previous ``depth="auto"``: halve the longer side down to about 7 px."""
    longest = max(image_shape)
    return int(np.clip(1 + np.ceil(np.log2(max(longest / 7, 1))), 2, 5))


def no_regressions(quick: bool, fashion) -> list[list[str]]:
    """Previous vs new defaults on the small problems, mean of 3 seeds."""
    seeds = (0,) if quick else (0, 1, 2)
    extra = {"width": 8, "max_epochs": 1} if quick else {}
    rows = []
    for name, (X, y, X_t, y_t) in small_problems(quick, fashion).items():
        cells = [name]
        shape = X.shape[1:] if X.ndim == 3 else (1, X.shape[1])
        for params in ({**PREVIOUS, "depth": previous_depth(shape)}, {}):
            accuracy, seconds = [], []
            for seed in seeds:
                model = CNNClassifier(**{**params, **extra}, random_state=seed)
                start = time.perf_counter()
                model.fit(X, y)
                seconds.append(time.perf_counter() - start)
                accuracy.append(float(np.mean(model.predict(X_t) == y_t)))
            cells += [f"{np.mean(accuracy):.4f}", f"{np.mean(seconds):.1f}"]
        cells.append(f"{float(cells[3]) - float(cells[1]):+.4f}")
        rows.append(cells)
        print(cells, flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--part", choices=["all", "ablation", "small"], default="all")
    parser.add_argument("--out", default=str(RESULTS / "recipe.md"))
    args = parser.parse_args(argv)
    fashion = fashion_mnist()
    if args.part in ("all", "ablation"):
        ablation(args, argv, fashion)
    if args.part in ("all", "small"):
        small(args, argv, fashion)


def small(args, argv, fashion) -> None:
    out = Path(args.out).with_name(Path(args.out).stem + "_small.md")
    notes = [
        "Mean of 3 seeds (random_state 0, 1, 2); held-out quarter (stratified) "
        "for the scikit-learn sets, the Fashion-MNIST test set for the tiny one.",
        "Previous defaults: depth by the previous 'auto' rule (halve down to "
        "about 7 px: 2 stages for 8x8, 4 for 1 x 30, 5 for 1 x 64, 3 for "
        "28x28), augment=None, tta=None, max_epochs=12. The new defaults differ "
        "there by max_epochs (14) and, for the 28x28 images, by the 4th stage "
        "and the flips (augment and tta 'auto'): every set here has at least "
        "200 training images, so 'auto' follows the full rules.",
        *provenance("bench_recipe.py", argv),
    ]
    if args.quick:
        notes.insert(0, "QUICK smoke run: tiny sizes, numbers are not results.")
    write_markdown(
        out,
        "Where the recipe should not matter: previous vs new defaults",
        [
            "problem",
            "previous accuracy",
            "previous fit s",
            "new accuracy",
            "new fit s",
            "change",
        ],
        no_regressions(args.quick, fashion),
        notes,
    )
    print(out.read_text())


def ablation(args, argv, fashion) -> None:
    n_train, n_test = (2000, 1000) if args.quick else (args.n_train, 10000)
    X_train, y_train, X_test, y_test = fashion
    X, y = X_train[:n_train], y_train[:n_train]
    X_test, y_test = X_test[:n_test], y_test[:n_test]
    # Untimed warm-up: one-time costs of the first fit in a process.
    CNNClassifier(width=8, max_epochs=1, random_state=0).fit(X[:256], y[:256])

    measured = {}  # label -> (accuracy, fit seconds, predict seconds)
    fitted = {}  # parameters without tta -> (model, fit seconds)
    for label, params, _, _ in rows_to_run(args.quick):
        params = {"random_state": 0, **params}
        training = {k: v for k, v in params.items() if k != "tta"}
        key = repr(sorted(training.items()))
        if key in fitted:  # a prediction-time change: the same network
            model, fit_s = fitted[key]
            model.set_params(tta=params.get("tta", "auto"))
        else:
            model = CNNClassifier(**params)
            start = time.perf_counter()
            model.fit(X, y)
            fit_s = time.perf_counter() - start
            fitted[key] = (model, fit_s)
        start = time.perf_counter()
        accuracy = float(np.mean(model.predict(X_test) == y_test))
        measured[label] = (accuracy, fit_s, time.perf_counter() - start)
        print(f"{label}: {accuracy:.4f}, fit {fit_s:.1f} s", flush=True)

    table = []
    for label, _, against, adopted in rows_to_run(args.quick):
        accuracy, fit_s, predict_s = measured[label]
        gain = cost = "-"
        if against is not None:
            base_accuracy, base_fit, _ = measured[against]
            gain = f"{accuracy - base_accuracy:+.4f}"
            cost = f"{fit_s - base_fit:+.1f}"
        table.append(
            [
                label,
                "adopted" if adopted else "not adopted",
                f"{accuracy:.4f}",
                gain,
                f"{fit_s:.1f}",
                cost,
                f"{predict_s:.2f}",
            ]
        )
    plot = Path(args.out).with_suffix(".png")
    _plot(measured, rows_to_run(args.quick), plot)
    notes = [
        f"Data: the first {len(X)} Fashion-MNIST training images, {len(X_test)} "
        "test images (uint8); one fit per row, random_state=0.",
        "Adopted rows each add one ingredient to the row above (the gain and "
        "the cost are against it); the others change one thing of today's "
        "defaults (against that row). Previous defaults: depth=3, "
        "augment=None, tta=None, max_epochs=12.",
        "Differences below about 0.003 are within the spread of seeds at this "
        "size; the full-size numbers are in fashion.md.",
        "The test-time-flips row reuses the network of the row above: its fit "
        "seconds are that fit's, and only its predict seconds (two forward "
        "passes per image) change.",
        f"Accuracy vs fit seconds: `{plot.name}`.",
        *provenance("bench_recipe.py", argv),
    ]
    if args.quick:
        notes.insert(0, "QUICK smoke run: tiny sizes, numbers are not results.")
    write_markdown(
        args.out,
        "Fashion-MNIST recipe ablation: accuracy gained and seconds paid",
        [
            "ingredient",
            "status",
            "test accuracy",
            "gain",
            "fit seconds",
            "extra fit seconds",
            "predict seconds",
        ],
        table,
        notes,
    )
    print(Path(args.out).read_text())


def _plot(measured, rows, path: Path) -> None:
    fig, ax = subplots(figsize=(8, 5))
    for label, _, _, adopted in rows:
        accuracy, fit_s, _ = measured[label]
        ax.plot(
            fit_s, accuracy, "o" if adopted else "x", color="C0" if adopted else "C3"
        )
        ax.annotate(
            label,
            (fit_s, accuracy),
            fontsize=7,
            xytext=(4, 2),
            textcoords="offset points",
        )
    path_points = [measured[label][:2][::-1] for label, _, _, a in rows if a]
    ax.plot(*zip(*path_points, strict=True), "-", color="C0", lw=1)
    ax.set_xlabel("fit seconds")
    ax.set_ylabel("test accuracy")
    ax.set_title("Recipe ablation, 20k Fashion-MNIST images (o adopted, x not)")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
