"""The public exceptions: what each failure raises, and that they stay ValueErrors.

Each kind of failure a caller may want to tell apart raises its own class
from ``sk_mlc.exceptions`` (and tracebacks name that public module), while
code that catches ``ValueError`` or ``UserWarning`` keeps working.
"""

import json
import struct
import warnings

import numpy as np
import pytest
import torch
from conftest import FAST, quadrant_images
from safetensors import safe_open
from safetensors.torch import save_file

import sk_mlc
from sk_mlc import CNNClassifier
from sk_mlc.exceptions import (
    DisallowedContentError,
    MissingParameterError,
    SealedFileError,
    VersionWarning,
    WeightsMismatchError,
)

SMALL = {**FAST, "max_epochs": 1, "batch_size": 16}


class Backbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


@pytest.fixture(scope="module")
def data():
    return quadrant_images(n_samples=32)


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    X, Y = data
    path = tmp_path_factory.mktemp("saved") / "model.safetensors"
    sk_mlc.save(CNNClassifier(**SMALL).fit(X, Y[:, 0]), path)
    return path


def _rewrite(source, target, edit):
    """Copy ``source`` with ``edit(metadata)`` applied and the checksum redone."""
    from sk_mlc._sealed import checksum

    with safe_open(source, "pt") as file:
        metadata = dict(file.metadata())
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    document = json.loads(metadata["json"])
    edit(document)
    metadata["json"] = json.dumps(document)
    metadata["sha256"] = checksum(metadata, tensors)
    save_file(tensors, target, metadata=metadata)


def test_every_exception_is_public_and_keeps_its_builtin_base():
    for error in (
        DisallowedContentError,
        MissingParameterError,
        SealedFileError,
        WeightsMismatchError,
    ):
        assert issubclass(error, ValueError)
        assert error.__module__ == "sk_mlc.exceptions"
    assert issubclass(VersionWarning, UserWarning)
    assert set(sk_mlc.exceptions.__all__) == {
        "DisallowedContentError",
        "MissingParameterError",
        "SealedFileError",
        "VersionWarning",
        "WeightsMismatchError",
    }


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # one bit flipped
        lambda b: b"\x80\x04" + b[2:],  # looks like a pickle
        lambda b: struct.pack("<Q", 10**12) + b[8:],  # an impossible header
    ],
    ids=["truncated", "bit-flip", "pickle", "header"],
)
def test_a_damaged_file_raises_sealed_file_error(saved, tmp_path, damage):
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(damage(saved.read_bytes()))
    with pytest.raises(SealedFileError, match="sk_mlc.load"):
        sk_mlc.load(path)


def test_a_name_outside_the_allow_list_raises_disallowed_content_error(saved, tmp_path):
    path = tmp_path / "crafted.safetensors"

    def swap_optimizer(document):
        document["estimator"]["params"]["optimizer"] = {"__import__": "os:system"}

    _rewrite(saved, path, swap_optimizer)
    with pytest.raises(DisallowedContentError, match="'os:system' is not on"):
        sk_mlc.load(path)


def test_a_malformed_document_with_a_valid_checksum_is_a_sealed_file_error(
    saved, tmp_path
):
    path = tmp_path / "malformed.safetensors"
    _rewrite(saved, path, lambda d: d["estimator"].pop("attributes"))
    with pytest.raises(SealedFileError, match="no fitted attributes"):
        sk_mlc.load(path)


def test_a_missing_parameter_raises_missing_parameter_error(data, tmp_path):
    X, Y = data
    clf = CNNClassifier(Backbone(), **SMALL).fit(X, Y[:, 0])
    path = tmp_path / "user-module.safetensors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # recorded by name only
        sk_mlc.save(clf, path)
    with pytest.raises(MissingParameterError, match=r"module=\.\.\.") as caught:
        sk_mlc.load(path)
    assert caught.value.missing == {"module": "a Backbone instance"}
    loaded = sk_mlc.load(path, module=Backbone())
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_weights_that_do_not_fit_raise_weights_mismatch_error(data):
    X, Y = data
    wrong = {"conv.weight": torch.zeros(4, 1, 5, 5), "conv.bias": torch.zeros(4)}
    with pytest.raises(WeightsMismatchError, match="of another shape"):
        CNNClassifier(Backbone(), weights=wrong, **SMALL).fit(X, Y[:, 0])


def test_a_pickled_weights_file_raises_disallowed_content_error(data, tmp_path):
    X, Y = data
    path = tmp_path / "model.pt"
    torch.save(Backbone(), path)  # a whole pickled module, not a state dict
    with pytest.raises(DisallowedContentError, match="refused to load"):
        CNNClassifier(Backbone(), weights=path, **SMALL).fit(X, Y[:, 0])


def test_other_versions_warn_with_version_warning(saved, tmp_path):
    path = tmp_path / "old.safetensors"
    _rewrite(saved, path, lambda d: d["versions"].update(torch="1.0"))
    with pytest.warns(VersionWarning, match=r"torch 1\.0"):
        sk_mlc.load(path)
