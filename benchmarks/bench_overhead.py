"""What does CNNClassifier cost over a hand-written PyTorch training loop?

Both sides train the same network from the same initial weights on the same
Fashion-MNIST images: ``CNNClassifier()`` with its default architecture, and a
plain loop over a copy of that very network (``net_.module_`` of the untimed
warm-up fit, with the weights it started from and the whole set's pixel
statistics), with the same optimizer (AdamW, same lr and weight decay), learning-rate
schedule (OneCycleLR stepped per batch, or constant), batch size and epochs.
The plain loop converts each uint8 batch to float32 / 255 and draws a random
permutation per epoch, as a user would. It does the same work as the
defaults' recipe: random left-right flips of each training batch (what
``augment="auto"`` picks for 28x28 images) and test-time flips in predict
(the mean of the softmax of each image and of its mirror image, as
``tta="auto"`` does after flipped training), so that the ratios measure
overhead only.

The runs alternate in one process (A B A B ...) after one untimed warm-up of
each, so drifts in machine load hit both sides alike; the predict passes,
short enough for cache warmth to matter, also swap which side goes first from
one pair to the next (A B, B A, ...). Targets: median fit time
ratio CNNClassifier / plain <= 1.05; predict throughput ratio on the 10,000
test images (``predict_proba`` vs an eval-mode, no-grad batched forward plus
softmax) >= 0.95.

A second part (``null``) measures the fixed cost of a step, where the
network does no arithmetic to speak of: a linear layer on 4x4 images
(``module=torch.nn.Flatten()``, no dropout, no augmentation), 12,800 images
in batches of 128, against the same plain loop over a copy of that network.
A training step's cost is an epoch's (the median epoch of a 6-epoch fit, the
first left out) over its 100 steps, so that what a fit pays once (checks,
the input statistics, building the net) drops out; a prediction batch's is
the difference between a pass over 12,800 and over 1,280 images, divided by
the 90 extra batches. Targets: both at most 1.25x the plain loop's.

Writes ``benchmarks/results/overhead.md``. Run:
``python benchmarks/bench_overhead.py`` (``--quick`` for a smoke test;
``--parts null`` for the null network alone; ``--profile`` adds a cProfile
breakdown of one fit of each side).
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import cnn_defaults, initial_network, provenance, write_markdown
from _data import fashion_mnist

from sk_mlc import CNNClassifier

RESULTS = Path(__file__).parent / "results"
TARGET_FIT_RATIO = 1.05
TARGET_PREDICT_RATIO = 0.95
# The null network: the fixed cost of a step and of a prediction batch.
TARGET_NULL_STEP_RATIO = 1.25
TARGET_NULL_PREDICT_RATIO = 1.25
NULL_IMAGES, NULL_BATCH, NULL_CLASSES = 12_800, 128, 10
# CNNClassifier's defaults, which the plain loop copies.


DEFAULTS = cnn_defaults()
# Where CNNClassifier's device="auto" trains; the plain loop trains there too.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def plain_fit(module, X, y, config, seed, durations=None):
    """A hand-written training loop over a copy of ``module``; returns it trained.

    ``durations``, a list, receives each epoch's seconds.
    """
    module = copy.deepcopy(module)
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=config["lr"], weight_decay=config["weight_decay"]
    )
    batch_size, epochs = config["batch_size"], config["max_epochs"]
    steps = -(-len(X) // batch_size)
    scheduler = None
    if config["lr_schedule"] == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config["lr"], total_steps=epochs * steps
        )
    criterion = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    augment = torch.Generator(device=DEVICE).manual_seed(seed)
    module.train()
    for _ in range(epochs):
        began = time.perf_counter()
        order = torch.randperm(len(X), generator=generator).numpy()
        for start in range(0, len(X), batch_size):
            index = order[start : start + batch_size]
            xb = torch.from_numpy(X[index]).to(DEVICE).unsqueeze(1).float() / 255
            yb = torch.from_numpy(y[index]).to(DEVICE)
            if config["flips"]:  # mirror each image with probability 1/2
                flip = torch.rand(len(xb), generator=augment, device=DEVICE) < 0.5
                xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
            optimizer.zero_grad()
            loss = criterion(module(xb), yb)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        if durations is not None:
            if DEVICE == "cuda":
                torch.cuda.synchronize()
            durations.append(time.perf_counter() - began)
    if DEVICE == "cuda":
        torch.cuda.synchronize()  # the timed fit ends when the GPU is done
    return module


def plain_predict_proba(module, X, batch_size, tta):
    module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            xb = torch.from_numpy(X[start : start + batch_size]).to(DEVICE)
            xb = xb.unsqueeze(1).float() / 255
            proba = torch.softmax(module(xb), dim=1)
            if tta == "flip":
                proba = (proba + torch.softmax(module(xb.flip(-1)), dim=1)) / 2
            out.append(proba.cpu().numpy())
    return np.concatenate(out)


def timed(func, *args):
    start = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - start


def profile_breakdown(func, *args, top: int = 25):
    """cProfile ``func``; tottime summed per package, and the top entries."""
    profiler = cProfile.Profile()
    profiler.enable()
    func(*args)
    profiler.disable()
    stats = pstats.Stats(profiler)
    groups: dict[str, float] = {}
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():
        if filename == "~":
            # C functions: torch's kernels (conv, backward, optimizer ops) and
            # Python built-ins.
            group = "torch C ops" if "torch" in name else "other built-ins"
        elif "/skorch/" in filename:
            group = "skorch (Python)"
        elif "/sk_mlc/" in filename:
            group = "sk_mlc (Python)"
        elif "/torch/" in filename:
            group = "torch (Python)"
        elif "/sklearn/" in filename:
            group = "scikit-learn (Python)"
        else:
            group = "other Python"
        groups[group] = groups.get(group, 0.0) + tottime
    entries = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:top]
    lines = [
        f"{tottime:8.3f} s  {calls:7d} calls  {Path(filename).name}:{line} {name}"
        for (filename, line, name), (calls, _, tottime, _, _) in entries
    ]
    return groups, lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per side")
    parser.add_argument("--predict-repeats", type=int, default=9)
    parser.add_argument("--schedule", choices=["onecycle", "constant"])
    parser.add_argument("--width", type=int, default=DEFAULTS["width"])
    parser.add_argument("--profile", action="store_true", help="cProfile one fit each")
    parser.add_argument(
        "--parts",
        default="default,null",
        help="comma-separated parts: default (the default network), null",
    )
    parser.add_argument("--out", default=str(RESULTS / "overhead.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.width = 1024, 1000, 1, 8
        args.repeats, args.predict_repeats = 2, 2
    parts = set(args.parts.split(","))
    missed = []
    if "default" in parts:
        missed += default_part(args, argv)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            "# Overhead of CNNClassifier over a hand-written PyTorch loop\n"
        )
    if "null" in parts:
        missed += null_part(args, argv)
    print(Path(args.out).read_text())
    if not args.quick and missed:
        sys.exit("target missed: " + "; ".join(missed))


def default_part(args, argv) -> list[str]:
    """The default network against the plain loop; writes the file's table."""
    X_train, y_train, X_test, y_test = fashion_mnist()
    X, y = X_train[: args.n_train], y_train[: args.n_train]
    X_test, y_test = X_test[: args.n_test], y_test[: args.n_test]
    config = dict(DEFAULTS, width=args.width, max_epochs=args.epochs)
    if args.schedule:
        config["lr_schedule"] = args.schedule
    seed = 0  # the plain loop's shuffling and flips
    params = {k: config[k] for k in ("width", "max_epochs", "lr_schedule")}
    params.update(random_state=0, device=DEVICE)

    # Warm-up: pays one-time costs on both sides (torch's first optimizer
    # imports torch._dynamo and sympy, ~2 s; thread pools; the allocator). Its
    # CNNClassifier fit hands the plain loop CNNClassifier's own network, at
    # the weights a fit with random_state=0 starts from, and says what the
    # defaults resolve to on these images (batch size, flips, test-time flips).
    statistics_ = ([float(X.mean()) / 255], [float(X.std()) / 255])
    start_module, warm = initial_network(
        X, y, channels_last=True, normalize=statistics_, **params
    )
    config.update(
        batch_size=warm.net_.batch_size,
        flips=warm.augment_ in ("flip", "flip+shift"),
        tta=warm.tta_,
    )
    plain_fit(start_module, X[:512], y[:512], dict(config, max_epochs=1), seed)

    fit_times = {"CNNClassifier": [], "plain loop": []}
    for repeat in range(args.repeats):
        clf, seconds = timed(CNNClassifier(**params).fit, X, y)
        fit_times["CNNClassifier"].append(seconds)
        module, seconds = timed(plain_fit, start_module, X, y, config, seed)
        fit_times["plain loop"].append(seconds)
        print(
            f"repeat {repeat}: CNNClassifier {fit_times['CNNClassifier'][-1]:.2f} s, "
            f"plain loop {seconds:.2f} s",
            flush=True,
        )

    predict = {
        "CNNClassifier": lambda: clf.predict_proba(X_test),
        "plain loop": lambda: plain_predict_proba(
            module, X_test, config["batch_size"], config["tta"]
        ),
    }
    predict_times = {name: [] for name in predict}
    probas = {}
    for repeat in range(args.predict_repeats):
        # A pass is short, and the second of two back-to-back passes runs on
        # warmer caches: swap which side goes first from one pair to the next.
        names = list(predict) if repeat % 2 == 0 else list(predict)[::-1]
        for name in names:
            probas[name], seconds = timed(predict[name])
            predict_times[name].append(seconds)
    proba_clf, proba_plain = probas["CNNClassifier"], probas["plain loop"]
    accuracy = {
        "CNNClassifier": float(np.mean(clf.classes_[proba_clf.argmax(1)] == y_test)),
        "plain loop": float(np.mean(proba_plain.argmax(1) == y_test)),
    }
    fit_med = {k: statistics.median(v) for k, v in fit_times.items()}
    pred_med = {k: statistics.median(v) for k, v in predict_times.items()}
    # Ratios are taken pair by pair (each CNNClassifier run against the loop run
    # right after it), then the median: a machine that speeds up or slows down
    # during the benchmark shifts both runs of a pair alike.
    fit_ratio = statistics.median(
        a / b for a, b in zip(*fit_times.values(), strict=True)
    )
    # Throughput ratio: images/s of CNNClassifier over images/s of the loop.
    predict_ratio = statistics.median(
        b / a for a, b in zip(*predict_times.values(), strict=True)
    )

    rows = [
        [
            name,
            f"{fit_med[name]:.2f}",
            " ".join(f"{s:.2f}" for s in fit_times[name]),
            f"{pred_med[name]:.3f}",
            f"{len(X_test) / pred_med[name]:,.0f}",
            f"{accuracy[name]:.4f}",
        ]
        for name in fit_times
    ]
    rows.append(
        [
            "CNNClassifier / plain loop",
            f"{fit_ratio:.3f}x",
            "",
            "",
            f"{predict_ratio:.3f}x",
            f"{accuracy['CNNClassifier'] - accuracy['plain loop']:+.4f}",
        ]
    )
    fit_ok = fit_ratio <= TARGET_FIT_RATIO
    predict_ok = predict_ratio >= TARGET_PREDICT_RATIO
    notes = [
        f"Data: the first {len(X)} Fashion-MNIST training images (uint8), "
        f"{len(X_test)} test images.",
        f"Both sides: CNNClassifier's network (width={config['width']}, depth="
        f"{config['depth']}: Standardize + ConvNet + dropout {config['dropout']} + "
        f"Linear head), AdamW (lr={config['lr']}, weight_decay="
        f"{config['weight_decay']}), {config['lr_schedule']} schedule, batch size "
        f"{config['batch_size']}, {config['max_epochs']} epoch(s), device {DEVICE}. "
        "The plain loop trains a copy of the warm-up fit's network from the "
        "weights that fit started from: the weights every CNNClassifier fit "
        "with random_state=0 starts from.",
        f"Fit: {args.repeats} alternating runs after one untimed warm-up of each; "
        "the ratio is the median of the per-pair ratios. Fit time ratio "
        f"{fit_ratio:.3f}x (target <= {TARGET_FIT_RATIO}): "
        f"{'PASS' if fit_ok else 'gap'}.",
        f"Predict: {args.predict_repeats} pairs of passes over the test images, "
        "the side that goes first swapping from pair to pair; median of the "
        "per-pair ratios "
        f"(CNNClassifier.predict_proba vs eval-mode no-grad forward + softmax in "
        f"batches of {config['batch_size']}). Throughput ratio {predict_ratio:.3f}x "
        f"(target >= {TARGET_PREDICT_RATIO}): {'PASS' if predict_ok else 'gap'}.",
        "Max |difference| of the two sides' test probabilities: "
        f"{np.abs(proba_clf - proba_plain).max():.2e}: rounding differences (the "
        "loop divides by 255 and takes its input statistics from NumPy, "
        "CNNClassifier multiplies by 1/255), which training can amplify.",
        *provenance("bench_overhead.py", argv),
    ]
    if args.quick:
        notes.insert(0, "QUICK smoke run: tiny sizes, numbers are not results.")
    if args.profile:
        notes += profile_notes(params, start_module, X, y, config, seed, Path(args.out))
    write_markdown(
        args.out,
        "Overhead of CNNClassifier over a hand-written PyTorch loop",
        [
            "path",
            "fit seconds (median)",
            "fit runs (s)",
            "predict seconds (median)",
            "predict images/s",
            "test accuracy",
        ],
        rows,
        notes,
    )
    missed = []
    if not fit_ok:
        missed.append(f"fit ratio {fit_ratio:.3f} (<= {TARGET_FIT_RATIO})")
    if not predict_ok:
        missed.append(f"predict ratio {predict_ratio:.3f} (>= {TARGET_PREDICT_RATIO})")
    return missed


