"""Atomic file writes: write to a temporary name beside the target, fsync, rename. Arrays are
stored as ``.npz`` bytes that depend only on the arrays (no time stamps), so a chunk recomputed
from the same inputs is byte-identical to the one it replaces and its recorded SHA-256 proves it."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to an open file descriptor and fsync it (short writes are continued;
    a full disk raises OSError)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.
    On any error (a full disk included) the temporary file is removed and the error propagates."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value: Any) -> None:
    write_bytes_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


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


def write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> bytes:
    """Store ``arrays`` atomically as an ``.npz`` file; returns the bytes written."""
    data = npz_bytes(arrays)
    write_bytes_atomic(path, data)
    return data
