"""EmoCap's version: one string, ``version`` in pyproject.toml, with the git commit where known.

Where it is read from, first found wins:

1. ``emocap_build_info``: a module the desktop bundle's build writes (packaging/build.sh) with the
   version and commit of the checkout it was built from; a bundle has no pyproject and no git.
2. ``pyproject.toml`` beside ``core/`` (a checkout), and the commit from ``git rev-parse``.
3. The installed distribution's metadata (``importlib.metadata``), for an install from a wheel.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
DISTRIBUTION = "emocap"


@dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str | None  # full hash; None when not known
    dirty: bool = False  # the checkout had uncommitted changes

    def text(self) -> str:
        """'0.1.0 (commit 1a2b3c4d5e6f)', '0.1.0 (commit 1a2b3c4d5e6f, modified)' or '0.1.0'."""
        if not self.commit:
            return self.version
        return f"{self.version} (commit {self.commit[:12]}{', modified' if self.dirty else ''})"


def _built() -> BuildInfo | None:
    try:
        import emocap_build_info as built  # written into the bundle by packaging/build.sh
    except ModuleNotFoundError:
        return None
    return BuildInfo(built.VERSION, built.COMMIT or None, bool(built.DIRTY))


@functools.cache
def version() -> str:
    """The version string, e.g. '0.1.0' (no git call: pipelines record it in every take)."""
    built = _built()
    if built is not None:
        return built.version
    if PYPROJECT.is_file():
        with open(PYPROJECT, "rb") as f:
            return tomllib.load(f)["project"]["version"]
    return importlib.metadata.version(DISTRIBUTION)


@functools.cache
def build_info() -> BuildInfo:
    """The version with the commit: the bundle's recorded one, else the checkout's."""
    built = _built()
    if built is not None:
        return built
    if PYPROJECT.is_file():
        return BuildInfo(version(), *git_commit(ROOT))
    return BuildInfo(version(), None)


def git_commit(root: Path) -> tuple[str | None, bool]:
    """(HEAD's hash, whether the work tree has changes) of the git checkout at ``root``;
    (None, False) when it is not one or git is missing."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None, False
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.debug("no git commit for %s: %s", root, err)
        return None, False
    return head.stdout.strip(), bool(status.stdout.strip())


def version_text() -> str:
    """What ``emocap --version`` and the About box show: 'EmoCap 0.1.0 (commit ...)'."""
    return f"EmoCap {build_info().text()}"
