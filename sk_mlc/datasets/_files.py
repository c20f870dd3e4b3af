"""List labelled image files: a folder per class here, a CSV of tags in ``_tags_csv``.

Both loaders return file names and targets in a :class:`~sklearn.utils.Bunch`,
as scikit-learn's ``load_files`` does; the pixels are decoded later, by
:class:`~sk_mlc.CNNClassifier` itself, :func:`~sk_mlc.read_image`,
:class:`~sk_mlc.LazyImages` or :class:`~sk_mlc.ImageLoader`. ``on_error``
decides what happens to a bad file (or, in a CSV, a bad row):

* ``"raise"`` (default) opens no image, so listing 100k files is instant. Empty
  files are caught here (a ``stat``); corrupt or truncated ones raise later,
  when decoded, with an error naming the file.
* ``"skip"`` decodes every file once now and drops those that fail, with a
  ``UserWarning`` that names them. This costs one pass over the data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..data import decode_error

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
# Folders may also hold the rarer formats Pillow reads.
_FOLDER_EXTENSIONS = (*IMAGE_EXTENSIONS, ".gif", ".ppm", ".pgm", ".pbm", ".pnm")
_ON_ERROR = ("raise", "skip")
MAX_LISTED = 10


def check_on_error(on_error) -> str:
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    return on_error


def normalise_extensions(extensions) -> frozenset[str]:
    if isinstance(extensions, str):
        extensions = [extensions]
    normalised = frozenset(
        ("" if ext.startswith(".") else ".") + ext.lower() for ext in extensions
    )
    if not normalised:
        raise ValueError("extensions must name at least one file extension.")
    return normalised


def _listing(items: list) -> str:
    shown = ", ".join(f"'{item}'" for item in items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def screen(paths: list[Path], on_error: str) -> np.ndarray:
    """Boolean mask of the paths to keep, applying the ``on_error`` policy."""
    if on_error == "raise":
        empty = [path for path in paths if path.stat().st_size == 0]
        if empty:
            raise ValueError(
                f"{len(empty)} image file(s) are empty: {_listing(empty)}. Remove "
                "them, or pass on_error='skip' to drop unreadable files."
            )
        return np.ones(len(paths), dtype=bool)
    reasons = [decode_error(path) for path in paths]
    bad = [
        f"{path} ({why})"
        for path, why in zip(paths, reasons, strict=True)
        if why is not None
    ]
    if bad:
        warnings.warn(
            f"Skipped {len(bad)} unreadable image file(s): " + "; ".join(bad),
            UserWarning,
            stacklevel=3,
        )
    return np.array([why is None for why in reasons], dtype=bool)


def file_dataset(
    paths: list[Path],
    target: np.ndarray,
    target_names: list[str],
    descr: str,
    return_X_y: bool,
):
    """The loaders' result: a Bunch, or ``(filenames, target)``."""
    # An array, not a list: an index array (a CV split, a boolean mask) then
    # selects from filenames exactly as from target.
    filenames = np.empty(len(paths), dtype=object)
    filenames[:] = paths
    if return_X_y:
        return filenames, target
    return Bunch(
        filenames=filenames, target=target, target_names=target_names, DESCR=descr
    )


def load_image_folder(root, *, extensions=None, on_error="raise", return_X_y=False):
    """Load a single-label image dataset stored as one sub-folder per class.

    ``root/cat/1.jpg`` and ``root/dog/a/2.png`` give classes ``["cat", "dog"]``.
    Class folders are searched recursively; names starting with ``"."`` are
    ignored (hidden folders, and macOS ``._x.jpg`` files that are not images).

    Only the files are listed, as scikit-learn's ``load_files`` does:
    ``filenames`` and ``target`` are the ``X`` and ``y`` that
    :meth:`CNNClassifier.fit <sk_mlc.CNNClassifier.fit>` takes as they are,
    decoding the images batch by batch.

    Parameters
    ----------
    root : str or os.PathLike
        The folder holding one sub-folder per class.
    extensions : sequence of str, default=None
        File extensions to keep, case-insensitive (``"png"`` or ``".png"``).
        ``None`` keeps the common formats Pillow reads (jpg, jpeg, png, tif,
        tiff, bmp, webp, gif, ppm, pgm, pbm, pnm).
    on_error : {"raise", "skip"}, default="raise"
        ``"raise"`` opens no image (empty files raise here, corrupt ones when
        decoded); ``"skip"`` decodes every file now and drops unreadable ones
        with a ``UserWarning`` naming them. See :mod:`sk_mlc.datasets`.
    return_X_y : bool, default=False
        Return ``(filenames, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        filenames : ndarray of shape (n_images,), dtype object
            The :class:`pathlib.Path` of each image, sorted by class, then by
            path within the class.
        target : ndarray of shape (n_images,), dtype int64
            Index of each image's class in ``target_names``.
        target_names : list of str
            Sorted names of the class folders; a class stays listed even when
            ``on_error="skip"`` drops all its images.
        DESCR : str
            The folder, and how many images and classes it holds.

    (filenames, target) : tuple if ``return_X_y`` is True
        The two arrays above.

    Raises
    ------
    ValueError
        If ``root`` is not a folder, holds no class folder, or a class folder
        holds no image.

    See Also
    --------
    load_image_csv : Multi-label images listed by a CSV of tags.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from sk_mlc.datasets import load_image_folder
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for name in ["cat/1.png", "cat/2.png", "dog/1.png"]:
    ...         (Path(root) / name).parent.mkdir(exist_ok=True)
    ...         Image.new("RGB", (4, 4)).save(Path(root) / name)
    ...     data = load_image_folder(root)
    ...     X, y = load_image_folder(root, return_X_y=True)
    >>> [path.name for path in data.filenames], data.target.tolist()
    (['1.png', '2.png', '1.png'], [0, 0, 1])
    >>> data.target_names
    ['cat', 'dog']
    >>> X.shape, y.tolist()
    ((3,), [0, 0, 1])
    """
    on_error = check_on_error(on_error)
    keep = normalise_extensions(
        _FOLDER_EXTENSIONS if extensions is None else extensions
    )
    root = Path(root)
    if not root.is_dir():
        raise ValueError(
            f"Image folder {str(root)!r} does not exist or is not a folder."
        )
    class_dirs = sorted(
        path
        for path in root.iterdir()
        if path.is_dir() and not path.name.startswith(".")
    )
    if not class_dirs:
        raise ValueError(
            f"Image folder {str(root)!r} holds no class sub-folder; expected one "
            "sub-folder per class, e.g. root/cat/1.jpg."
        )
    paths, y, empty = [], [], []
    for label, class_dir in enumerate(class_dirs):
        found = sorted(
            path
            for path in class_dir.rglob("*")
            if path.suffix.lower() in keep
            and path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(root).parts)
        )
        if not found:
            empty.append(class_dir.name)
        paths.extend(found)
        y.extend([label] * len(found))
    if empty:
        raise ValueError(
            f"Class folder(s) {empty} in {str(root)!r} hold no image with an "
            f"extension in {sorted(keep)}."
        )
    mask = screen(paths, on_error)
    paths = [path for path, kept in zip(paths, mask, strict=True) if kept]
    target_names = [d.name for d in class_dirs]
    descr = (
        f"Image folder {str(root)!r}: {len(paths)} images in "
        f"{len(target_names)} classes, one sub-folder per class (single-label)."
    )
    target = np.asarray(y, dtype=np.int64)[mask]
    return file_dataset(paths, target, target_names, descr, return_X_y)
