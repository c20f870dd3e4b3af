"""Splits of a multi-hot ``y`` that keep every label's rate: iterative stratification.

scikit-learn's ``StratifiedKFold`` cannot split a multi-label indicator matrix
(scikit-learn#11795), and a plain ``KFold`` can leave a rare label without a
single positive in a validation fold, where no threshold can be scored. The
iterative stratification of Sechidis, Tsoumakas & Vlahavas (2011) deals out
the samples of the rarest label first, each to the fold that still wants most
of it, so a label with ``k >= n_splits`` positives has one in every fold. The
algorithm itself comes from the ``iterative-stratification`` package
(``iterstrat``); this module makes it reproducible, accepts any 0/1 matrix
(one column too, and labels without positives), and sizes a single
validation split exactly as :func:`~sklearn.model_selection.train_test_split`.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from iterstrat.ml_stratifiers import IterativeStratification
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

# With shuffle=False the folds must not depend on the global random state:
# iterstrat breaks ties between equally hungry folds at random, so unshuffled
# folds break them with this fixed seed, and two fits of the same data (a
# ``memory`` cache, a comparison of settings) see the same folds.
_TIE_SEED = 0


def _indicator(y) -> np.ndarray:
    """``y``'s known positives, a dense ``(n_samples, n_labels)`` bool matrix.

    1-D: one label. NaN marks an unknown entry (a multi-label y with
    unknowns): it is not a positive, so rows are dealt by their known ones.
    """
    if hasattr(y, "toarray"):
        y = y.toarray()
    y = np.asarray(y)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    known = ~np.isnan(y) if y.dtype.kind == "f" else np.ones(y.shape, dtype=bool)
    if y.ndim != 2 or not np.isin(y[known], (0, 1)).all():
        raise ValueError(
            "Iterative stratification needs a 0/1 indicator matrix of shape "
            f"(n_samples, n_labels) (NaN for unknown entries); got an array of "
            f"shape {y.shape} with values {np.unique(y)[:5].tolist()}."
        )
    return y == 1


def _deal(Y: np.ndarray, fractions: np.ndarray, rng) -> np.ndarray:
    """Fold of each row of ``Y``: iterative stratification, then no empty fold.

    iterstrat can, on tiny data, leave a fold without samples (its rows all go
    where their labels are wanted most); a fold must hold at least one sample,
    so the largest fold gives its least label-bearing row to each empty one.
    """
    folds = IterativeStratification(labels=Y, r=fractions, random_state=rng)
    for empty in np.flatnonzero(np.bincount(folds, minlength=len(fractions)) == 0):
        largest = np.bincount(folds, minlength=len(fractions)).argmax()
        rows = np.flatnonzero(folds == largest)
        folds[rows[Y[rows].sum(axis=1).argmin()]] = empty
    return folds


class IterativeStratifiedKFold(BaseCrossValidator):
    """K folds of a multi-label ``y``, each with every label's rate.

    Iterative stratification (Sechidis et al., 2011) through ``iterstrat``.
    Unlike iterstrat's own ``MultilabelStratifiedKFold`` (hence another name),
    unshuffled folds are reproducible without a seed, as scikit-learn's
    ``KFold`` is; ``shuffle=True`` permutes the samples first, seeded by
    ``random_state``. Fold sizes may differ by a few samples.
    A label with ``k >= n_splits`` positives has a positive in every fold; one
    with fewer (or none) has a positive in ``k`` folds.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    shuffle : bool, default=False
        Permute the samples before dealing them out.
    random_state : int, RandomState instance or None, default=None
        Seeds the permutation and the tie-breaks when ``shuffle=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mlc.model_selection import IterativeStratifiedKFold
    >>> Y = np.zeros((20, 2), dtype=int)
    >>> Y[:4, 0] = 1  # a rare label: 4 positives for 4 folds
    >>> Y[::2, 1] = 1
    >>> cv = IterativeStratifiedKFold(n_splits=4)
    >>> [Y[test].sum(axis=0).tolist() for _, test in cv.split(Y, Y)]
    [[1, 3], [1, 3], [1, 2], [1, 2]]
    """

    def __init__(self, n_splits=5, *, shuffle=False, random_state=None):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def split(self, X, y, groups=None):
        """Yield ``(train, test)`` index arrays, both sorted.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Only its length is used.
        y : array-like or sparse matrix of shape (n_samples, n_labels)
            The 0/1 indicator matrix to stratify (1-D: a single label).
        groups : None
            Ignored.

        Yields
        ------
        train, test : ndarray of int
        """
        Y = _indicator(y)
        n = X.shape[0] if hasattr(X, "shape") else len(X)
        if not isinstance(self.n_splits, Integral) or self.n_splits < 2:
            raise ValueError(
                "IterativeStratifiedKFold: n_splits must be an int >= 2; got "
                f"{self.n_splits!r}."
            )
        if len(Y) != n or n < self.n_splits:
            raise ValueError(
                f"IterativeStratifiedKFold: cannot make {self.n_splits} folds of "
                f"{n} samples with a y of {len(Y)} rows; need at least n_splits "
                "samples and one row of y per sample."
            )
        rng = check_random_state(self.random_state if self.shuffle else _TIE_SEED)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        fractions = np.full(self.n_splits, 1 / self.n_splits)
        folds = np.empty(n, dtype=int)
        folds[order] = _deal(Y[order], fractions, rng)
        for fold in range(self.n_splits):
            yield np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)

    def get_n_splits(self, X=None, y=None, groups=None):
        """The number of folds, ``n_splits``."""
        return self.n_splits


def _n_test(n: int, test_size) -> int:
    """Validation size as ``train_test_split`` computes it (ceil of a fraction)."""
    if isinstance(test_size, Real) and not isinstance(test_size, Integral):
        if not 0 < test_size < 1:
            raise ValueError(f"test_size must lie in (0, 1); got {test_size}.")
        n_test = math.ceil(test_size * n)
    else:
        n_test = int(test_size)
    if not 1 <= n_test <= n - 1:
        raise ValueError(
            f"With n_samples={n} and test_size={test_size!r}, the validation split "
            f"would hold {n_test} samples; both parts need at least one."
        )
    return n_test


def multilabel_train_test_split(index, Y, test_size, random_state=None):
    """One stratified ``(train, validation)`` split of a multi-label ``Y``.

    Every label keeps (close to) its rate in both parts, by iterative
    stratification. The validation part has exactly ``ceil(test_size * n)``
    samples (or ``test_size`` of them, for an int), as with
    :func:`~sklearn.model_selection.train_test_split`: where the algorithm's
    sizes are off by a few, the rows carrying the most common labels (rows
    without labels first) are moved, which hardly shifts any label's rate.

    Parameters
    ----------
    index : array-like of shape (n_samples,)
        The samples to split, e.g. ``np.arange(n_samples)``; its values are
        returned, not positions into it.
    Y : array-like or sparse matrix of shape (n_samples, n_labels)
        The 0/1 indicator matrix, one row per element of ``index``.
    test_size : float in (0, 1) or int
        Fraction (rounded up) or number of validation samples.
    random_state : int, RandomState instance or None, default=None
        Seeds the permutation and the tie-breaks; an int gives the same split
        every time.

    Returns
    -------
    train_idx, valid_idx : ndarray
        Sorted elements of ``index``.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mlc.model_selection import multilabel_train_test_split
    >>> Y = np.zeros((50, 3), dtype=int)
    >>> Y[:10, 0] = Y[::5, 1] = 1  # label 2 has no positive at all
    >>> train, valid = multilabel_train_test_split(np.arange(50), Y, 0.2, 0)
    >>> len(train), len(valid), Y[valid].sum(axis=0).tolist()
    (40, 10, [2, 2, 0])
    """
    index = np.asarray(index)
    Y = _indicator(Y)
    n = len(index)
    if len(Y) != n:
        raise ValueError(
            f"multilabel_train_test_split: index has {n} samples but Y has "
            f"{len(Y)} rows."
        )
    n_test = _n_test(n, test_size)
    rng = check_random_state(random_state)
    order = rng.permutation(n)
    in_test = np.zeros(n, dtype=bool)
    fractions = np.array([n - n_test, n_test]) / n
    in_test[order] = _deal(Y[order], fractions, rng) == 1
    surplus = int(in_test.sum()) - n_test
    if surplus:
        # Move the rows whose labels are least rare: a row's rarity is its
        # rarest label's 1/count, 0 for a row without labels.
        counts = Y.sum(axis=0)
        rarity = np.where(Y, 1 / np.maximum(counts, 1), 0).max(axis=1)
        side = np.flatnonzero(in_test if surplus > 0 else ~in_test)
        side = side[rng.permutation(len(side))]  # random among equally rare rows
        moved = side[np.argsort(rarity[side], kind="stable")[: abs(surplus)]]
        in_test[moved] = surplus < 0
    return np.sort(index[~in_test]), np.sort(index[in_test])
