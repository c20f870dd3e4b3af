"""Multi-label training on a folder of JPEGs and a CSV of tags (Planet layout)
===========================================================================

Kaggle's *Planet: Understanding the Amazon from Space* ships a folder of
images and a ``labels.csv`` of ``image_name,tags`` rows, tags separated by
spaces, ids without the extension. This script writes a small data set in that
layout from real images: 300 RGB JPEGs of 32x32 pixels, each a 2x2 mosaic of 1
to 3 Fashion-MNIST garments (scikit-learn's digits when Fashion-MNIST is not
installed), tinted one random colour per image, tagged with what is on it.

Then three lines train and predict; the images are decoded batch by batch from
disk, never all at once. ``CNNClassifier`` sees a multi-hot ``Y`` and picks
sigmoid outputs with the asymmetric loss by itself.

Run: ``python examples/planet_style.py`` (a few seconds on 2 CPU cores).
"""

import csv
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from sk_mlc import CNNClassifier
from sk_mlc.datasets import load_fashion_mnist, load_image_csv, make_mosaic

N_TRAIN, N_TEST = 240, 60


def garments():
    """Four kinds of real 16x16 grey images, their labels 0-3 and tag names."""
    try:
        X, y = load_fashion_mnist("test", return_X_y=True)
        kinds = {1: "trouser", 2: "pullover", 7: "sneaker", 8: "bag"}
    except FileNotFoundError:
        from sklearn.datasets import load_digits

        digits = load_digits()
        X, y = (digits.images * (255 / 16)).astype(np.uint8), digits.target
        kinds = {0: "zero", 1: "one", 4: "four", 7: "seven"}
    keep = np.isin(y, list(kinds))
    small = np.stack([np.asarray(Image.fromarray(x).resize((16, 16))) for x in X[keep]])
    labels = np.searchsorted(sorted(kinds), y[keep])
    return small, labels, [kinds[k] for k in sorted(kinds)]


def write_planet_style(root: Path) -> tuple[Path, Path]:
    """Write ``root/train-jpg/*.jpg`` and ``root/labels.csv``; return both paths."""
    images, labels, tags = garments()
    half = len(images) // 2
    canvases, rows = [], []
    # Train and test canvases come from disjoint halves of the garments, so
    # the held-out score never sees a garment the model was trained on.
    splits = [(slice(0, half), N_TRAIN, 0), (slice(half, None), N_TEST, 1)]
    for pool, n, seed in splits:
        X, Y = make_mosaic(
            images[pool],
            labels[pool],
            n_samples=n,
            n_items=(1, 3),
            jitter=2,
            n_classes=len(tags),
            random_state=seed,
        )
        canvases.append(X)
        rows.append(Y)
    X, Y = np.concatenate(canvases), np.concatenate(rows)
    tint = np.random.RandomState(0).uniform(0.4, 1.0, size=(len(X), 1, 1, 3))
    rgb = (X[..., None] * tint).astype(np.uint8)

    image_dir = root / "train-jpg"
    image_dir.mkdir()
    with open(root / "labels.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["image_name", "tags"])
        for index, (image, row) in enumerate(zip(rgb, Y, strict=True)):
            name = f"train_{index}"
            Image.fromarray(image).save(image_dir / f"{name}.jpg", quality=90)
            present = [tag for tag, on in zip(tags, row, strict=True) if on]
            writer.writerow([name, " ".join(present)])
    return root / "labels.csv", image_dir


def main():
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, image_dir = write_planet_style(Path(tmp))
        print(f"{csv_path.name}:", *csv_path.read_text().splitlines()[:4], sep="\n  ")

        # A Bunch: filenames, the multi-hot target, target_names (the tags).
        data = load_image_csv(csv_path, image_dir)
        # The last 60 rows are the held-out canvases (see write_planet_style).
        paths_train, paths_test, Y_train, Y_test = train_test_split(
            data.filenames, data.target, test_size=N_TEST, shuffle=False
        )
        clf = CNNClassifier(random_state=0).fit(paths_train, Y_train)
        Y_pred = clf.predict(paths_test)
    print(f"{len(data.filenames)} images, tags {data.target_names}")
    print(f"target_type_    = {clf.target_type_!r}")
    print(f"out_activation_ = {clf.out_activation_!r}")
    print(f"criterion_      = {clf.criterion_!r}")
    print(f"input_shape_    = {clf.input_shape_}")
    print(
        f"micro-F1 on {len(paths_test)} held-out images: "
        f"{f1_score(Y_test, Y_pred, average='micro'):.3f}"
    )


if __name__ == "__main__":
    main()