def null_part(args, argv) -> list[str]:
    """The fixed cost per step and per prediction batch; appends its section."""
    rng = np.random.RandomState(0)
    n = NULL_IMAGES // 10 if args.quick else NULL_IMAGES
    X = rng.randint(0, 256, (n, 4, 4)).astype(np.uint8)
    y = rng.randint(0, NULL_CLASSES, n)
    params = {
        "module": torch.nn.Flatten(),
        "dropout": 0.0,
        "augment": None,
        "tta": None,
        "batch_size": NULL_BATCH,
        "random_state": 0,
        "device": DEVICE,
    }
    module, _ = initial_network(X, y, channels_last=True, **params)
    config = dict(DEFAULTS, batch_size=NULL_BATCH, flips=False)
    steps = -(-n // NULL_BATCH)
    epochs = 3 if args.quick else 6
    repeats = 2 if args.quick else 7

    def step_seconds(side):
        """The median epoch of one fit (its first left out), per step."""
        if side == "CNNClassifier":
            fitted = CNNClassifier(**params, max_epochs=epochs).fit(X, y)
            durations = list(fitted.net_.history[:, "dur"])
        else:
            durations = []
            plain_fit(module, X, y, dict(config, max_epochs=epochs), 0, durations)
        return statistics.median(durations[1:]) / steps

    fitted = CNNClassifier(**params, max_epochs=1).fit(X, y)
    trained = plain_fit(module, X, y, dict(config, max_epochs=1), 0)
    few = n // 10
    predictors = {
        "CNNClassifier": lambda images: fitted.predict_proba(images),
        "plain loop": lambda images: plain_predict_proba(
            trained, images, NULL_BATCH, None
        ),
    }

    def batch_seconds(side):
        """(pass over X - pass over X[:few]) / the extra batches; medians of 3."""
        whole = statistics.median(timed(predictors[side], X)[1] for _ in range(3))
        part = statistics.median(timed(predictors[side], X[:few])[1] for _ in range(3))
        return (whole - part) / (steps - -(-few // NULL_BATCH))

    sides = list(predictors)
    step_us = {side: [] for side in sides}
    batch_us = {side: [] for side in sides}
    for side in sides:  # warm-up
        step_seconds(side)
        predictors[side](X)
    for repeat in range(repeats):
        order = sides if repeat % 2 == 0 else sides[::-1]
        for side in order:
            step_us[side].append(1e6 * step_seconds(side))
        for side in order:
            batch_us[side].append(1e6 * batch_seconds(side))
    step_ratio = statistics.median(
        a / b for a, b in zip(*step_us.values(), strict=True)
    )
    batch_ratio = statistics.median(
        a / b for a, b in zip(*batch_us.values(), strict=True)
    )
    step_ok = step_ratio <= TARGET_NULL_STEP_RATIO
    batch_ok = batch_ratio <= TARGET_NULL_PREDICT_RATIO
    lines = [
        "",
        "## The fixed cost of a step: a null network",
        "",
        "| path | µs per training step (median) | runs (µs) "
        "| µs per prediction batch (median) | runs (µs) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for side in sides:
        lines.append(
            f"| {side} | {statistics.median(step_us[side]):.0f} | "
            + " ".join(f"{v:.0f}" for v in step_us[side])
            + f" | {statistics.median(batch_us[side]):.0f} | "
            + " ".join(f"{v:.0f}" for v in batch_us[side])
            + " |"
        )
    lines += [
        f"| CNNClassifier / plain loop | {step_ratio:.3f}x |  "
        f"| {batch_ratio:.3f}x |  |",
        "",
        f"- Data: {n} random uint8 4x4 images, {NULL_CLASSES} classes, batches of "
        f"{NULL_BATCH}; `CNNClassifier(module=torch.nn.Flatten(), dropout=0.0, "
        "augment=None, tta=None)`: Standardize + Flatten + Linear(16, 10), "
        "AdamW, one-cycle schedule; the plain loop trains a copy of that network "
        f"from the same weights, on {DEVICE}.",
        f"- Step: the median epoch of a {epochs}-epoch fit (its first left out; "
        "CNNClassifier's from skorch's `dur`, the loop's timed alike) over its "
        f"{steps} steps; prediction batch: (pass over {n} images - pass over "
        f"{few}, each the median of 3) / {steps - -(-few // NULL_BATCH)} batches. "
        f"{repeats} alternating repeats after a warm-up, the side that goes first "
        "swapping; the ratio is the median of the per-repeat ratios.",
        f"- Step ratio {step_ratio:.3f}x (target <= {TARGET_NULL_STEP_RATIO}): "
        f"{'PASS' if step_ok else 'missed'}; prediction batch ratio "
        f"{batch_ratio:.3f}x (target <= {TARGET_NULL_PREDICT_RATIO}): "
        f"{'PASS' if batch_ok else 'missed'}.",
    ]
    if args.quick:
        lines.append("- QUICK smoke run: tiny sizes, numbers are not results.")
    with open(args.out, "a") as file:
        file.write("\n".join(lines) + "\n")
    missed = []
    if not step_ok:
        missed.append(f"null step ratio {step_ratio:.3f}")
    if not batch_ok:
        missed.append(f"null prediction batch ratio {batch_ratio:.3f}")
    return missed


def profile_notes(params, module, X, y, config, seed, out: Path) -> list[str]:
    """Profile one fit of each side; the per-package sums go in the notes."""
    sides = {
        "CNNClassifier": (lambda: CNNClassifier(**params).fit(X, y)),
        "plain loop": (lambda: plain_fit(module, X, y, config, seed)),
    }
    notes, text = [], []
    for name, func in sides.items():
        groups, top = profile_breakdown(func)
        total = sum(groups.values())
        parts = ", ".join(
            f"{group} {seconds:.2f} s"
            for group, seconds in sorted(groups.items(), key=lambda g: -g[1])
        )
        notes.append(f"cProfile of one {name} fit ({total:.2f} s): {parts}.")
        text += [f"## {name} (tottime, top entries)", *top, ""]
    path = out.with_name(out.stem + "_profile.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
    notes.append(f"Top cProfile entries: `{path.name}`.")
    return notes


if __name__ == "__main__":
    main()
