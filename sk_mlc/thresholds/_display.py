"""Score against threshold, per label: why ThresholdTunerCV chose what it chose.

scikit-learn's Display convention (as ``PrecisionRecallDisplay``): build from
a fitted tuner or from predictions, draw with ``plot(ax=...)``, keep the
artists in ``figure_``, ``ax_`` and ``lines_``. matplotlib is optional and
imported only to draw.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._checks import candidate_grid, check_candidates
from ._scores import (
    COUNT_METRICS,
    LabelMetric,
    argmax_near_default,
)


def _pyplot(what: str):
    """``matplotlib.pyplot``, or an ImportError that says how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{what} needs matplotlib, which is not installed. Install it with "
            "`pip install 'sk_mlc[plot]'` (or `pip install matplotlib`)."
        ) from exc
    return plt


class ThresholdDisplay:
    """Out-of-fold score against decision threshold, one curve per label.

    Each label's curve carries a dot at its chosen threshold, with a
    horizontal bar of plus or minus the fold-to-fold standard deviation of
    that choice when it is known; a dashed curve shows the averaged score when
    all labels share each threshold. A flat curve around its dot, or a wide
    bar, says the choice is weakly determined. Build it with
    :meth:`from_estimator` (a fitted :class:`~sk_mlc.ThresholdTunerCV`) or
    :meth:`from_predictions`, which also plot; the constructor alone does not.

    Parameters
    ----------
    thresholds : ndarray of shape (n_thresholds,)
        The candidate thresholds, ascending.
    scores : ndarray of shape (n_thresholds, n_labels)
        Each label's score at each candidate.
    best_thresholds : ndarray of shape (n_labels,)
        The threshold chosen for each label.
    threshold_std : ndarray of shape (n_labels,) or None, default=None
        Fold-to-fold standard deviation of each choice; None or NaN: not drawn.
    overall_scores : ndarray of shape (n_thresholds,) or None, default=None
        The averaged score when all labels share each candidate.
    per_label : ndarray of bool of shape (n_labels,) or None, default=None
        Which labels use their own threshold; the others' dots are hollow.
    label_names : list of str or None, default=None
        One name per label; None gives ``"label 0"``, ``"label 1"``, ...
    score_name : str, default="score"
        The metric's name, for the axis label.

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
        The per-label curves, in label order.
    markers_ : list of matplotlib artists
        The chosen-threshold dots (with their spread bars).
    overall_line_ : matplotlib Line2D or None
        The dashed averaged curve.
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.

    See Also
    --------
    sk_mlc.ThresholdTunerCV : Chooses the thresholds this display explains.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from sk_mlc import ThresholdDisplay, ThresholdTunerCV
    >>> X, Y = make_multilabel_classification(
    ...     n_samples=200, n_classes=3, random_state=0
    ... )
    >>> tuner = ThresholdTunerCV(OneVsRestClassifier(LogisticRegression()), cv=3)
    >>> display = ThresholdDisplay.from_estimator(tuner.fit(X, Y))
    >>> len(display.lines_), display.ax_.get_xlabel()
    (3, 'threshold')
    """

    def __init__(
        self,
        *,
        thresholds,
        scores,
        best_thresholds,
        threshold_std=None,
        overall_scores=None,
        per_label=None,
        label_names=None,
        score_name="score",
    ):
        self.thresholds = thresholds
        self.scores = scores
        self.best_thresholds = best_thresholds
        self.threshold_std = threshold_std
        self.overall_scores = overall_scores
        self.per_label = per_label
        self.label_names = label_names
        self.score_name = score_name

    def plot(self, ax=None, *, labels=None, overall_name="all labels"):
        """Draw the curves, the chosen thresholds and their fold spread.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.
        labels : array-like of int or None, default=None
            Indices of the labels to draw (many labels make a crowded plot);
            None draws all.
        overall_name : str, default="all labels"
            Legend entry of the averaged curve.

        Returns
        -------
        display : ThresholdDisplay
            ``self``, with ``ax_``, ``figure_``, ``lines_`` and ``markers_`` set.
        """
        plt = _pyplot("ThresholdDisplay.plot")
        if ax is None:
            _, ax = plt.subplots()
        thresholds = np.asarray(self.thresholds)
        scores = np.asarray(self.scores).reshape(len(thresholds), -1)
        n_labels = scores.shape[1]
        chosen = np.asarray(self.best_thresholds, dtype=float)
        spread = (
            np.full(n_labels, np.nan)
            if self.threshold_std is None
            else np.asarray(self.threshold_std, dtype=float)
        )
        own = np.ones(n_labels, bool) if self.per_label is None else self.per_label
        names = self.label_names
        if names is None:
            names = [f"label {j}" for j in range(n_labels)]
        drawn = range(n_labels) if labels is None else np.asarray(labels).tolist()

        self.lines_, self.markers_ = [], []
        for j in drawn:
            (line,) = ax.plot(thresholds, scores[:, j], label=str(names[j]))
            color = line.get_color()
            at = np.argmin(np.abs(thresholds - chosen[j]))
            marker = ax.errorbar(
                chosen[j],
                scores[at, j],
                xerr=None if np.isnan(spread[j]) else spread[j],
                fmt="o",
                color=color,
                markerfacecolor=color if own[j] else "white",
                capsize=3,
            )
            self.lines_.append(line)
            self.markers_.append(marker)
        self.overall_line_ = None
        if self.overall_scores is not None:
            (self.overall_line_,) = ax.plot(
                thresholds, self.overall_scores, "k--", lw=2, label=overall_name
            )
        ax.set_xlabel("threshold")
        ax.set_ylabel(self.score_name)
        ax.set_title(
            "Chosen thresholds (filled: own, hollow: global), bars: fold spread",
            fontsize="medium",
        )
        ax.legend(fontsize="small", ncol=2 if len(drawn) > 6 else 1)
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, labels=None, label_names=None, ax=None):
        """Plot what a fitted :class:`~sk_mlc.ThresholdTunerCV` chose, and why.

        Parameters
        ----------
        estimator : ThresholdTunerCV
            A fitted tuner; its out-of-fold ``scores_``, ``best_thresholds_``,
            ``threshold_std_``, ``per_label_`` and ``scores_global_`` are drawn.
        labels : array-like of int or None, default=None
            Indices of the labels to draw; None draws all.
        label_names : list of str or None, default=None
            One name per label (e.g. the class names); None: ``"label j"``.
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.

        Returns
        -------
        display : ThresholdDisplay
        """
        from ._tuner import ThresholdTunerCV

        _pyplot("ThresholdDisplay.from_estimator")
        if not isinstance(estimator, ThresholdTunerCV):
            raise TypeError(
                "ThresholdDisplay.from_estimator expects a fitted ThresholdTunerCV; "
                f"got {type(estimator).__name__}. For another classifier, use "
                "ThresholdDisplay.from_predictions(y_true, y_proba)."
            )
        check_is_fitted(estimator, "best_thresholds_")
        scoring = estimator.scoring
        name = scoring if isinstance(scoring, str) else getattr(scoring, "__name__", "")
        display = cls(
            thresholds=estimator.thresholds_,
            scores=estimator.scores_,
            best_thresholds=estimator.best_thresholds_,
            threshold_std=estimator.threshold_std_,
            overall_scores=estimator.scores_global_,
            per_label=estimator.per_label_,
            label_names=label_names,
            score_name=f"out-of-fold {name}".rstrip(),
        )
        return display.plot(
            ax=ax, labels=labels, overall_name=f"all labels ({estimator.average})"
        )

    @classmethod
    def from_predictions(
        cls,
        y_true,
        y_proba,
        *,
        scoring="f1",
        beta=1.0,
        average="macro",
        thresholds=100,
        sample_weight=None,
        labels=None,
        label_names=None,
        ax=None,
    ):
        """Plot each label's score against threshold from given probabilities.

        The chosen threshold of a label is the candidate with its best score
        (ties: the one nearest 0.5), as ``ThresholdTunerCV(per_label=True)``
        would choose on these predictions; there are no folds, so no spread.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,) or (n_samples, n_labels)
            0/1 labels (a 1-D ``y_true`` is one label).
        y_proba : array-like of shape (n_samples,), (n_samples, 2) or \
                (n_samples, n_labels)
            Positive-class probabilities (for one label, the second column of
            an ``(n_samples, 2)`` ``predict_proba``).
        scoring : str or callable, default="f1"
            A metric name of :class:`~sk_mlc.ThresholdTunerCV`'s ``scoring``,
            or a callable ``metric(y_true, y_pred)``.
        beta : float, default=1.0
            The ``beta`` of ``scoring="fbeta"``.
        average : {"macro", "micro", "samples"}, default="macro"
            How the dashed all-labels curve averages the labels.
        thresholds : int or array-like, default=100
            The candidates, as in ``ThresholdTunerCV``: an int ``n`` gives
            ``n`` values from the lowest to the highest of ``y_proba``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the scores.
        labels : array-like of int or None, default=None
            Indices of the labels to draw; None draws all.
        label_names : list of str or None, default=None
            One name per label; None: ``"label j"``.
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.

        Returns
        -------
        display : ThresholdDisplay
        """
        _pyplot("ThresholdDisplay.from_predictions")
        Y = np.asarray(y_true)
        Y = Y.reshape(len(Y), -1)
        P = np.asarray(y_proba, dtype=float)
        if P.ndim == 2 and P.shape[1] == 2 and Y.shape[1] == 1:
            P = P[:, 1]
        P = P.reshape(len(P), -1)
        if P.shape != Y.shape or not np.isin(Y, (0, 1)).all():
            raise ValueError(
                "ThresholdDisplay.from_predictions expects 0/1 y_true and one "
                "probability per label: y_proba of shape "
                f"{(len(Y), Y.shape[1])}; got y_true of shape {np.shape(y_true)} "
                f"and y_proba of shape {np.shape(y_proba)}."
            )
        if not callable(scoring) and scoring not in COUNT_METRICS:
            raise ValueError(
                f"ThresholdDisplay.from_predictions: scoring must be one of "
                f"{sorted(COUNT_METRICS)} or a callable; got {scoring!r}."
            )
        grid = candidate_grid(check_candidates(thresholds), P)
        weights = (
            np.ones(len(Y))
            if sample_weight is None
            else np.asarray(sample_weight, dtype=float)
        )
        metric = LabelMetric(scoring, beta, average)
        per_label, overall = metric.table(Y.astype(bool), P, weights, grid)
        name = scoring if isinstance(scoring, str) else getattr(scoring, "__name__", "")
        display = cls(
            thresholds=grid,
            scores=per_label,
            best_thresholds=grid[argmax_near_default(per_label, grid)],
            overall_scores=overall if Y.shape[1] > 1 else None,
            label_names=label_names,
            score_name=name,
        )
        return display.plot(
            ax=ax, labels=labels, overall_name=f"all labels ({average})"
        )
