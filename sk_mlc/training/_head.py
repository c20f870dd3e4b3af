"""A linear probe fitted to convergence: the head on the frozen backbone's features.

While the backbone is frozen its features never change, so training the head
for ``freeze_epochs`` epochs would run the backbone over every image again at
each epoch for a head that, on a few images, gets a handful of optimizer
steps. Instead :func:`view_features` runs the backbone over the training
images once (twice with flips: once per view), and :func:`fit_head` fits the
output layer on those features with full-batch L-BFGS until it converges:
the training's own loss (class weights, label smoothing, unknown entries,
sample weights, focal and asymmetric losses included) plus an L2 penalty of
``||W||^2 / (2 n)`` on the weights, ``n`` being the number of feature rows.
For cross-entropy and binary cross-entropy that is scikit-learn's
``LogisticRegression(C=1.0)`` objective, so the probe is the logistic
regression a scikit-learn user would fit on the same features
(``tests/test_head.py``).

On the LFW photos with EfficientNet-Lite0's ImageNet weights at 224x224 and
five photos per class, the previous probe (ten epochs of AdamW on the head)
scored 0.944 where that logistic regression scored about 0.99; this one
scores as the logistic regression does (``benchmarks/bench_transfer.py``).
"""

from __future__ import annotations

import torch
from skorch.utils import to_tensor

# L-BFGS's budget and tolerances. Its iterations are cheap (one product of
# the features with the weights), and the objective is smooth and, for the
# default losses, convex: converging costs a few dozen to a few hundred.
_MAX_ITERATIONS = 1000
_TOLERANCE_GRAD = 1e-6
_TOLERANCE_CHANGE = 1e-10


def view_features(net, dataset, flips: bool):
    """The frozen backbone's features of ``dataset``, and its targets.

    Returns ``(features, y)``: float32 features on the net's device, one row
    per image (and, with ``flips``, a second block for the mirror images),
    and the targets batched alike (``(y, weight)`` with sample weights), as
    ``Net.get_loss`` takes them.
    """
    module = net.module_
    features = module.features()
    was_training = module.training
    module.eval()
    blocks, targets = [], []
    try:
        with torch.no_grad(), net.autocast():
            for X, y in net.get_iterator(dataset, training=False):
                X = to_tensor(net.to_device((X,))[0], device=net.device)
                blocks.append(features(X).float())
                targets.append(net.to_device((y,))[0])
            if flips:
                # Second pass, not interleaved: the rows keep the order of y.
                for X, _ in net.get_iterator(dataset, training=False):
                    X = to_tensor(net.to_device((X,))[0], device=net.device)
                    blocks.append(features(X.flip(-1)).float())
    finally:
        module.train(was_training)
    targets = targets * (2 if flips else 1)
    return torch.cat(blocks), _concatenate(targets, net.device)


def _concatenate(parts: list, device):
    """Batched targets as one: tensors, or ``(y, weight)`` pairs, or None."""
    first = parts[0]
    if first is None:
        return None
    if isinstance(first, (tuple, list)):
        return tuple(
            _concatenate([part[i] for part in parts], device) for i in range(len(first))
        )
    return torch.cat([to_tensor(part, device=device) for part in parts])


def fit_head(net, features: torch.Tensor, y) -> tuple[float, int]:
    """Fit ``net.module_.output`` on ``features`` to convergence; in place.

    Starts from the layer's current weights (a warm start keeps its head's)
    and minimises the net's loss on ``features`` plus ``||W||^2 / (2 n)``.
    Returns the loss (without the penalty) and the iterations taken.
    """
    head = net.module_.output
    n = len(features)
    optimizer = torch.optim.LBFGS(
        [head.weight, head.bias],
        lr=1.0,
        max_iter=_MAX_ITERATIONS,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=_TOLERANCE_GRAD,
        tolerance_change=_TOLERANCE_CHANGE,
    )

    def objective():
        optimizer.zero_grad()
        loss = net.get_loss(head(features), y, training=True)
        total = loss + head.weight.square().sum() / (2 * n)
        total.backward()
        return total

    with torch.enable_grad():
        optimizer.step(objective)
        with torch.no_grad():
            loss = net.get_loss(head(features), y, training=True)
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    return float(loss), int(state.get("n_iter", 0))
