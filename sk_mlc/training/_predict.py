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
    def proba(X):
        # float32 logits whatever the autocast region computed in.
        return proba_tensor(net.infer(X).float())

    return forward_batches(
        net.module_,
        images,
        lambda X: tta_proba(proba, X, tta),
        device=str(net.device),
        autocast=net.autocast(),
        batch_size=batch_size,
        num_workers=num_workers,
        to_device=lambda X: net.to_device((X,))[0],
    )


def forward_batches(
    module: torch.nn.Module,
    images: ImageBatches,
    compute,
    *,
    device: str,
    autocast,
    batch_size,
    num_workers: int,
    to_device=None,
) -> np.ndarray:
    """``compute(X)`` for every batch ``X`` of ``images``, in eval mode, stacked.

    The one forward path of the fitted estimators (``predict_proba``,
    ``ImageFeatures.transform``): batches read by ``data``'s loader (on CUDA,
    an array that fits goes over once and is batched there), ``module`` in
    eval mode once, not per batch as skorch's ``evaluation_step`` sets it,
    ``inference_mode`` (which skips the autograd bookkeeping ``no_grad``
    still does) inside ``autocast``, and one copy of the outputs to the host
    at the end. The mode the module was in is restored: it may go on
    training.
    """
    images = training_images(images, device)
    loader = batch_loader(
        batch_dataset(images),
        resolve_batch_size(batch_size, device=device),
        num_workers=num_workers,
        pin_memory=device != "cpu",
    )
    if to_device is None:
        to_device = moving_to(device)
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode(), autocast:
            batches = []
            for X, _ in loader:
                X = to_tensor(to_device(X), device=device)
                batches.append(compute(X))
            # One copy to the host at the end: a copy per batch would make
            # the host wait for each batch before it may queue the next.
            return to_numpy(torch.cat(batches))
    finally:
        module.train(was_training)


def moving_to(device: str):
    """A batch's move to ``device``: without blocking from pinned memory."""
    if torch.device(device).type == "cpu":
        return lambda X: X
    return lambda X: X.to(device, non_blocking=True)
