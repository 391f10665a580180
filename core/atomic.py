"""Atomic writes, the one implementation every writer uses (takes, edits, encoder checkpoints,
exports, the app's "Save take as").

A file is written to a temporary name beside its target, fsynced and renamed over it, so readers
see the old file or the whole new one (with the permissions a plain write would give it under the
process's umask, not the temporary file's owner-only ones); a folder is filled as a temporary folder beside its target
and renamed at the end. On any error (a full disk, a cancel, KeyboardInterrupt) the temporary file
or folder is removed and the error propagates as it was (OSError for the file system's errors);
callers that report errors their own way translate it (core/export/base.py: ExportError).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

CHUNK = 1 << 22  # bytes per os.write when copying


def _process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once, at import: os.umask can only be read by setting it, which is not safe once threads run.
_UMASK = _process_umask()
FILE_MODE = 0o666 & ~_UMASK  # what open() would give a new file: a temporary file starts at 0600
FOLDER_MODE = 0o777 & ~_UMASK


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to an open file descriptor (short writes are continued; a full disk
    raises OSError)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _replace_with(path: Path, fill) -> None:
    """Create a temporary file beside ``path``, let ``fill(fd)`` write it, fsync, rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # takes, profiles and exports are shared (studio storage, a Ray cluster)
            fill(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    _replace_with(Path(path), lambda fd: write_all(fd, data))


def write_json_atomic(path: Path, value: Any) -> None:
    """``value`` as indented, key-sorted JSON, written atomically."""
    write_bytes_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def copy_file_atomic(src: Path, target: Path) -> None:
    """Copy ``src`` to ``target`` atomically, in pieces (large files never sit in memory)."""
    def fill(fd: int) -> None:
        with open(src, "rb") as f:
            while piece := f.read(CHUNK):
                write_all(fd, piece)

    _replace_with(Path(target), fill)


class AtomicFolder:
    """``with AtomicFolder(target) as folder: folder.write(name, data)`` (or write into
    ``folder.tmp`` directly) -> the temporary folder is renamed to ``target``; a target folder
    that exists is replaced. On error the temporary folder is removed."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.tmp: Path | None = None

    def __enter__(self) -> AtomicFolder:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent))
        os.chmod(self.tmp, FOLDER_MODE)
        return self

    def write(self, name: str, data: bytes) -> None:
        """Write the file ``name`` of the folder."""
        fd = os.open(self.tmp / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        old = None
        try:
            if self.target.exists():
                old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
                os.replace(self.target, old)
            os.replace(self.tmp, self.target)
        except OSError:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if old is not None and not self.target.exists():
                os.replace(old, self.target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False


def copy_folder_atomic(src: Path, target: Path) -> None:
    """Copy the folder ``src`` (recursively) to ``target`` atomically."""
    with AtomicFolder(target) as folder:
        shutil.copytree(src, folder.tmp, dirs_exist_ok=True)
