"""Starting from learned weights: ``weights``, ``freeze_epochs``, ``normalize``,
``warm_start`` and ``partial_fit``, on tiny data with the built-in CNN."""

import pickle

import numpy as np
import pytest
import torch
from conftest import FAST, quadrant_images
from safetensors.torch import save_file
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, cross_val_score
from torch import nn

from sk_mlc import CNNClassifier, ImageFeatures

SMALL = {**FAST, "max_epochs": 2}


def backbone(clf):
    return clf.net_.module_[1]


def backbone_state(clf):
    return {k: v.detach().clone() for k, v in backbone(clf).state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def source(multilabel_data):
    """A fitted model whose backbone the other models start from."""
    X, Y = multilabel_data
    return CNNClassifier(**FAST).fit(X, Y)


@pytest.fixture(scope="module")
def binary_y(multilabel_data):
    return np.where(multilabel_data[1][:, 1] == 1, "blob", "empty")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_linear_probe_from_a_weights_file_keeps_the_backbone(
    source, multilabel_data, binary_y, tmp_path, suffix
):
    X, _ = multilabel_data
    state = backbone_state(source)
    path = tmp_path / f"backbone{suffix}"
    if suffix == ".pt":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    clf = CNNClassifier(weights=path, freeze_epochs=8, **FAST).fit(X, binary_y)
    # Frozen throughout: weights and BatchNorm running statistics unchanged,
    # while the new head (one output for the binary target) trained.
    assert_same_state(backbone_state(clf), state)
    assert clf.net_.module_[-1].out_features == 1
    assert clf.score(X, binary_y) > 0.8


def test_fine_tuning_moves_the_backbone_after_the_frozen_epochs(
    source, multilabel_data, binary_y
):
    X, _ = multilabel_data
    state = backbone_state(source)
    clf = CNNClassifier(weights=state, freeze_epochs=1, **SMALL).fit(X, binary_y)
    after = backbone_state(clf)
    assert not torch.equal(after["features.0.weight"], state["features.0.weight"])


def test_a_state_dict_of_arrays_is_accepted(source, multilabel_data, binary_y):
    X, _ = multilabel_data
    arrays = {k: v.numpy() for k, v in backbone_state(source).items()}
    clf = CNNClassifier(weights=arrays, freeze_epochs=9, **SMALL).fit(X, binary_y)
    np.testing.assert_array_equal(
        backbone(clf).state_dict()["features.0.weight"].numpy(),
        arrays["features.0.weight"],
    )


def test_extra_entries_are_ignored_with_a_warning_naming_them(
    source, multilabel_data, binary_y
):
    X, _ = multilabel_data
    state = backbone_state(source)
    state["fc.weight"] = torch.zeros(3, 4)
    state["fc.bias"] = torch.zeros(3)
    with pytest.warns(UserWarning, match=r"fc\.weight, fc\.bias"):
        CNNClassifier(weights=state, **SMALL).fit(X, binary_y)


def test_missing_and_mismatched_entries_are_listed(source, multilabel_data, binary_y):
    X, _ = multilabel_data
    state = backbone_state(source)
    del state["features.1.running_mean"]
    state["features.0.weight"] = torch.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError) as info:
        CNNClassifier(weights=state, **SMALL).fit(X, binary_y)
    message = str(info.value)
    assert "CNNClassifier" in message
    assert "features.1.running_mean" in message
    assert "features.0.weight (1, 1, 3, 3) in the weights, (8, 1, 3, 3)" in message


