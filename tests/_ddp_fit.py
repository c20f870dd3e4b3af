"""One data parallel fit, run by ``torchrun --nproc_per_node 2`` (test_accelerate).

Every process fits the same data with ``Accelerator(cpu=True)`` (DDP over
gloo), with early stopping, and writes what it saw to ``<out>/<rank>.npz``:
its training steps per epoch, the validation losses, the probabilities and
the trained weights.
It lives outside the test files so that each process imports it alone.
"""

import sys

import numpy as np
import torch
from accelerate import Accelerator
from conftest import FAST, quadrant_images

from sk_mlc import CNNClassifier


def main(out):
    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    X, Y = quadrant_images()
    clf = CNNClassifier(
        **{**FAST, "max_epochs": 5},
        accelerator=accelerator,
        augment="flip",
        validation_fraction=0.2,
        early_stopping=True,
        n_iter_no_change=2,
        lr=0.5,  # a rough ride, so that an earlier epoch is the best one
    ).fit(X, Y)
    weights = np.concatenate(
        [p.detach().numpy().ravel() for p in clf.net_.module_.parameters()]
    )
    np.savez(
        f"{out}/{accelerator.process_index}.npz",
        processes=accelerator.num_processes,
        train_steps=[
            sum("train_loss" in batch for batch in epoch["batches"])
            for epoch in clf.net_.history
        ],
        valid_loss=np.array(clf.net_.history[:, "valid_loss"]),
        proba=clf.predict_proba(X),
        weights=weights,
    )


if __name__ == "__main__":
    main(sys.argv[1])
