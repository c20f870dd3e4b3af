"""``accelerator``: training through Hugging Face Accelerate, on the CPU.

``Accelerator(cpu=True)`` in this process is one process of a data parallel
group of one: it must train exactly the network a plain fit trains. The
slow test runs a real group of two CPU processes (DDP over gloo) with
``torchrun``, as ``accelerate launch`` would on GPUs.
"""

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _counting import TrainCounter, trainings
from conftest import FAST
from sklearn.base import clone

from sk_mlc import CNNClassifier
from sk_mlc.data import BatchDataset, BatchSampler, ImageBatches, batch_loader

accelerate = pytest.importorskip(
    "accelerate", reason="the optional extra 'accelerate' is not installed"
)

TESTS = Path(__file__).parent
PARAMS = {**FAST, "augment": "flip", "validation_fraction": 0.2}


def _accelerator(**kwargs):
    # accelerate keeps one AcceleratorState per process and refuses a second
    # Accelerator with other settings; its own tests reset it the same way.
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    return accelerate.Accelerator(cpu=True, **kwargs)


@pytest.fixture(scope="module")
def accelerator():
    return _accelerator()


@pytest.fixture(scope="module")
def plain(binary_data):
    return CNNClassifier(**PARAMS).fit(*binary_data)


@pytest.fixture(scope="module")
def accelerated(binary_data, accelerator):
    return CNNClassifier(**PARAMS, accelerator=accelerator).fit(*binary_data)


def test_one_process_trains_the_plain_network(accelerated, plain, binary_data):
    X, _ = binary_data
    np.testing.assert_allclose(
        accelerated.predict_proba(X), plain.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    assert accelerated.net_.history[:, "valid_loss"] == pytest.approx(
        plain.net_.history[:, "valid_loss"], rel=1e-5
    )
    assert accelerated.precision_ == "32" and accelerated.device_ == "cpu"


def test_fitted_network_forgets_the_accelerator(accelerated, accelerator, binary_data):
    X, _ = binary_data
    assert not hasattr(accelerated.net_, "accelerator")
    # A pickle leaves the accelerator (process state) out, and predicts alike.
    copy = pickle.loads(pickle.dumps(accelerated))
    assert copy.accelerator is None
    assert accelerated.accelerator is accelerator
    np.testing.assert_array_equal(copy.predict_proba(X), accelerated.predict_proba(X))


def test_clone_shares_the_accelerator(accelerated, accelerator):
    copy = clone(accelerated)
    assert copy.get_params()["accelerator"] is accelerator
    assert not hasattr(copy, "net_")
    assert copy.get_params()["max_epochs"] == PARAMS["max_epochs"]


def test_accelerator_is_not_in_the_cache_key(binary_data, accelerator, tmp_path):
    log = tmp_path / "log"
    params = {
        **PARAMS,
        "memory": str(tmp_path / "cache"),
        "callbacks": [TrainCounter(log)],
    }
    first = CNNClassifier(**params, accelerator=accelerator).fit(*binary_data)
    second = CNNClassifier(**params).fit(*binary_data)
    assert trainings(log) == 1
    X, _ = binary_data
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"precision": "bf16-mixed"}, "its mixed_precision decides"),
        ({"device": "cpu"}, "places the network on its device"),
    ],
)
def test_settings_the_accelerator_decides_are_refused(
    params, match, accelerator, binary_data
):
    with pytest.raises(ValueError, match=match):
        CNNClassifier(**FAST, accelerator=accelerator, **params).fit(*binary_data)


def test_partial_fit_refuses_the_accelerator(accelerator, binary_data):
    X, y = binary_data
    clf = CNNClassifier(**FAST, accelerator=accelerator)
    with pytest.raises(ValueError, match="partial_fit trains in this process only"):
        clf.partial_fit(X, y, classes=np.unique(y))


def test_bf16_accelerator_sets_the_precision(plain, binary_data):
    X, y = binary_data
    try:
        bf16 = _accelerator(mixed_precision="bf16")
        clf = CNNClassifier(**PARAMS, accelerator=bf16).fit(X, y)
    finally:
        _accelerator()  # the module's accelerator settings again
    assert clf.precision_ == "bf16-mixed"
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, plain.predict_proba(X), atol=0.05)


