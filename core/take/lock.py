"""One writer at a time: an advisory lock on a take folder.

Every process that writes a take (an analysis, a resume, a repair) holds an exclusive ``flock`` on
``TAKE/.writer.lock`` while it writes. The kernel releases the lock when the process ends, however
it ends, so a crash never leaves a take locked. The file holds the writer's process id, for the
message a second writer gets (:class:`core.errors.TakeBusyError`). Readers (``emocap info``,
export, the app's views) never take the lock and never wait.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from core.errors import TakeBusyError, TakeError

log = logging.getLogger(__name__)

LOCK_NAME = ".writer.lock"


class TakeLock:
    """The writer lock of the take folder ``root`` (created when missing)::

        with TakeLock(root):
            ...write the take...

    Raises TakeBusyError at once (no waiting) when another writer holds it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise TakeError(f"cannot write to take {self.root}: {err.strerror or err}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise TakeBusyError(self.root, pid) from None
        except OSError as err:
            os.close(fd)
            raise TakeError(f"cannot lock take {self.root}: {err.strerror or err}") from err
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        log.debug("process %d writes %s", os.getpid(), self.root)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the lock goes with the descriptor either way
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> TakeLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def writer_of(root: Path) -> int | None:
    """The process id of the writer holding ``root``'s lock, or None when no one writes it
    (a quick probe for views: it takes and drops the lock only when it is free)."""
    path = Path(root) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or -1
    except OSError:
        return None
    finally:
        os.close(fd)
    return None
