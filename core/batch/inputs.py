"""Which recordings a batch's inputs name, and the take folder of each.

An input is a video or image file, a folder (searched recursively: every video in it, and every
folder of images that holds no video is one image-sequence recording), or a text file (``.txt``
or ``.list``) listing such inputs one per line (``#`` starts a comment; relative paths are
relative to the list's folder). A path that does not exist is kept as a recording that fails
with its reason, so that one typo does not stop a shoot.

Take names are stable and collision-free: a recording whose take already sits in the output
folder keeps that take's name; otherwise its name is the file's (or image folder's) stem, made
safe for file systems, with a short digest of its absolute path appended when another recording
of the batch, or another recording's take in the output folder, has the same stem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.take.manifest import MANIFEST_NAME
from core.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

LIST_EXTENSIONS = frozenset({".txt", ".list"})


@dataclass(frozen=True)
class Recording:
    """One recording of a batch: ``source`` (absolute path of a video, image or image folder),
    ``name`` (its take's name) and ``take`` (its take folder, ``OUT/name``)."""

    source: Path
    name: str
    take: Path


def discover(inputs: list[str | Path]) -> tuple[list[Path], list[str]]:
    """The recordings the inputs name (absolute paths, sorted, each once) and notes about what was
    skipped (images beside videos). Links to one file are one recording, named by a path whose last
    part is the file itself rather than a link to it when an input reaches it so, otherwise by the
    first link in sorted order: the choice does not depend on where the folders lie."""
    found: set[Path] = set()
    notes: list[str] = []
    for item in inputs:
        _expand(Path(item).expanduser(), found, notes, set())
    unique: dict[Path, Path] = {}
    for path in sorted(found):
        real = path.resolve()
        if real not in unique or (unique[real].is_symlink() and not path.is_symlink()):
            unique[real] = path
    return sorted(unique.values()), notes


def _expand(path: Path, found: set[Path], notes: list[str], lists: set[Path]) -> None:
    path = path.absolute()
    if path.is_dir():
        _search(path, found, notes)
    elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
        if path.resolve() in lists:
            return
        lists.add(path.resolve())
        for line in path.read_text(errors="replace").splitlines():
            entry = line.split("#", 1)[0].strip()
            if entry:
                target = Path(entry).expanduser()
                _expand(target if target.is_absolute() else path.parent / target, found, notes, lists)
    else:
        found.add(path)  # a video or image; a missing or unreadable one fails with its reason


def _search(folder: Path, found: set[Path], notes: list[str]) -> None:
    """Every video under ``folder``, and every folder of images without videos."""
    for current in sorted([folder, *(p for p in folder.rglob("*") if p.is_dir())]):
        if any(part.startswith(".") for part in current.relative_to(folder).parts):
            continue  # hidden folders (take folders' temporary files, .git)
        files = [p for p in current.iterdir() if p.is_file() and not p.name.startswith(".")]
        videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        found.update(videos)
        if images and not videos:
            found.add(current)
        elif images:
            notes.append(f"{len(images)} image(s) beside videos in {current} were skipped: "
                         "give them as inputs, or move an image sequence into a folder of its own")


def safe_stem(source: Path) -> str:
    """A take name made of the recording's stem: letters, digits, ``-``, ``_`` and ``.``."""
    stem = source.name if source.is_dir() else source.stem
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "recording"
    return cleaned[:80]


def path_digest(source: Path) -> str:
    return hashlib.sha1(str(source).encode()).hexdigest()[:8]


def existing_takes(out: Path) -> dict[Path, str]:
    """The take folders in ``out`` by the absolute path of their recording (read from each
    take's manifest; folders that are not takes are left out)."""
    takes: dict[Path, str] = {}
    if not out.is_dir():
        return takes
    for folder in sorted(out.iterdir()):
        manifest = folder / MANIFEST_NAME
        if not folder.is_dir() or not manifest.is_file():
            continue
        try:
            source = json.loads(manifest.read_text())["source"]["path"]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s: its manifest is unreadable; its name is not reused", folder)
            continue
        takes.setdefault(Path(source), folder.name)
    return takes


def _occupied(entry: Path) -> bool:
    """Whether a name in the output folder is in use: a file, or a folder with anything but
    hidden files in it (a take whose first run stopped before its manifest holds only its lock)."""
    if not entry.is_dir():
        return True
    return any(not p.name.startswith(".") for p in entry.iterdir())


def assign_takes(sources: list[Path], out: Path) -> list[Recording]:
    """Each recording with its take folder in ``out`` (see the module docstring for the names)."""
    out = Path(out).absolute()
    known = existing_takes(out)
    taken = set(known.values()) | ({p.name for p in out.iterdir() if _occupied(p)} if out.is_dir() else set())
    names: dict[Path, str] = {}
    fresh = []
    for source in sources:
        resolved = source.resolve()
        if resolved in known:
            names[source] = known[resolved]  # manifests record the resolved path
        else:
            fresh.append(source)
    stems = Counter(safe_stem(s) for s in fresh)
    for source in fresh:
        stem = safe_stem(source)
        clash = stems[stem] > 1 or stem in taken
        names[source] = f"{stem}-{path_digest(source.resolve())}" if clash else stem
    return [Recording(source, names[source], out / names[source]) for source in sources]


def find_recordings(inputs: list[str | Path], out: Path) -> tuple[list[Recording], list[str]]:
    """The batch's recordings (sorted by path) with their take folders, and discovery notes."""
    sources, notes = discover(inputs)
    return assign_takes(sources, out), notes