class _Payload:
    """Unpickling this runs ``open(path, "w")``: it must never happen."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_file_that_would_run_code_is_refused_and_not_run(
    multilabel_data, binary_y, tmp_path
):
    X, _ = multilabel_data
    marker = tmp_path / "payload-ran"
    path = tmp_path / "weights.pt"
    torch.save({"features.0.weight": _Payload(marker)}, path)
    with pytest.raises(ValueError, match="CNNClassifier.*refused.*run code"):
        CNNClassifier(weights=path, **SMALL).fit(X, binary_y)
    assert not marker.exists()
    # A plain pickle (not a torch.save file) is refused the same way.
    with open(path, "wb") as file:
        pickle.dump({"features.0.weight": _Payload(marker)}, file)
    with pytest.raises(ValueError, match="CNNClassifier"):
        CNNClassifier(weights=path, **SMALL).fit(X, binary_y)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_unreadable_and_missing_files_get_clear_errors(
    multilabel_data, binary_y, tmp_path, suffix
):
    X, _ = multilabel_data
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"not weights at all")
    with pytest.raises(ValueError, match="CNNClassifier.*broken"):
        CNNClassifier(weights=path, **SMALL).fit(X, binary_y)
    with pytest.raises(ValueError, match="does not exist"):
        CNNClassifier(weights=tmp_path / "absent.pt", **SMALL).fit(X, binary_y)


def test_a_checkpoint_dict_gets_a_hint(multilabel_data, binary_y, tmp_path):
    X, _ = multilabel_data
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": 3}, path)
    with pytest.raises(ValueError, match="'state_dict' entry"):
        CNNClassifier(weights=path, **SMALL).fit(X, binary_y)


def test_a_fitted_classifier_gives_its_backbone_and_statistics(
    source, multilabel_data, binary_y
):
    X, _ = multilabel_data
    clf = CNNClassifier(weights=source, freeze_epochs=2, **SMALL).fit(X + 1, binary_y)
    assert_same_state(backbone_state(clf), backbone_state(source))
    # normalize="auto" takes the source's statistics, not those of X + 1.
    torch.testing.assert_close(clf.net_.module_[0].mean, source.net_.module_[0].mean)
    learned = CNNClassifier(weights=source, normalize=(0.5, 2.0), **SMALL)
    learned.fit(X, binary_y)
    assert learned.net_.module_[0].std.flatten().tolist() == [2.0]


def test_an_unfitted_classifier_as_weights_says_to_freeze_it(multilabel_data, binary_y):
    X, _ = multilabel_data
    with pytest.raises(ValueError, match="FrozenEstimator"):
        CNNClassifier(weights=CNNClassifier(), **SMALL).fit(X, binary_y)


def test_a_frozen_fitted_classifier_survives_clone_in_searches(
    source, multilabel_data, binary_y
):
    X, _ = multilabel_data
    clf = CNNClassifier(weights=FrozenEstimator(source), freeze_epochs=8, **FAST)
    search = GridSearchCV(clf, {"lr": [3e-3, 1e-2]}, cv=2).fit(X, binary_y)
    assert_same_state(backbone_state(search.best_estimator_), backbone_state(source))
    scores = cross_val_score(clf, X, binary_y, cv=2)
    assert scores.mean() > 0.7


def test_weights_for_another_architecture_are_refused(source, binary_y):
    X, _ = quadrant_images(n_samples=160, size=16)
    with pytest.raises(ValueError, match="do not fit the backbone"):
        CNNClassifier(weights=source, **{**SMALL, "width": 4}).fit(X, binary_y)


def test_normalize_imagenet_needs_rgb_and_sets_its_statistics(
    multilabel_data, binary_y
):
    X, _ = multilabel_data
    with pytest.raises(ValueError, match="image_mode='RGB'"):
        CNNClassifier(normalize="imagenet", **SMALL).fit(X, binary_y)
    clf = CNNClassifier(normalize="imagenet", image_mode="RGB", **SMALL)
    clf.fit(X, binary_y)
    mean = clf.net_.module_[0].mean.flatten().tolist()
    np.testing.assert_allclose(mean, [0.485, 0.456, 0.406], rtol=1e-6)


@pytest.mark.parametrize(
    "normalize", [(0.5, 0.0), ((0.1, 0.2), (1.0,)), (0.5,), "bogus"]
)
def test_bad_normalize_is_refused(multilabel_data, binary_y, normalize):
    X, _ = multilabel_data
    with pytest.raises(ValueError, match="normalize") as info:
        CNNClassifier(normalize=normalize, **SMALL).fit(X, binary_y)
    assert "CNNClassifier" in str(info.value)


def test_warm_start_continues_the_fitted_network(multilabel_data, binary_y):
    X, _ = multilabel_data
    clf = CNNClassifier(warm_start=True, **SMALL).fit(X, binary_y)
    before = {k: v.clone() for k, v in clf.net_.module_.named_parameters()}
    # At a vanishing learning rate, continuing leaves the weights where they
    # were, while a cold start draws new ones.
    clf.set_params(lr=1e-12).fit(X, binary_y)
    for name, value in clf.net_.module_.named_parameters():
        torch.testing.assert_close(value, before[name], rtol=0, atol=1e-6)
    clf.set_params(warm_start=False, random_state=1).fit(X, binary_y)
    weight = clf.net_.module_[1].features[0].weight
    assert (weight - before["1.features.0.weight"]).abs().max() > 1e-2


def test_warm_start_refuses_other_classes(multilabel_data, binary_y):
    X, Y = multilabel_data
    clf = CNNClassifier(warm_start=True, **SMALL).fit(X, binary_y)
    with pytest.raises(ValueError, match="warm_start=True.*classes"):
        clf.fit(X, Y)


def test_warm_start_with_memory_never_reads_a_cold_network(
    multilabel_data, binary_y, tmp_path
):
    X, _ = multilabel_data
    cold = CNNClassifier(memory=str(tmp_path), **SMALL).fit(X, binary_y)
    warm = CNNClassifier(memory=str(tmp_path), warm_start=True, **SMALL)
    warm.fit(X, binary_y)  # a cold start: the cached network is the same
    np.testing.assert_array_equal(warm.predict_proba(X), cold.predict_proba(X))
    warm.fit(X, binary_y)  # the same key but for the starting weights
    assert np.abs(warm.predict_proba(X) - cold.predict_proba(X)).max() > 1e-4


def test_partial_fit_needs_classes_first_and_refuses_unknown_labels(
    multilabel_data, binary_y
):
    X, _ = multilabel_data
    clf = CNNClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes="):
        clf.partial_fit(X, binary_y)
    # A first batch with a single class is fine: classes says what exists.
    blob = binary_y == "blob"
    clf.partial_fit(X[blob], binary_y[blob], classes=["blob", "empty"])
    assert clf.classes_.tolist() == ["blob", "empty"]
    assert clf.n_iter_ == 1
    with pytest.raises(ValueError, match="outside the classes"):
        clf.partial_fit(X[:4], np.array(["blob", "cat", "blob", "empty"]))
    with pytest.raises(ValueError, match="classes_"):
        clf.partial_fit(X, binary_y, classes=["blob", "other"])


def test_partial_fit_runs_one_epoch_per_call_and_keeps_the_optimizer(
    multiclass_data,
):
    X, y = multiclass_data
    clf = CNNClassifier(**SMALL)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    optimizer = clf.net_.optimizer_
    steps = [s["step"].item() for s in optimizer.state.values()][0]
    for _ in range(5):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 6
    assert clf.net_.optimizer_ is optimizer
    assert [s["step"].item() for s in optimizer.state.values()][0] == 6 * steps
    assert clf.score(X, y) > 0.6


def test_partial_fit_after_fit_continues_at_constant_lr(multilabel_data):
    X, Y = multilabel_data
    clf = CNNClassifier(**SMALL).fit(X, Y)  # one-cycle, ended at max_epochs
    before = clf.score(X, Y)
    clf.partial_fit(X, Y)
    clf.partial_fit(X, Y)
    assert clf.n_iter_ == SMALL["max_epochs"] + 2
    assert {group["lr"] for group in clf.net_.optimizer_.param_groups} == {clf.lr}
    assert clf.score(X, Y) >= before - 0.15
    with pytest.raises(ValueError, match="3 columns|4 columns"):
        clf.partial_fit(X, Y[:, :3])


def test_partial_fit_on_a_multi_hot_y_takes_labels_from_columns(multilabel_data):
    X, Y = multilabel_data
    clf = CNNClassifier(**SMALL).partial_fit(X, Y)
    assert clf.classes_.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="columns"):
        CNNClassifier(**SMALL).partial_fit(X, Y, classes=[0, 1])


def test_freeze_epochs_count_over_partial_fit_calls(source, multilabel_data, binary_y):
    X, _ = multilabel_data
    clf = CNNClassifier(weights=source, freeze_epochs=2, **SMALL)
    clf.partial_fit(X, binary_y, classes=["blob", "empty"])
    clf.partial_fit(X, binary_y)
    assert_same_state(backbone_state(clf), backbone_state(source))
    clf.partial_fit(X, binary_y)  # the third epoch trains the backbone too
    after = backbone_state(clf)
    assert not torch.equal(after["features.0.weight"], source_weight(source))


def source_weight(source):
    return backbone_state(source)["features.0.weight"]


def test_memory_keys_on_the_starting_weights(
    source, multilabel_data, binary_y, tmp_path
):
    X, _ = multilabel_data
    state = backbone_state(source)
    params = {"memory": str(tmp_path), "freeze_epochs": 8, **FAST}
    first = CNNClassifier(weights=state, **params).fit(X, binary_y)
    state["features.0.weight"] = state["features.0.weight"] * 0.5
    other = CNNClassifier(weights=state, **params).fit(X, binary_y)
    # A cache keyed without the weights would have served the first network.
    assert_same_state(backbone_state(other), state)
    assert np.abs(other.predict_proba(X) - first.predict_proba(X)).max() > 1e-4


def test_a_fine_tune_after_a_fitted_head_runs_one_cycle_slower_in_the_backbone(
    source, multilabel_data, binary_y
):
    X, _ = multilabel_data
    params = {**FAST, "max_epochs": 4, "lr": 1e-2}
    clf = CNNClassifier(weights=source, freeze_epochs=2, **params).fit(X, binary_y)
    history = clf.net_.history
    # The first row is the fitted head, standing for the two frozen epochs.
    assert history[0, "head_fit"] and "event_lr" not in history[0, "batches", 0]
    assert len(history) == 3 and clf.n_iter_ == 3
    # skorch records the first parameter group's rate: the backbone's, which
    # warms up from lr / 10 / 25, peaks at lr / 10 and anneals towards zero.
    lrs = np.array([b["event_lr"] for row in history[1:] for b in row["batches"]])
    assert lrs[0] == pytest.approx(1e-3 / 25)
    assert lrs.max() == pytest.approx(1e-3)
    assert lrs[-1] < 1e-5
    groups = clf.net_.optimizer_.param_groups
    assert [group["max_lr"] for group in groups] == pytest.approx([1e-3, 1e-2])


class FormerPhasedOneCycleLR:
    """The schedule of sk_mlc 0.1's ``_schedule.py`` (commit d420fb9), verbatim
    in behaviour: ``phased_one_cycle`` replaced it with torch's schedulers."""

    def __init__(self, optimizer, max_lr, phase_steps):
        self.optimizer, self.max_lr, self.phase_steps = optimizer, max_lr, phase_steps
        self._steps = 0
        self._cycle = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=phase_steps[0]
        )

    def step(self):
        self._steps += 1
        if self._steps == self.phase_steps[0]:
            self._cycle = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=self.max_lr, total_steps=self.phase_steps[1]
            )
        else:
            self._cycle.step()

    def get_last_lr(self):
        return self._cycle.get_last_lr()


