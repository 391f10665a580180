"""What a take records about each file it stores, and the verified read of such a file.

Every chunk a take writes (``observations/*.npz``, ``fit/*.npz``, ``emotion/timelines.npz``,
``microexpr/*.npz``) gets a :class:`ChunkRecord` in the manifest: its size and SHA-256. A read
compares both before parsing, so a chunk cut short, zero-filled or altered is reported by name
(:class:`core.errors.DamagedChunkError`) instead of surfacing as a ``zipfile`` or NumPy traceback.
A chunk without a record (a take written before records existed, or a chunk whose manifest update
an interrupted run never saved) is still read, and its arrays are checked by the zip's own CRC-32.
Chunks are written as ``.npz`` bytes that depend only on the arrays (:func:`npz_bytes`: no time
stamps), so a chunk recomputed from the same inputs is byte-identical to the one it replaces and
its recorded SHA-256 proves it.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DamagedChunkError, MissingChunkError


@dataclass(frozen=True)
class ChunkRecord:
    """Size in bytes and SHA-256 (hex) of a stored chunk."""

    size: int
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> ChunkRecord:
        return cls(len(data), hashlib.sha256(data).hexdigest())

    def to_dict(self) -> dict:
        return {"size": self.size, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, value) -> ChunkRecord | None:
        """The record stored in a manifest, or None when it is not a well-formed record."""
        if not isinstance(value, dict):
            return None
        size, digest = value.get("size"), value.get("sha256")
        if not isinstance(size, int) or not isinstance(digest, str) or len(digest) != 64:
            return None
        return cls(size, digest)


FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The arrays as an uncompressed ``.npz`` (what ``np.savez`` writes, readable by ``np.load``),
    with fixed member time stamps so that equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=FIXED_ZIP_TIME)
            info.external_attr = 0o600 << 16
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    return buffer.getvalue()


def read_chunk_bytes(root: Path, name: str, record: ChunkRecord | None) -> bytes:
    """The bytes of ``root/name``, checked against ``record`` when there is one.

    Raises MissingChunkError when the file is not there, DamagedChunkError when it cannot be read
    or its size or digest differ from the record."""
    path = Path(root) / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingChunkError(root, name) from None
    except OSError as err:
        raise DamagedChunkError(root, name, f"unreadable ({err.strerror or err})") from err
    if record is not None:
        if len(data) != record.size:
            raise DamagedChunkError(root, name, f"damaged ({len(data)} bytes, {record.size} were written)")
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise DamagedChunkError(root, name, "damaged (its SHA-256 differs from the one recorded)")
    return data


def parse_npz(root: Path, name: str, data: bytes) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` held in ``data``; every member is read whole, so the zip's CRC-32
    of each is checked. Whatever the bytes are, the only error is DamagedChunkError."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as err:  # noqa: BLE001 - untrusted bytes: zipfile, zlib, NumPy and OS errors alike
        raise DamagedChunkError(root, name, f"damaged (not a readable array file: {type(err).__name__})") from err


def read_npz(root: Path, name: str, record: ChunkRecord | None) -> dict[str, np.ndarray]:
    """The verified arrays of the chunk ``root/name`` (see :func:`read_chunk_bytes`)."""
    return parse_npz(root, name, read_chunk_bytes(root, name, record))
