"""Atomic output for writers that insist on a file name of their own (USD, Alembic, Blender).

``with native_output(target) as scratch: write scratch`` gives the writer a path with the target's
suffix (USD and Alembic choose their encoding by it) inside a hidden temporary folder beside the
target. When the block ends without error, the file is copied to the target through the same
atomic writer as every other export (temporary name beside the target, os.write, fsync, rename),
so a full disk or an unwritable folder fails the same way for every format. The scratch folder is
always removed; on any error (a cancel, KeyboardInterrupt, included) nothing is left beside the
target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core.errors import ExportError

CHUNK = 1 << 22  # bytes per os.write


def copy_file_atomic(src: Path, target: Path) -> None:
    """Copy ``src`` to ``target`` so that readers see the old target or the whole new file.
    OSError propagates after the temporary file is removed."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        try:
            with open(src, "rb") as f:
                while chunk := f.read(CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def native_output(target: Path, name: str = "export") -> Iterator[Path]:
    """Yield ``<hidden folder beside target>/<name><target suffix>``; see the module docstring.
    ExportError ("cannot write TARGET: reason") when the folder cannot be made or the copy fails."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as err:
        raise ExportError(f"cannot write {target}: {err.strerror or err}") from err
    try:
        scratch = folder / f"{name}{target.suffix}"
        try:
            yield scratch
            if not scratch.is_file():
                raise ExportError(f"cannot write {target}: the writer produced no file")
            copy_file_atomic(scratch, target)
        except OSError as err:
            raise ExportError(f"cannot write {target}: {err.strerror or err}") from err
    finally:
        shutil.rmtree(folder, ignore_errors=True)
