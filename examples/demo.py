"""sk_mlc's demo: softmax or sigmoid, decided by the shape of y
============================================================

Runs on data that ships with scikit-learn (``load_digits``, 1,797 real 8x8
digits) with CNNClassifier's default parameters:

1. multiclass: one digit per image -> softmax + cross-entropy;
2. multi-label: two real digits side by side on one canvas, y = the set of
   digits present -> sigmoid + the asymmetric loss, decided by a threshold;
3. GridSearchCV over that threshold, with ``memory`` so that the network is
   trained once per fold, not once per threshold.

Run with ``make demo`` (or ``python examples/demo.py``).
"""

import tempfile
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, train_test_split

from sk_mlc import CNNClassifier
from sk_mlc.datasets import make_mosaic


def describe(clf):
    return (
        f"target_type_={clf.target_type_!r}  out_activation_={clf.out_activation_!r}  "
        f"criterion_={type(clf.criterion_).__name__}  n_outputs_={clf.n_outputs_}"
    )


def main():
    digits = load_digits()
    images, labels = digits.images, digits.target  # (1797, 8, 8) floats in 0..16
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=0.25, stratify=labels, random_state=0
    )

    print("1. Multiclass: one digit per 8x8 image, y = 1-D labels")
    start = time.perf_counter()
    clf = CNNClassifier(random_state=0).fit(images[train_idx], labels[train_idx])
    accuracy = accuracy_score(labels[test_idx], clf.predict(images[test_idx]))
    print(f"   {describe(clf)}")
    print(
        f"   held-out accuracy = {accuracy:.3f}  "
        f"({len(train_idx)} train / {len(test_idx)} test images, "
        f"{time.perf_counter() - start:.0f} s)"
    )

    print("\n2. Multi-label: two real digits per 8x16 canvas, y = digits present")
    # Train and test canvases are built from disjoint pools of real digits.
    X_train, Y_train = make_mosaic(
        images[train_idx],
        labels[train_idx],
        n_samples=4000,
        grid=(1, 2),
        n_items=2,
        random_state=0,
    )
    X_test, Y_test = make_mosaic(
        images[test_idx],
        labels[test_idx],
        n_samples=1000,
        grid=(1, 2),
        n_items=2,
        random_state=1,
    )
    start = time.perf_counter()
    clf = CNNClassifier(random_state=0).fit(X_train, Y_train)
    micro_f1 = f1_score(Y_test, clf.predict(X_test), average="micro")
    print(f"   {describe(clf)}")
    print(f"   predict_proba shape = {clf.predict_proba(X_test).shape}")
    print(
        f"   held-out micro-F1 at threshold 0.5 = {micro_f1:.3f}  "
        f"({len(X_train)} train / {len(X_test)} test canvases, "
        f"{time.perf_counter() - start:.0f} s)"
    )

    print("\n3. GridSearchCV over the threshold (memory: one training per fold)")
    thresholds = np.round(np.linspace(0.1, 0.9, 9), 2)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        search = GridSearchCV(
            CNNClassifier(memory=cache, random_state=0),
            {"threshold": thresholds},
            scoring="f1_micro",
            cv=3,
        ).fit(X_train, Y_train)
        elapsed = time.perf_counter() - start
    micro_f1 = f1_score(Y_test, search.predict(X_test), average="micro")
    print(
        f"   {len(thresholds)} thresholds x 3 folds = {3 * len(thresholds)} fits, "
        f"4 trainings, {elapsed:.0f} s"
    )
    print(
        f"   best threshold = {search.best_params_['threshold']}  (CV micro-F1 "
        f"{search.best_score_:.3f})"
    )
    print(f"   held-out micro-F1 at the tuned threshold = {micro_f1:.3f}")


if __name__ == "__main__":
    main()
