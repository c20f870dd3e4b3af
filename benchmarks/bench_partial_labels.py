"""Multi-label data as annotators deliver it: unknown labels, rare positives, no label.

Three questions on Fashion-MNIST mosaics (up to four 14x14 items on a 28x28
canvas, training canvases from training images, a full-label test set from
test images), each answered with the mean and spread over seeds:

1. **Unknown entries.** With 10 %, 30 % and 60 % of the training label
   entries hidden at random, is training on the known entries only (NaN in
   ``y``: the loss leaves them out) better than the peers' practice of
   treating an unknown entry as absent (0), and than dropping every row that
   has an unknown entry? Each at thresholds tuned by ``ThresholdTunerCV`` on
   a validation fifth of its own training data (unknowns in it scored as
   each method sees them).
2. **Losses for rare positives.** On canvases where class ``j`` is present
   at a power-law rate (50 % down to 2 %), binary cross-entropy, focal loss
   and the asymmetric loss, each with and without ``class_weight="balanced"``,
   by mean average precision (threshold-free) and macro-F1 at tuned
   thresholds.
3. **At least one label.** On canvases that always hold an item, does
   ``min_labels=1`` (after the tuned thresholds) remove empty predictions
   without lowering micro-F1?

Targets: masked training beats both alternatives at 30 % and 60 % hidden, by
macro-F1 and mAP, beyond the seed spread; ``min_labels=1`` never predicts an
empty row and does not lower micro-F1; the default loss is the one the
imbalanced comparison favours (focal or ASL become the default only if they
win by more than the seed spread).

Writes ``benchmarks/results/partial_labels.md``. Run:
``python benchmarks/bench_partial_labels.py`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import multilabel_scores, provenance, write_markdown
from _data import fashion_mnist, imbalanced_mosaics, power_law_rates, small_items

from sk_mlc import CNNClassifier, ThresholdTunerCV

RESULTS = Path(__file__).parent / "results"
HIDDEN = (0.1, 0.3, 0.6)
METHODS = ("masked (NaN)", "unknown as 0", "rows with unknowns dropped")
LOSSES = ("bce", "focal", "asl")
# Rows left after dropping: below this many, the method cannot train.
MIN_ROWS = 20


def loss_auto() -> str:
    """What ``loss="auto"`` resolves to for a multi-label target, read off a fit."""
    X = np.zeros((8, 4, 4), np.float32)
    Y = np.eye(2, dtype=int)[np.arange(8) % 2]
    criterion = CNNClassifier(max_epochs=1, random_state=0).fit(X, Y).criterion_
    names = {"AsymmetricLoss": "asl", "FocalLoss": "focal"}
    return names.get(type(criterion).__name__, "bce")


def hide(Y, fraction, rng):
    """``Y`` as float with each entry unknown (NaN) with probability ``fraction``.

    A row left without any known entry keeps one, at random: a row nobody
    annotated at all would be dropped from any data set.
    """
    partial = Y.astype(np.float64)
    partial[rng.rand(*Y.shape) < fraction] = np.nan
    for i in np.flatnonzero(np.isnan(partial).all(axis=1)):
        j = rng.randint(Y.shape[1])
        partial[i, j] = Y[i, j]
    return partial


def tuned(cnn, X, Y, X_test, Y_test, **tuner):
    """Fit a tuner (validation fifth, one training) and score it on the test set."""
    fitted = ThresholdTunerCV(CNNClassifier(**cnn), cv=0.2, refit=False, **tuner).fit(
        X, Y
    )
    proba = fitted.predict_proba(X_test)
    scores = multilabel_scores(Y_test, fitted.predict(X_test), proba)
    # The same network at the untuned threshold: what a user who never
    # tunes gets from each loss.
    untuned = multilabel_scores(Y_test, (proba >= 0.5).astype(int))
    scores.update({f"{key}@0.5": untuned[key] for key in ("macro", "micro")})
    return fitted, scores


def hidden_entries(args, pools, seed):
    """Question 1: {(fraction, method): scores} for one seed."""
    (X_pool, y_pool), (X_pool_t, y_pool_t) = pools
    rates = np.full(10, args.balanced_rate)
    X, Y = imbalanced_mosaics(X_pool, y_pool, rates, args.n_train, seed)
    X_t, Y_t = imbalanced_mosaics(X_pool_t, y_pool_t, rates, args.n_test, seed + 1000)
    cnn = {"max_epochs": args.epochs, "random_state": seed, **args.cnn}
    rng = np.random.RandomState(seed)
    out = {}
    for fraction in HIDDEN:
        partial = hide(Y, fraction, rng)
        known_rows = ~np.isnan(partial).any(axis=1)
        data = {
            "masked (NaN)": (X, partial),
            "unknown as 0": (X, np.nan_to_num(partial).astype(int)),
            "rows with unknowns dropped": (X[known_rows], Y[known_rows]),
        }
        for method, (X_in, Y_in) in data.items():
            if len(X_in) < MIN_ROWS:
                out[fraction, method] = {"rows": len(X_in)}
                continue
            _, result = tuned(cnn, X_in, Y_in, X_t, Y_t)
            out[fraction, method] = {**result, "rows": len(X_in)}
    return out


def losses(args, pools, seed, balanced=False):
    """Question 2: {(loss, weighting): scores} for one seed.

    On the power-law canvases, every loss with and without balanced class
    weights; with ``balanced``, on canvases where every class has the same
    rate, without weights: does a loss for rare positives cost where
    positives are not rare?
    """
    (X_pool, y_pool), (X_pool_t, y_pool_t) = pools
    rates = np.full(10, args.balanced_rate) if balanced else power_law_rates(10)
    X, Y = imbalanced_mosaics(X_pool, y_pool, rates, args.n_train, seed)
    X_t, Y_t = imbalanced_mosaics(X_pool_t, y_pool_t, rates, args.n_test, seed + 1000)
    out = {}
    for loss in LOSSES:
        for weighting in (None,) if balanced else (None, "balanced"):
            cnn = {
                "max_epochs": args.epochs,
                "random_state": seed,
                "loss": loss,
                "class_weight": weighting,
                **args.cnn,
            }
            _, out[loss, weighting] = tuned(cnn, X, Y, X_t, Y_t)
    return out


def at_least_one(args, pools, seed, memory):
    """Question 3: {rule: scores} on canvases that always hold an item."""
    (X_pool, y_pool), (X_pool_t, y_pool_t) = pools
    rates = np.full(10, args.balanced_rate)
    X, Y = imbalanced_mosaics(X_pool, y_pool, rates, args.n_train, seed, at_least=1)
    X_t, Y_t = imbalanced_mosaics(
        X_pool_t, y_pool_t, rates, args.n_test, seed + 1000, at_least=1
    )
    cnn = {"max_epochs": args.epochs, "random_state": seed, "memory": memory}
    cnn.update(args.cnn)
    plain, out = {}, {}
    # One network for the three rows (memory): the rule is prediction-time.
    plain, out["thresholds alone"] = tuned(cnn, X, Y, X_t, Y_t)
    plain.set_params(min_labels=1)
    proba = plain.predict_proba(X_t)
    out["tuned thresholds, then min_labels=1"] = multilabel_scores(
        Y_t, plain.predict(X_t), proba
    )
    _, out["tuned with min_labels=1"] = tuned(cnn, X, Y, X_t, Y_t, min_labels=1)
    return out


def mean_spread(runs, key, metric):
    values = [run[key][metric] for run in runs if metric in run[key]]
    if not values:
        return None
    return float(np.mean(values)), float(np.std(values))


def cell(stat):
    return "-" if stat is None else f"{stat[0]:.3f} ± {stat[1]:.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--balanced-rate", type=float, default=0.3)
    parser.add_argument("--out", default=str(RESULTS / "partial_labels.md"))
    args = parser.parse_args(argv)
    args.cnn = {}
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.seeds = 300, 200, 1, 1
        args.cnn = {"width": 8}

    X_train, y_train, X_test, y_test = fashion_mnist()
    pools = (small_items(X_train), y_train), (small_items(X_test), y_test)
    hidden_runs, loss_runs, even_runs, one_runs = [], [], [], []
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Rare labels have few validation positives (min_positives warns), and
        # a tiny quick run may leave a label constant: neither is a result.
        warnings.filterwarnings("ignore", message=".*min_positives.*")
        warnings.filterwarnings("ignore", message=".*are constant.*")
        for seed in range(args.seeds):
            hidden_runs.append(hidden_entries(args, pools, seed))
            print(f"seed {seed}: hidden entries, {time.perf_counter() - start:.0f} s")
            loss_runs.append(losses(args, pools, seed))
            even_runs.append(losses(args, pools, seed, balanced=True))
            print(f"seed {seed}: losses, {time.perf_counter() - start:.0f} s")
            with tempfile.TemporaryDirectory() as memory:
                one_runs.append(at_least_one(args, pools, seed, memory))
            print(f"seed {seed}: min_labels, {time.perf_counter() - start:.0f} s")
    total = time.perf_counter() - start

    checks = []
    hidden_rows = []
    for fraction in HIDDEN:
        for method in METHODS:
            key = (fraction, method)
            rows_left = int(np.mean([run[key]["rows"] for run in hidden_runs]))
            hidden_rows.append(
                [
                    f"{fraction:.0%}",
                    method,
                    f"{rows_left}",
                    cell(mean_spread(hidden_runs, key, "macro")),
                    cell(mean_spread(hidden_runs, key, "micro")),
                    cell(mean_spread(hidden_runs, key, "mAP")),
                ]
            )
        if fraction < 0.3:
            continue
        for metric, label in (("macro", "macro-F1"), ("mAP", "mAP")):
            masked = mean_spread(hidden_runs, (fraction, METHODS[0]), metric)
            for other in METHODS[1:]:
                rival = mean_spread(hidden_runs, (fraction, other), metric)
                if rival is None:
                    # Nothing to compare with: not a pass of the target, and
                    # not a miss either.
                    ok, verdict = True, "n/a"
                    says = "no rows left to train on, nothing compared"
                else:
                    margin = masked[0] - rival[0]
                    spread = max(masked[1], rival[1])
                    ok = margin > spread
                    verdict = "PASS" if ok else "gap"
                    says = f"{margin:+.3f} (seed spread {spread:.3f})"
                checks.append(
                    (
                        ok,
                        f"{fraction:.0%} hidden, {label}: masked minus {other}: "
                        f"{says}: {verdict}.",
                    )
                )

    loss_rows = []
    for loss in LOSSES:
        for weighting in (None, "balanced"):
            key = (loss, weighting)
            loss_rows.append(
                [
                    loss,
                    "balanced" if weighting else "none",
                    cell(mean_spread(loss_runs, key, "mAP")),
                    cell(mean_spread(loss_runs, key, "macro")),
                    cell(mean_spread(loss_runs, key, "micro")),
                    cell(mean_spread(loss_runs, key, "macro@0.5")),
                    cell(mean_spread(loss_runs, key, "micro@0.5")),
                ]
            )
    even_rows = [
        [
            loss,
            cell(mean_spread(even_runs, (loss, None), "mAP")),
            cell(mean_spread(even_runs, (loss, None), "macro")),
            cell(mean_spread(even_runs, (loss, None), "micro")),
            cell(mean_spread(even_runs, (loss, None), "macro@0.5")),
            cell(mean_spread(even_runs, (loss, None), "micro@0.5")),
        ]
        for loss in LOSSES
    ]
    # The target: the default (loss="auto", ASL for multi-label targets)
    # is the loss the imbalanced mosaics favour. No other loss, with or
    # without balanced weights, may beat it by mAP beyond the seed spread,
    # and it must decide at least as well as BCE at the untuned 0.5: the
    # default is what a user who never tunes gets.
    default_loss = loss_auto()
    default_key = (default_loss, None)
    default = mean_spread(loss_runs, default_key, "mAP")
    best = max(
        ((loss, w) for loss in LOSSES for w in (None, "balanced")),
        key=lambda key: mean_spread(loss_runs, key, "mAP")[0],
    )
    best_stat = mean_spread(loss_runs, best, "mAP")
    beaten = best != default_key and best_stat[0] - default[0] > max(
        best_stat[1], default[1]
    )
    at_half = {
        m: (
            mean_spread(loss_runs, default_key, f"{m}@0.5")[0],
            mean_spread(loss_runs, ("bce", None), f"{m}@0.5")[0],
        )
        for m in ("macro", "micro")
    }
    decides = all(ours >= bce for ours, bce in at_half.values())
    verdict = (
        f"Default loss ({default_loss}, loss='auto'): mAP {default[0]:.3f}; "
        f"best by mAP {best[0]}"
        f"{', class_weight=balanced' if best[1] else ''} ({best_stat[0]:.3f}), "
        f"{'beyond' if beaten else 'within'} the seed spread; at 0.5, macro-F1 "
        f"{at_half['macro'][0]:.3f} vs BCE's {at_half['macro'][1]:.3f}, "
        f"micro-F1 {at_half['micro'][0]:.3f} vs {at_half['micro'][1]:.3f}: "
        + ("PASS." if not beaten and decides else "MISS: the default should change.")
    )

    one_rows = []
    for rule in one_runs[0]:
        one_rows.append(
            [
                rule,
                cell(mean_spread(one_runs, rule, "micro")),
                cell(mean_spread(one_runs, rule, "macro")),
                f"{np.mean([run[rule]['empty'] for run in one_runs]):.2%}",
            ]
        )
    alone = mean_spread(one_runs, "thresholds alone", "micro")
    for rule in ("tuned thresholds, then min_labels=1", "tuned with min_labels=1"):
        empty = max(run[rule]["empty"] for run in one_runs)
        micro = mean_spread(one_runs, rule, "micro")
        ok = empty == 0 and micro[0] >= alone[0] - max(micro[1], alone[1])
        checks.append(
            (
                ok,
                f"{rule}: empty rows {empty:.2%} (target 0), micro-F1 "
                f"{micro[0]:.3f} vs {alone[0]:.3f} with thresholds alone (not "
                f"lower beyond the seed spread): {'PASS' if ok else 'gap'}.",
            )
        )

    seeds = f"{args.seeds} seed(s); mean ± std over seeds"
    notes = [
        f"Data: {args.n_train} training / {args.n_test} test 28x28 canvases of up "
        "to four 14x14 Fashion-MNIST items (train and test canvases from "
        "disjoint source images), 10 labels; the test labels are complete. "
        f"{seeds}.",
        f"CNNClassifier defaults, max_epochs={args.epochs}; thresholds tuned by "
        "ThresholdTunerCV(cv=0.2, refit=False): on a validation fifth of each "
        "method's own training data, one training per row.",
        f"Question 1: every class present with probability {args.balanced_rate}; "
        "'rows' is the number of training canvases each method trains on.",
        "Question 2: class j present with probability "
        + ", ".join(f"{r:.3f}" for r in power_law_rates(10))
        + ". mAP is macro average precision (threshold-free); F1 at the tuned "
        "thresholds.",
        verdict,
        "Question 3: canvases with 1 to 4 items; the 'then min_labels=1' row is "
        "the first row's model with min_labels=1 set after fitting (a "
        "prediction-time setting); the last tunes its thresholds with the rule "
        "applied.",
        *[sentence for _, sentence in checks],
        f"Total time: {total:.0f} s.",
        *provenance("bench_partial_labels.py", argv),
    ]
    if args.quick:
        notes.insert(0, "QUICK smoke run: tiny sizes, numbers are not results.")
    write_markdown(
        args.out,
        "Unknown labels, rare positives, at least one label",
        ["hidden", "method", "rows", "macro-F1", "micro-F1", "mAP"],
        hidden_rows,
        notes,
    )
    with open(args.out, "a") as file:
        file.write("\n## Losses on power-law imbalanced mosaics\n\n")
        file.write(
            "| loss | class_weight | mAP | macro-F1 | micro-F1 | macro-F1 at 0.5 "
            "| micro-F1 at 0.5 |\n"
        )
        file.write("| --- | --- | --- | --- | --- | --- | --- |\n")
        for row in loss_rows:
            file.write("| " + " | ".join(row) + " |\n")
        file.write(
            "\n## Losses where every class has the same rate "
            f"({args.balanced_rate})\n\n"
        )
        file.write(
            "| loss | mAP | macro-F1 | micro-F1 | macro-F1 at 0.5 | micro-F1 at 0.5 |\n"
        )
        file.write("| --- | --- | --- | --- | --- | --- |\n")
        for row in even_rows:
            file.write("| " + " | ".join(row) + " |\n")
        file.write("\n## At least one label, on canvases that always hold one\n\n")
        file.write("| rule | micro-F1 | macro-F1 | empty rows |\n")
        file.write("| --- | --- | --- | --- |\n")
        for row in one_rows:
            file.write("| " + " | ".join(row) + " |\n")
    print(Path(args.out).read_text())
    if not args.quick and not all(ok for ok, _ in checks):
        sys.exit("target missed: " + " ".join(t for ok, t in checks if not ok))


if __name__ == "__main__":
    main()
