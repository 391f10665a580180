"""Contact sheets of the fidelity benchmark, one PNG per label, to look at.

Each row is one still: its aligned crop, its own reconstruction (its fit on its own texture), then
the carriers driven by EmoCap's curves, then the same carriers driven by MediaPipe's scores. Under
each render, what EmoNet reads (green when it is the still's label).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from benchmarks.fidelity.carriers import Carrier
from benchmarks.fidelity.devset import LABELS, Analysed
from core.observe.align import warp_crop

TILE = 160
CAPTION = 18


def _tile(image: np.ndarray, caption: str, good: bool | None) -> np.ndarray:
    tile = np.full((TILE + CAPTION, TILE, 3), 24, np.uint8)
    tile[:TILE] = cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_AREA)
    colour = (235, 235, 235) if good is None else ((90, 220, 90) if good else (230, 120, 90))
    cv2.putText(tile, caption[:22], (3, TILE + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, colour, 1, cv2.LINE_AA)
    return tile


def write_sheets(folder: Path, analysed: list[Analysed], renders: dict, readings: dict, model) -> list[Path]:
    """One PNG per label in ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for label in LABELS:
        rows = []
        for a in analysed:
            if a.still.label != label:
                continue
            if not a.found:
                blank = np.zeros((TILE, TILE, 3), np.uint8)
                rows.append(np.concatenate([_tile(cv2.resize(a.image, (TILE, TILE)), a.still.name, None),
                                            _tile(blank, "no face found", False)], axis=1))
                continue
            tiles = [_tile(warp_crop(a.image, a.observations.crop_transform[0].astype(np.float64)), a.still.name, None),
                     _tile(Carrier.build(a, model).render(a.curves), "own reconstruction", None)]
            for source in ("emocap", "mediapipe"):
                read = readings.get(("emonet", source, "reads", a.still.name), [])
                for crop, seen in zip(renders[(a.still.name, source)], read):
                    tiles.append(_tile(crop, f"{source[:2]}: {seen}", seen == label))
            rows.append(np.concatenate(tiles, axis=1))
        if not rows:
            continue
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
        path = folder / f"{label}.png"
        cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
        written.append(path)
    return written