@pytest.mark.slow  # a fresh interpreter: ~10 s of imports
def test_accelerate_is_imported_only_for_an_accelerator():
    code = (
        "import sys, numpy as np; from sk_mlc import CNNClassifier; "
        "CNNClassifier(width=4, depth=2, max_epochs=1, device='cpu')"
        ".fit(np.random.rand(20, 8, 8), np.arange(20) % 2); "
        "assert 'accelerate' not in sys.modules, 'accelerate was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=TESTS.parent)


@pytest.mark.parametrize(
    "n, batch_size, processes", [(10, 4, 1), (10, 4, 2), (128, 32, 3), (9, 2, 2)]
)
def test_batch_sampler_shards_cover_every_batch_evenly(n, batch_size, processes):
    whole = [tuple(b) for b in BatchSampler(n, batch_size, True, 7)]
    shards = [
        [tuple(b) for b in BatchSampler(n, batch_size, True, 7, (i, processes))]
        for i in range(processes)
    ]
    # The same number of steps on every process (DDP waits for all of them).
    expected = -(-len(whole) // processes)
    assert [len(s) for s in shards] == [expected] * processes
    assert [
        len(BatchSampler(n, batch_size, True, 7, (i, processes)))
        for i in range(processes)
    ] == [expected] * processes
    # Together, every batch of the pass; the padding repeats the first ones.
    dealt = [batch for step in zip(*shards, strict=True) for batch in step]
    assert dealt[: len(whole)] == whole
    assert dealt[len(whole) :] == whole[: len(dealt) - len(whole)]


def test_accelerate_prepare_would_break_the_batch_loader():
    """Why the accelerated net keeps sk_mlc's loader (see _accelerate.py)."""
    from accelerate.data_loader import prepare_data_loader

    X = np.zeros((10, 4, 4, 1), np.float32)
    dataset = BatchDataset(ImageBatches(X, X.shape[1:], False))
    # In-process batches are no DataLoader at all; with workers, they are.
    assert [len(X) for X, _ in batch_loader(dataset, 4)] == [4, 4, 2]
    loader = batch_loader(dataset, 4, num_workers=1)
    assert [len(X) for X, _ in loader] == [4, 4, 2]
    one = prepare_data_loader(loader, num_processes=1, process_index=0)
    assert len(next(iter(one))[0]) != 4  # per-image "batches"
    with pytest.raises(TypeError):
        list(prepare_data_loader(loader, num_processes=2, process_index=0))


@pytest.mark.slow
def test_two_processes_train_one_network_on_their_shares(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={port}",
            str(TESTS / "_ddp_fit.py"),
            str(tmp_path),
        ],
        check=True,
        env=env,
        cwd=TESTS,
        timeout=300,
    )
    first, second = (np.load(tmp_path / f"{rank}.npz") for rank in (0, 1))
    assert int(first["processes"]) == 2
    # 128 training images in batches of 32: 4 batches, 2 for each process.
    steps = first["train_steps"].tolist()
    assert steps == second["train_steps"].tolist() == [2] * len(steps)
    # Early stopping (lr=0.5 makes epoch 1 the best) stopped both processes
    # at the same epoch and restored the best weights into the DDP wrapper.
    assert len(steps) < 5
    # DDP averaged the gradients: one network, the same on both.
    np.testing.assert_array_equal(first["weights"], second["weights"])
    # Both validated on all of the validation set: the same losses.
    np.testing.assert_array_equal(first["valid_loss"], second["valid_loss"])
    np.testing.assert_array_equal(first["proba"], second["proba"])
    assert torch.isfinite(torch.from_numpy(first["proba"])).all()


def test_sample_weights_train_alike_through_the_accelerator(accelerator, binary_data):
    X, y = binary_data
    weight = np.random.RandomState(0).rand(len(y))
    plain = CNNClassifier(**PARAMS).fit(X, y, sample_weight=weight)
    clf = CNNClassifier(**PARAMS, accelerator=accelerator)
    clf.fit(X, y, sample_weight=weight)
    np.testing.assert_allclose(
        clf.predict_proba(X), plain.predict_proba(X), rtol=1e-5, atol=1e-6
    )


def test_compile_is_the_accelerators_business(binary_data, accelerator):
    X, y = binary_data
    with pytest.raises(ValueError, match="dynamo_backend"):
        CNNClassifier(**FAST, accelerator=accelerator, compile=True).fit(X, y)
