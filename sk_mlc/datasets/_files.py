"""List labelled image files: a folder per class, or a CSV of tags (Planet layout).

Both loaders return paths and labels only; pixels are decoded later by
:func:`~sk_mlc.read_image`, :class:`~sk_mlc.LazyImages` or
:class:`~sk_mlc.ImageLoader`. ``on_error`` decides when a bad file is
found:

* ``"raise"`` (default) opens no image, so listing 100k files is instant. Empty
  files are caught here (a ``stat``); corrupt or truncated ones raise later,
  when decoded, with an error naming the file.
* ``"skip"`` decodes every file once now and drops those that fail, with a
  ``UserWarning`` that names them. This costs one pass over the data.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.preprocessing import MultiLabelBinarizer

from .._decode import _decode_error

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
# Folders may also hold the rarer formats Pillow reads.
_FOLDER_EXTENSIONS = (*IMAGE_EXTENSIONS, ".gif", ".ppm", ".pgm", ".pbm", ".pnm")
_ON_ERROR = ("raise", "skip")
_MAX_LISTED = 10


def _check_on_error(on_error) -> str:
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    return on_error


def _normalise_extensions(extensions) -> frozenset[str]:
    if isinstance(extensions, str):
        extensions = [extensions]
    normalised = frozenset(
        ("" if ext.startswith(".") else ".") + ext.lower() for ext in extensions
    )
    if not normalised:
        raise ValueError("extensions must name at least one file extension.")
    return normalised


def _listing(paths: list[Path]) -> str:
    shown = ", ".join(f"'{path}'" for path in paths[:_MAX_LISTED])
    more = len(paths) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _screen(paths: list[Path], on_error: str) -> np.ndarray:
    """Boolean mask of the paths to keep, applying the ``on_error`` policy."""
    if on_error == "raise":
        empty = [path for path in paths if path.stat().st_size == 0]
        if empty:
            raise ValueError(
                f"{len(empty)} image file(s) are empty: {_listing(empty)}. Remove "
                "them, or pass on_error='skip' to drop unreadable files."
            )
        return np.ones(len(paths), dtype=bool)
    reasons = [_decode_error(path) for path in paths]
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


def load_image_folder(root, *, extensions=None, on_error="raise"):
    """List a single-label image dataset stored as one sub-folder per class.

    ``root/cat/1.jpg`` and ``root/dog/a/2.png`` give classes ``["cat", "dog"]``.
    Class folders are searched recursively; names starting with ``"."`` are
    ignored (hidden folders, and macOS ``._x.jpg`` files that are not images).

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

    Returns
    -------
    paths : list of pathlib.Path
        Sorted by class, then by path within the class.
    y : ndarray of shape (n_images,), dtype int64
        Index of each image's class in ``class_names``.
    class_names : list of str
        Sorted names of the class folders; a class stays listed even when
        ``on_error="skip"`` drops all its images.

    Raises
    ------
    ValueError
        If ``root`` is not a folder, holds no class folder, or a class folder
        holds no image.

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
    ...     paths, y, class_names = load_image_folder(root)
    >>> [path.name for path in paths], y.tolist(), class_names
    (['1.png', '2.png', '1.png'], [0, 0, 1], ['cat', 'dog'])
    """
    on_error = _check_on_error(on_error)
    keep = _normalise_extensions(
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
    mask = _screen(paths, on_error)
    paths = [path for path, kept in zip(paths, mask, strict=True) if kept]
    return paths, np.asarray(y, dtype=np.int64)[mask], [d.name for d in class_dirs]


def _find_image(
    image_dir: Path, image_id: str, extensions: tuple[str, ...]
) -> Path | None:
    if Path(image_id).suffix.lower() in IMAGE_EXTENSIONS:
        candidate = image_dir / image_id
        if candidate.is_file():
            return candidate
    for ext in extensions:
        # Case-sensitive file systems: try "x.jpg" and "x.JPG".
        for variant in (ext, ext.upper()):
            candidate = image_dir / (image_id + variant)
            if candidate.is_file():
                return candidate
    return None


def load_image_csv(
    csv_path,
    image_dir,
    *,
    id_column="image_name",
    tags_column="tags",
    extension=None,
    on_error="raise",
):
    """List a multi-label image dataset described by a CSV of tags.

    This is the layout of Kaggle's *Planet: Understanding the Amazon from
    Space*: a CSV with an image id column and a column of space-separated tags,
    and a folder of images named after the ids.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The CSV file, with a header row.
    image_dir : str or os.PathLike
        The folder holding the images.
    id_column : str, default="image_name"
        Column of image ids: a file name, with or without its extension.
    tags_column : str, default="tags"
        Column of space-separated tags; an empty cell means no tag.
    extension : str, default=None
        Extension of ids that have none (``".jpg"``). ``None`` tries .jpg,
        .jpeg, .png, .tif, .tiff, .bmp and .webp, in this order.
    on_error : {"raise", "skip"}, default="raise"
        ``"raise"``: a missing or empty file raises here, a corrupt one when
        decoded. ``"skip"``: missing and unreadable files are dropped with a
        ``UserWarning`` naming them (every file is decoded once now).

    Returns
    -------
    paths : list of pathlib.Path
        In the order of the CSV rows.
    Y : ndarray of shape (n_images, n_labels), dtype int64
        Multi-hot tags, one column per entry of ``label_names``.
    label_names : list of str
        Sorted tags seen in the CSV (dropped rows included).

    Raises
    ------
    ValueError
        If a column is missing, an id is empty, or (``on_error="raise"``) an
        image file is missing or empty.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from sk_mlc.datasets import load_image_csv
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for name in ["a.jpg", "b.jpg", "c.png"]:
    ...         Image.new("RGB", (4, 4)).save(Path(root) / name)
    ...     _ = (Path(root) / "labels.csv").write_text(
    ...         "image_name,tags\\na,clear road\\nb,haze\\nc.png,\\n"
    ...     )
    ...     paths, Y, label_names = load_image_csv(Path(root) / "labels.csv", root)
    >>> [path.name for path in paths], label_names
    (['a.jpg', 'b.jpg', 'c.png'], ['clear', 'haze', 'road'])
    >>> Y.tolist()
    [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    """
    on_error = _check_on_error(on_error)
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise ValueError(f"Image folder {str(image_dir)!r} does not exist.")
    extensions = IMAGE_EXTENSIONS
    if extension is not None:
        extensions = tuple(_normalise_extensions(extension))
    # utf-8-sig: spreadsheets often prepend a BOM, which would rename the
    # first column to "\ufeffimage_name".
    with open(csv_path, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        columns = reader.fieldnames or []
        missing = [col for col in (id_column, tags_column) if col not in columns]
        if missing:
            raise ValueError(
                f"{os.fspath(csv_path)!r} lacks column(s) {missing}; found columns "
                f"{columns}. Pass id_column= and tags_column= to name them."
            )
        rows = [(row[id_column] or "", row[tags_column] or "") for row in reader]
    ids = [image_id.strip() for image_id, _ in rows]
    tags = [cell.split() for _, cell in rows]
    for line, image_id in enumerate(ids, start=2):
        if not image_id:
            raise ValueError(f"{os.fspath(csv_path)!r} line {line}: empty image id.")

    found = [_find_image(image_dir, image_id, extensions) for image_id in ids]
    absent = [
        image_id for image_id, path in zip(ids, found, strict=True) if path is None
    ]
    if absent and on_error == "raise":
        listed = ", ".join(repr(image_id) for image_id in absent[:_MAX_LISTED])
        raise ValueError(
            f"No image file for {len(absent)} id(s) in {str(image_dir)!r} (tried "
            f"extensions {list(extensions)}): {listed}. Pass extension= or "
            "on_error='skip'."
        )
    if absent:
        warnings.warn(
            f"Skipped {len(absent)} id(s) with no image file in "
            f"{str(image_dir)!r}: {absent}",
            UserWarning,
            stacklevel=2,
        )
    rows_found = [row for row, path in enumerate(found) if path is not None]
    paths = [found[row] for row in rows_found]
    mask = _screen(paths, on_error)
    kept = [row for row, ok in zip(rows_found, mask, strict=True) if ok]

    binarizer = MultiLabelBinarizer().fit(tags)
    Y = binarizer.transform([tags[row] for row in kept]).astype(np.int64)
    return [found[row] for row in kept], Y, [str(c) for c in binarizer.classes_]
