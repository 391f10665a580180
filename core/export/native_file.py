"""Atomic output for writers that insist on a file name of their own (USD, Alembic, Blender).

``with native_output(target) as scratch: write scratch`` gives the writer a path with the target's
suffix (USD and Alembic choose their encoding by it) inside a hidden temporary folder beside the
target. When the block ends without error, the file is copied to the target through the same
atomic writer as every other file (core/atomic.py: temporary name beside the target, fsync, rename),
so a full disk or an unwritable folder fails the same way for every format. The scratch folder is
always removed; on any error (a cancel, KeyboardInterrupt, included) nothing is left beside the
target.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core.atomic import copy_file_atomic
from core.errors import ExportError


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
