"""Iterative stratification of a multi-hot y: every label's rate in every fold."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.model_selection import KFold

from sk_mlc.model_selection import (
    IterativeStratifiedKFold,
    multilabel_train_test_split,
)


def power_law_labels(n=200, seed=0):
    """Six labels from 50 % down to 2 %, plus one that is never on."""
    rng = np.random.RandomState(seed)
    rates = np.array([0.5, 0.3, 0.15, 0.08, 0.04, 0.02, 0.0])
    return (rng.rand(n, rates.size) < rates).astype(int)


@pytest.mark.parametrize("n_splits", [2, 3, 5])
def test_a_label_with_n_splits_positives_has_one_in_every_fold(n_splits):
    Y = power_law_labels()
    rare = np.zeros(len(Y), dtype=int)
    rare[np.random.RandomState(1).choice(len(Y), n_splits, replace=False)] = 1
    Y = np.column_stack([Y, rare])
    cv = IterativeStratifiedKFold(n_splits)
    for _, test in cv.split(Y, Y):
        assert Y[test, -1].sum() == 1
        # Every label with at least n_splits positives is in every fold.
        present = Y.sum(axis=0) >= n_splits
        assert (Y[test][:, present].sum(axis=0) >= 1).all()


def test_plain_kfold_misses_the_rare_label_that_stratification_keeps():
    # Why the tuner does not take check_cv's KFold for a multi-hot y: the same
    # five positives, consecutive, land in one KFold fold.
    Y = power_law_labels()
    rare = np.zeros(len(Y), dtype=int)
    rare[:5] = 1
    Y = np.column_stack([Y, rare])
    kfold = [Y[test, -1].sum() for _, test in KFold(5).split(Y)]
    stratified = [Y[t, -1].sum() for _, t in IterativeStratifiedKFold(5).split(Y, Y)]
    assert kfold == [5, 0, 0, 0, 0]
    assert stratified == [1, 1, 1, 1, 1]


def test_folds_partition_the_samples_with_sizes_within_a_few():
    Y = power_law_labels(203)
    tests = [test for _, test in IterativeStratifiedKFold(5).split(Y, Y)]
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(203))
    sizes = [len(test) for test in tests]
    assert max(sizes) - min(sizes) <= 3
    for train, test in IterativeStratifiedKFold(5).split(Y, Y):
        assert np.intersect1d(train, test).size == 0
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


def test_unshuffled_folds_do_not_depend_on_the_global_random_state():
    Y = power_law_labels()
    np.random.seed(1)
    first = [test for _, test in IterativeStratifiedKFold(4).split(Y, Y)]
    np.random.seed(2)
    second = [test for _, test in IterativeStratifiedKFold(4).split(Y, Y)]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_shuffled_folds_follow_random_state():
    Y = power_law_labels()

    def folds(seed):
        cv = IterativeStratifiedKFold(4, shuffle=True, random_state=seed)
        return [test.tolist() for _, test in cv.split(Y, Y)]

    assert folds(0) == folds(0)
    assert folds(0) != folds(1)


@pytest.mark.parametrize(
    "form",
    [
        lambda Y: sp.csr_matrix(Y),
        lambda Y: Y.astype(bool),
        lambda Y: Y.tolist(),
    ],
)
def test_sparse_bool_and_list_y_split_like_the_dense_matrix(form):
    Y = power_law_labels(60)
    dense = [t.tolist() for _, t in IterativeStratifiedKFold(3).split(Y, Y)]
    other = [t.tolist() for _, t in IterativeStratifiedKFold(3).split(Y, form(Y))]
    assert other == dense


def test_one_label_and_no_positives_at_all():
    y = np.r_[np.ones(6, int), np.zeros(14, int)]  # 1-D: a single label
    tests = [t for _, t in IterativeStratifiedKFold(3).split(y, y)]
    assert [y[t].sum() for t in tests] == [2, 2, 2]
    Y = np.zeros((10, 3), dtype=int)  # no label ever on: sizes alone
    sizes = [len(t) for _, t in IterativeStratifiedKFold(5).split(Y, Y)]
    assert sizes == [2, 2, 2, 2, 2]


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7])
def test_tiny_data_never_leaves_a_fold_empty(n):
    for seed in range(20):
        Y = (np.random.RandomState(seed).rand(n, 3) < 0.6).astype(int)
        n_splits = min(n, 3)
        tests = [t for _, t in IterativeStratifiedKFold(n_splits).split(Y, Y)]
        assert all(len(t) >= 1 for t in tests)
        assert sum(len(t) for t in tests) == n


@pytest.mark.parametrize(
    "n_splits, Y, match",
    [
        (5, np.eye(3, dtype=int), "cannot make 5 folds of 3 samples"),
        (1, np.eye(3, dtype=int), "n_splits must be an int >= 2"),
        (2, np.full((4, 2), 2), "0/1 indicator matrix"),
    ],
)
def test_impossible_folds_say_why(n_splits, Y, match):
    with pytest.raises(ValueError, match=match):
        list(IterativeStratifiedKFold(n_splits).split(Y, Y))


# --- One validation split, for early stopping ----------------------------------


@pytest.mark.parametrize("n", [10, 37, 101, 250])
@pytest.mark.parametrize("test_size", [0.1, 0.2, 1 / 3, 0.5, 7])
def test_validation_size_is_train_test_splits(n, test_size):
    Y = power_law_labels(n)
    index = np.arange(n) * 10 + 3  # returned values come from index
    train, valid = multilabel_train_test_split(index, Y, test_size, random_state=0)
    expected = test_size if isinstance(test_size, int) else math.ceil(test_size * n)
    assert len(valid) == expected and len(train) == n - expected
    np.testing.assert_array_equal(np.sort(np.r_[train, valid]), index)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(valid) > 0)


def test_validation_split_keeps_each_labels_rate():
    Y = power_law_labels(500)
    train, valid = multilabel_train_test_split(np.arange(500), Y, 0.2, 0)
    for j in range(Y.shape[1]):
        positives = Y[:, j].sum()
        # Within one sample of a fifth of every label's positives.
        assert abs(Y[valid, j].sum() - positives / 5) <= 1


def test_validation_split_follows_random_state():
    Y = power_law_labels(100)

    def split(seed):
        return multilabel_train_test_split(np.arange(100), Y, 0.2, seed)[1].tolist()

    assert split(0) == split(0)
    assert split(0) != split(1)


@pytest.mark.parametrize(
    "n, test_size, match",
    [
        (1, 0.5, "both parts need at least one"),
        (10, 10, "both parts"),
        (10, 1.5, r"must lie in \(0, 1\)"),
    ],
)
def test_a_validation_split_that_leaves_a_part_empty_is_refused(n, test_size, match):
    with pytest.raises(ValueError, match=match):
        multilabel_train_test_split(np.arange(n), np.ones((n, 2)), test_size)


def test_index_and_y_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="index has 5 samples but Y has 4 rows"):
        multilabel_train_test_split(np.arange(5), np.ones((4, 2)), 0.2)
