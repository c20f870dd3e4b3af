"""List a multi-label image dataset described by a CSV of tags (Planet layout).

The CSV is data from elsewhere, so it is read defensively: it must be UTF-8
text, each row's id must name a file inside ``image_dir`` (no absolute path,
no ``..``), and each image must have one row. ``on_error`` (see ``_files``)
decides whether a bad row raises or is skipped with a warning naming it.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import warnings
from pathlib import Path, PurePath

import numpy as np
from sklearn.preprocessing import MultiLabelBinarizer

from ._files import (
    IMAGE_EXTENSIONS,
    MAX_LISTED,
    check_on_error,
    file_dataset,
    normalise_extensions,
    screen,
)


def _read_rows(
    csv_path, id_column: str, tags_column: str
) -> list[tuple[int, str, str]]:
    """``(line, image_id, tags)`` of each data row of the CSV."""
    name = os.fspath(csv_path)
    raw = Path(csv_path).read_bytes()
    # Spreadsheets often prepend a BOM, which would rename the first column to
    # "\ufeffimage_name". Stripped by hand so that error offsets count from
    # the first character.
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"Tags CSV {name!r} is not UTF-8 text: line {line}, byte "
            f"0x{raw[exc.start]:02x} ({exc.reason}). Save it as UTF-8 (CSV UTF-8 "
            "in a spreadsheet)."
        ) from None
    if "\0" in text:
        # Valid UTF-8 still, but no CSV holds NUL: UTF-16 saved without a
        # byte-order mark decodes this way, and so does many a binary file.
        line = text.count("\n", 0, text.index("\0")) + 1
        raise ValueError(
            f"Tags CSV {name!r} holds a NUL character on line {line}: it is not a "
            "text file, or it is UTF-16. Save it as UTF-8."
        )
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        columns = next(reader, [])
        missing = [col for col in (id_column, tags_column) if col not in columns]
        if missing:
            raise ValueError(
                f"Tags CSV {name!r} lacks column(s) {missing}; found columns "
                f"{columns}. Pass id_column= and tags_column= to name them."
            )
        at_id, at_tags = columns.index(id_column), columns.index(tags_column)
        rows = []
        for record in reader:
            if not record:  # a blank line
                continue
            record += [""] * (len(columns) - len(record))
            rows.append((reader.line_num, record[at_id].strip(), record[at_tags]))
        return rows
    except csv.Error as exc:
        # reader.line_num counts the lines read, the failing one included.
        raise ValueError(
            f"Tags CSV {name!r} cannot be parsed as CSV at line {reader.line_num}: "
            f"{exc}."
        ) from None


def _id_problem(image_id: str) -> str | None:
    """Why ``image_id`` cannot name a file inside the image folder, if it cannot."""
    # The id's text is checked, not its resolved path: links that the folder's
    # owner put inside image_dir (into a shared image store, say) keep working,
    # while nothing the CSV writes can reach outside the folder.
    if not image_id:
        return "empty id"
    path = PurePath(image_id)
    if path.anchor:
        return "absolute path"
    if ".." in path.parts:
        return "'..' in the path"
    return None


def _some(described: list[str], sep: str = ", ") -> str:
    """The first few of ``described``, and how many more there are."""
    more = len(described) - MAX_LISTED
    return sep.join(described[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def _refuse(on_error: str, problem: str, fix: str, skipped: str) -> None:
    """Raise ``problem`` with its ``fix``, or warn that those rows were skipped."""
    if on_error == "raise":
        raise ValueError(f"{problem}. {fix}.")
    # Warned from load_image_csv's caller's line.
    warnings.warn(f"{problem}; {skipped}.", UserWarning, stacklevel=3)


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
    return_X_y=False,
):
    """Load a multi-label image dataset described by a CSV of tags.

    This is the layout of Kaggle's *Planet: Understanding the Amazon from
    Space*: a CSV with an image id column and a column of space-separated tags,
    and a folder of images named after the ids.

    Only the files are listed: ``filenames`` and the multi-hot ``target`` are
    the ``X`` and ``Y`` that :meth:`CNNClassifier.fit
    <sk_mlc.CNNClassifier.fit>` takes as they are, decoding the images batch by
    batch.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The CSV file, UTF-8 (with or without a byte-order mark), with a header
        row.
    image_dir : str or os.PathLike
        The folder holding the images.
    id_column : str, default="image_name"
        Column of image ids: a file name relative to ``image_dir``, with or
        without its extension. Absolute paths and ids with a ``..`` component
        are refused, so that the CSV cannot reach outside ``image_dir``.
    tags_column : str, default="tags"
        Column of space-separated tags; an empty cell means no tag.
    extension : str, default=None
        Extension of ids that have none (``".jpg"``). ``None`` tries .jpg,
        .jpeg, .png, .tif, .tiff, .bmp and .webp, in this order.
    on_error : {"raise", "skip"}, default="raise"
        What to do with a bad row: an empty id, an id outside ``image_dir``,
        an image listed on a second row, or a missing, empty or corrupt file.
        ``"raise"``: raise here (a corrupt file raises when decoded).
        ``"skip"``: drop the row (keep the first row of an image listed twice)
        with a ``UserWarning`` naming it; every file is decoded once now.
    return_X_y : bool, default=False
        Return ``(filenames, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        filenames : ndarray of shape (n_images,), dtype object
            The :class:`pathlib.Path` of each image, in the order of the CSV
            rows.
        target : ndarray of shape (n_images, n_labels), dtype int64
            Multi-hot tags, one column per entry of ``target_names``.
        target_names : list of str
            Sorted tags seen in the CSV (skipped rows included).
        DESCR : str
            The CSV and folder, and how many images and tags they hold.

    (filenames, target) : tuple if ``return_X_y`` is True
        The two arrays above.

    Raises
    ------
    ValueError
        If the CSV is not UTF-8 text or lacks a column; or, with
        ``on_error="raise"``, if a row is bad (see ``on_error``). The message
        names the CSV, the lines and the ids.

    See Also
    --------
    load_image_folder : Single-label images, one sub-folder per class.

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
    ...     data = load_image_csv(Path(root) / "labels.csv", root)
    >>> [path.name for path in data.filenames], data.target_names
    (['a.jpg', 'b.jpg', 'c.png'], ['clear', 'haze', 'road'])
    >>> data.target.tolist()
    [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    """
    on_error = check_on_error(on_error)
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise ValueError(f"Image folder {str(image_dir)!r} does not exist.")
    extensions = IMAGE_EXTENSIONS
    if extension is not None:
        extensions = tuple(normalise_extensions(extension))
    name = os.fspath(csv_path)
    rows = _read_rows(csv_path, id_column, tags_column)
    ids = [image_id for _, image_id, _ in rows]
    tags = [cell.split() for _, _, cell in rows]

    # Each row is named by its line in the file and its id.
    where = [f"line {line} {image_id!r}" for line, image_id, _ in rows]
    outside = [
        (row, why) for row, image_id in enumerate(ids) if (why := _id_problem(image_id))
    ]
    if outside:
        _refuse(
            on_error,
            f"Tags CSV {name!r} has {len(outside)} row(s) whose id does not name a "
            f"file inside the image folder {str(image_dir)!r}: "
            + _some([f"{where[row]} ({why})" for row, why in outside]),
            "Ids are file names relative to image_dir. Fix these rows, or pass "
            "on_error='skip' to drop them",
            "these rows were skipped",
        )
    bad = {row for row, _ in outside}
    found = [
        None if row in bad else _find_image(image_dir, image_id, extensions)
        for row, image_id in enumerate(ids)
    ]
    absent = [row for row, path in enumerate(found) if path is None and row not in bad]
    if absent:
        _refuse(
            on_error,
            f"Tags CSV {name!r} has {len(absent)} id(s) with no image file in "
            f"{str(image_dir)!r} (tried extensions {list(extensions)}): "
            + _some([where[row] for row in absent]),
            "Pass extension=, or on_error='skip' to drop these rows",
            "these rows were skipped",
        )

    rows_of: dict[Path, list[int]] = {}
    for row, path in enumerate(found):
        if path is not None:
            rows_of.setdefault(path, []).append(row)
    repeated = [group for group in rows_of.values() if len(group) > 1]
    if repeated:
        _refuse(
            on_error,
            f"Tags CSV {name!r} lists {len(repeated)} image(s) on more than one "
            "row: "
            + _some(
                [", ".join(where[row] for row in group) for group in repeated], "; "
            ),
            "Give each image one row, with all its tags, or pass on_error='skip' "
            "to keep the first row of each",
            "only the first row of each was kept",
        )
    first = sorted(group[0] for group in rows_of.values())
    mask = screen([found[row] for row in first], on_error)
    kept = [row for row, ok in zip(first, mask, strict=True) if ok]

    binarizer = MultiLabelBinarizer().fit(tags)
    target = binarizer.transform([tags[row] for row in kept]).astype(np.int64)
    target_names = [str(c) for c in binarizer.classes_]
    descr = (
        f"Tags CSV {name!r}, images in {str(image_dir)!r}: {len(kept)} images (of "
        f"{len(rows)} rows), {len(target_names)} tags (multi-label: target[i, k] "
        "is 1 when image i has tag target_names[k])."
    )
    paths = [found[row] for row in kept]
    return file_dataset(paths, target, target_names, descr, return_X_y)
