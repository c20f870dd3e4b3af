"""``ImageFeatures``: a backbone's features as a scikit-learn transformer."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._base import SHARED_CONSTRAINTS, ImageInputMixin, shared_docs
from ._compat import Interval, StrOptions, fit_context
from .training import (
    autocast,
    build_extractor,
    forward_batches,
    resolve_batch_size,
    resolve_device,
    resolve_precision,
)


@shared_docs
class ImageFeatures(
    ImageInputMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """The features a backbone computes from images, as a 2-D array.

    The most common transfer-learning recipe in scikit-learn: a pretrained
    backbone turns each image into a feature vector, and a linear model (or
    any estimator) learns from those::

        make_pipeline(ImageFeatures(module=backbone, weights=path),
                      LogisticRegression())

    ``fit`` builds the backbone exactly as :class:`CNNClassifier` builds its
    own (the same ``module``, ``weights`` and ``normalize`` rules, the same
    reading of ``X``) and learns nothing else: the input statistics when
    ``normalize`` says to learn them. ``transform`` runs the backbone over
    ``X`` batch by batch, in eval mode, without gradients, on ``device`` and
    in ``precision``, and returns one row of float32 features per image:
    what a classifier's output layer would read (pooled feature maps, or
    the backbone's own vector). With the built-in CNN and no ``weights`` the
    features come from random weights (seeded by ``random_state``): a
    baseline, not a recipe.

    Parameters
    ----------
    %(module)s

    %(width)s

    %(depth)s

    %(residual)s

    %(weights)s

    %(normalize)s

    pooling : {"avg", "max"}, default="avg"
        How feature maps ``(n, F, h, w)`` become one vector ``(n, F)``:
        global average or global max pooling. A backbone that returns
        ``(n, F)`` (the built-in CNN: its pooled 4x4 grid, flattened) is not
        pooled again.

    %(image_shape)s

    %(layout)s

    %(image_size)s

    %(image_mode)s

    batch_size : int or "auto", default="auto"
        Images per forward pass in ``transform`` (and in the statistics'
        pass of ``fit``); "auto" is 128 (1,024 on a CUDA device).

    %(device)s

    %(precision)s

    %(num_workers)s

    random_state : int, RandomState instance or None, default=None
        Seeds the backbone's initial weights (the built-in CNN, or a
        callable ``module``), which ``weights`` then replace.

    Attributes
    ----------
    module_ : torch.nn.Sequential
        The extractor: ``Standardize``, the backbone, and the pooling of
        feature maps when it returns them.

    %(input_shape_)s

    %(n_features_in_)s

    %(feature_names_in_)s

    %(device_)s

    %(precision_)s

    See Also
    --------
    CNNClassifier : The same backbone with a head, trained end to end or as a
        linear probe (``freeze_epochs >= max_epochs``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sk_mlc import ImageFeatures
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 8, 8).astype(np.float32)
    >>> y = (X[:, :, :4].mean((1, 2)) > X[:, :, 4:].mean((1, 2))).astype(int)
    >>> features = ImageFeatures(random_state=0).fit(X)
    >>> features.transform(X[:3]).shape
    (3, 512)
    >>> features.get_feature_names_out()[:2]
    array(['imagefeatures0', 'imagefeatures1'], dtype=object)
    >>> model = make_pipeline(ImageFeatures(random_state=0), LogisticRegression())
    >>> model.fit(X, y).predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **{
            name: SHARED_CONSTRAINTS[name]
            for name in (
                "module",
                "width",
                "depth",
                "residual",
                "weights",
                "normalize",
                "image_shape",
                "layout",
                "image_size",
                "image_mode",
                "device",
                "precision",
                "num_workers",
            )
        },
        "pooling": [StrOptions({"avg", "max"})],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        module=None,
        *,
        width=16,
        depth="auto",
        residual=False,
        weights=None,
        normalize="auto",
        pooling="avg",
        image_shape=None,
        layout="auto",
        image_size=None,
        image_mode=None,
        batch_size="auto",
        device="auto",
        precision="auto",
        num_workers=0,
        random_state=None,
    ):
        self.module = module
        self.width = width
        self.depth = depth
        self.residual = residual
        self.weights = weights
        self.normalize = normalize
        self.pooling = pooling
        self.image_shape = image_shape
        self.layout = layout
        self.image_size = image_size
        self.image_mode = image_mode
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.random_state = random_state

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the backbone for images like ``X`` and learn their statistics.

        Parameters
        ----------
        %(X_fit)s
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : ImageFeatures
            The fitted transformer.
        """
        name = type(self).__name__
        images, _, inputs = self._read_images(X, reset=True)
        device = resolve_device(self.device)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        module, n_features = build_extractor(
            self,
            images.image_shape,
            seed=int(seed),
            device=device,
            images=images,
            batch_size=resolve_batch_size(self.batch_size, device=device),
        )
        self._input_spec_ = inputs
        self.input_shape_ = tuple(images.image_shape)
        self.device_ = device
        self.precision_ = resolve_precision(self.precision, device, name)
        self.module_ = module
        self._n_features_out = n_features
        return self

    def transform(self, X):
        """The backbone's features of ``X``, one row per image.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        features : ndarray of shape (n_samples, n_features), dtype float32
            The pooled features; their names are ``get_feature_names_out()``.
        """
        check_is_fitted(self)
        images, _, _ = self._read_images(X, reset=False)
        module = self.module_
        return forward_batches(
            module,
            images,
            lambda batch: module(batch).float(),
            device=self.device_,
            autocast=autocast(self.precision_, self.device_),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
