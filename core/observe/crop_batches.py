"""Aligned face crops of stored frames, for the stages that run a network on them (the emotion
recognisers, the encoder): frames decoded once in order and their crops handed out in batches,
or a few chosen frames read by random access. The take stores each frame's crop transform, not
the crop."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from core.observe.align import warp_crop
from core.take.observations import ObservationArrays
from core.video import FrameSource


def face_crop_batches(
    source: FrameSource,
    observations: ObservationArrays,
    rows: np.ndarray,
    transforms: np.ndarray,
    size: int,
    batch: int,
    check_cancel: Callable[[], None] | None = None,
) -> Iterator[tuple[list[int], np.ndarray]]:
    """(rows, B x size x size x 3 uint8 crops) for the observation ``rows`` (ascending), ``batch``
    at a time and the rest last; each frame is decoded once, in order. ``transforms``: N x 2 x 3
    crop transforms of every row (float64, for crops of side ``size``). ``check_cancel`` is called
    before each crop (it raises to stop)."""
    row_of_index = {int(observations.index[r]): int(r) for r in rows}
    pending_rows: list[int] = []
    pending: list[np.ndarray] = []
    if not len(rows):
        return
    first, last = int(observations.index[rows[0]]), int(observations.index[rows[-1]])
    for index, image in source.iter_frames(first, last + 1):
        row = row_of_index.get(index)
        if row is None:
            continue
        if check_cancel is not None:
            check_cancel()
        pending_rows.append(row)
        pending.append(warp_crop(image, transforms[row], size))
        if len(pending) == batch:
            yield pending_rows, np.stack(pending)
            pending_rows, pending = [], []
    if pending:
        yield pending_rows, np.stack(pending)


def read_face_crops(source: FrameSource, observations: ObservationArrays, rows: list[int], size: int) -> np.ndarray:
    """B x size x size x 3 crops of a few ``rows``, each frame read by exact random access."""
    return np.stack([warp_crop(source.read(int(observations.index[r])), observations.crop_transform[r].astype(np.float64), size)
                     for r in rows])
