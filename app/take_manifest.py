"""What a take folder records, read for the menus that keep a take's choices (its neutral, performer
profile and carrier face), without opening the take for viewing."""

from __future__ import annotations

from pathlib import Path

from core.errors import EmoCapError


def stored_manifest(take_dir: Path):
    """The core.take.manifest.TakeManifest of the take in ``take_dir``, or None when there is no
    readable take there (a new take, or a damaged one that the analysis will report)."""
    from core.take import Take

    try:
        return Take.open(take_dir).manifest
    except EmoCapError:
        return None
