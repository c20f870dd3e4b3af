"""One file that holds tensors and a JSON document, sealed by a checksum.

The container is a plain `safetensors <https://huggingface.co/docs/safetensors>`_
file: an 8-byte header length, a JSON header, then the raw tensor bytes. Its
string metadata holds

* ``format``: what the file is (``"sk_mlc.model"``, ``"sk_mlc.network"``),
* ``format_version``: how to read it (:data:`FORMAT_VERSION`),
* ``json``: the document (see ``io/_save.py`` and ``io/_codec.py``),
* ``sha256``: a SHA-256 digest of the three above and of every tensor (name,
  dtype, shape and bytes).

Reading parses the header with :mod:`json` and the tensors with safetensors,
both of which only ever build data. The checksum catches truncation, bit rot
and careless edits; it is not a signature (anyone can recompute it), so
everything read is validated as if it came from a stranger.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .exceptions import SealedFileError

FORMAT_VERSION = 1
# safetensors' own bound on the header: a larger length field is corrupt.
_MAX_HEADER = 100_000_000


def write_sealed(path, kind: str, document: dict, tensors: dict) -> None:
    """Write ``document`` and ``tensors`` to ``path``, atomically.

    The file appears complete or not at all: it is written next to ``path``
    under a temporary name, then renamed, so that a reader (another process
    sharing a cache folder) never sees half of it.
    """
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    text = json.dumps(document, allow_nan=True, separators=(",", ":"))
    metadata = {"format": kind, "format_version": str(FORMAT_VERSION), "json": text}
    metadata["sha256"] = checksum(metadata, tensors)
    data = save_tensors(tensors, metadata=metadata)
    path = Path(path)
    # Not mkstemp, whose 0600 file would be unreadable to the other users of a
    # shared cache folder: a fresh name, opened with the umask's permissions.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    try:
        with open(temporary, "xb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_sealed(path, kind: str, who: str) -> tuple[dict, dict, str]:
    """The document, the tensors and the format version of a sealed file.

    Raises :class:`~sk_mlc.exceptions.SealedFileError`, a ``ValueError``
    naming ``who`` (the caller, for messages) and what is wrong, for anything
    but an intact file of this ``kind`` whose format this sk_mlc reads.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SealedFileError(f"{who}: cannot read {str(path)!r}: {exc}") from None
    metadata = _metadata(data, str(path), kind, who)
    # Before anything else: a newer format may seal and lay out files otherwise.
    version = metadata["format_version"]
    if not version.isascii() or not version.isdigit():
        raise SealedFileError(
            f"{who}: {str(path)!r} has no valid format version ({version[:20]!r}): "
            "it is corrupt, or was edited."
        )
    if int(version) > FORMAT_VERSION:
        raise SealedFileError(
            f"{who}: {str(path)!r} has format version {version!r}; this sk_mlc reads "
            f"format versions up to {FORMAT_VERSION}. It was written by a newer "
            "sk_mlc: upgrade sk_mlc to read it."
        )
    try:
        tensors = load_tensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise SealedFileError(
            f"{who}: {str(path)!r} is truncated or corrupt: its tensors cannot be "
            f"read ({exc})."
        ) from None
    if metadata.get("sha256") != checksum(metadata, tensors):
        raise SealedFileError(
            f"{who}: {str(path)!r} fails its SHA-256 checksum: its tensors or its "
            "metadata changed after it was written (a partial copy, disk "
            "corruption or an edit). Nothing in it was used."
        )
    try:
        document = json.loads(metadata["json"])
    except ValueError as exc:
        raise SealedFileError(
            f"{who}: {str(path)!r} holds metadata that is not JSON ({exc})."
        ) from None
    if not isinstance(document, dict):
        raise SealedFileError(f"{who}: {str(path)!r} holds no JSON document.")
    return document, tensors, version


def _metadata(data: bytes, path: str, kind: str, who: str) -> dict:
    """The string metadata of the safetensors header, checked to be ours."""
    foreign = (
        f"{who}: {path!r} is not a file written by sk_mlc ({kind}); sk_mlc reads "
        "only its own safetensors files"
    )
    if data[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        raise SealedFileError(
            f"{foreign}. It looks like a pickle, which sk_mlc never loads: loading "
            "a pickle runs the code it holds."
        )
    if data[:2] == b"PK":
        raise SealedFileError(
            f"{foreign}. It looks like a torch.save or zip archive, which sk_mlc "
            "does not load."
        )
    if len(data) < 8:
        raise SealedFileError(f"{foreign}: it is truncated ({len(data)} bytes).")
    (length,) = struct.unpack("<Q", data[:8])
    if length > _MAX_HEADER or 8 + length > len(data):
        raise SealedFileError(
            f"{foreign}: its header says {length} bytes but the file has "
            f"{len(data)}: it is truncated, or another kind of file."
        )
    try:
        header = json.loads(data[8 : 8 + length])
    except ValueError:
        raise SealedFileError(f"{foreign}: its header is not JSON.") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != kind:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        what = "no sk_mlc metadata" if found is None else f"format {found!r}"
        raise SealedFileError(f"{foreign}: it is a safetensors file with {what}.")
    strings = all(isinstance(v, str) for v in metadata.values())
    if not strings or not {"format_version", "json", "sha256"} <= set(metadata):
        raise SealedFileError(f"{foreign}: its sk_mlc metadata is incomplete.")
    return metadata


def checksum(metadata: dict, tensors: dict) -> str:
    """SHA-256 over the format, the JSON and every tensor, in name order."""
    digest = hashlib.sha256()
    for key in ("format", "format_version", "json"):
        value = metadata.get(key, "").encode()
        digest.update(len(value).to_bytes(8, "little") + value)
    for name in sorted(tensors):
        tensor = tensors[name]
        head = f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode()
        digest.update(len(head).to_bytes(8, "little") + head)
        digest.update(_raw(tensor))
    return digest.hexdigest()


def _raw(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