@pytest.mark.parametrize("phase_steps", [(3, 5), (7, 13), (1, 4)])
def test_phased_one_cycle_gives_the_former_learning_rates(phase_steps):
    from sk_mlc.training._callbacks import phased_one_cycle

    def rates(make):
        weight = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.AdamW([weight], lr=1e-2)
        schedule = make(optimizer)
        seen = []
        for _ in range(sum(phase_steps)):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        return seen

    expected = rates(lambda opt: FormerPhasedOneCycleLR(opt, 1e-2, phase_steps))
    got = rates(lambda opt: phased_one_cycle(opt, 1e-2, phase_steps))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_auto_depth_follows_the_weights_of_the_built_in_cnn():
    # A backbone trained on many images has 4 stages on 28x28; a fit on a few
    # images would pick 3 for itself, but the weights decide.
    rng = np.random.RandomState(0)
    X = rng.rand(24, 28, 28).astype(np.float32)
    y = np.arange(24) % 2
    source = CNNClassifier(width=4, depth=4, max_epochs=1, random_state=0).fit(X, y)
    for model in (
        CNNClassifier(width=4, weights=source, max_epochs=1).fit(X[:12], y[:12]),
        CNNClassifier(width=4, max_epochs=1).fit(X[:12], y[:12]),
    ):
        convs = [m for m in model.net_.module_.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == (4 if model.weights is not None else 3)
    features = ImageFeatures(width=4, weights=source).fit(X)
    assert features.transform(X[:2]).shape == (2, 32 * 9)
