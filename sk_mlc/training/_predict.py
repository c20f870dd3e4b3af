"""``predict_proba``: a trained net's probabilities, batch by batch, in eval mode.

What the logits mean is the target's business (``targets/``): this module
runs the network and hands its float32 logits to the target's
``proba_tensor``, with the test-time augmentation of ``data/_augment.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import to_numpy, to_tensor

from ..data import (
    ImageBatches,
    batch_dataset,
    batch_loader,
    training_images,
    tta_proba,
)
from ._outputs import cached_outputs
from ._spec import resolve_batch_size


def predict_proba(
    net: NeuralNet,
    images: ImageBatches,
    proba_tensor,
    *,
    tta: str | None,
    batch_size: int,
    num_workers: int,
    weights_id: str | None = None,
) -> np.ndarray:
    """``predict_proba``'s output, in batches, in eval mode.

    ``proba_tensor`` maps the module's logits to the probabilities (the
    target's). With ``tta="flip"`` each image's probabilities are the mean
    of its own and its mirror image's (``x.flip(-1)`` on the NCHW batch),
    which is what the ONNX export computes too. The loader is built here,
    not taken from the net, so that ``batch_size`` and ``num_workers`` set
    on the estimator after fit apply to prediction. Weights with an identity
    (``weights_id``: they came from, or went into, ``memory``) go through the
    in-process outputs cache (``_outputs.py``).
    """
    return cached_outputs(
        weights_id,
        net.module_,
        images,
        (str(net.device), tta),
        lambda: _forward(net, images, proba_tensor, tta, batch_size, num_workers),
    )


def _forward(net, images, proba_tensor, tta, batch_size, num_workers) -> np.ndarray:
    device = str(net.device)
    # On CUDA, an array that fits goes over once and is batched there.
    images = training_images(images, device)
    loader = batch_loader(
        batch_dataset(images),
        resolve_batch_size(batch_size, device=device),
        num_workers=num_workers,
        pin_memory=device != "cpu",
    )

    def proba(X):
        # float32 logits whatever the autocast region computed in.
        return proba_tensor(net.infer(X).float())

    # Eval mode once, not per batch as skorch's evaluation_step does, and
    # inference_mode, which skips the autograd bookkeeping no_grad still does.
    # The mode the net was in is restored: it may go on training.
    was_training = net.module_.training
    net.module_.eval()
    try:
        with torch.inference_mode(), net.autocast():
            batches = []
            for X, _ in loader:
                X = to_tensor(net.to_device((X,))[0], device=net.device)
                batches.append(tta_proba(proba, X, tta))
            # One copy to the host at the end: a copy per batch would make
            # the host wait for each batch before it may queue the next.
            return to_numpy(torch.cat(batches))
    finally:
        net.module_.train(was_training)
