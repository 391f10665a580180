"""The face-crop batching the emotion and encoder stages share (core/observe/crop_batches.py)."""

from __future__ import annotations

import numpy as np

from core.observe.crop_batches import face_crop_batches
from core.take.observations import ObservationArrays


class FakeSource:
    """Frames whose pixels are their index; records which frames were decoded."""

    def __init__(self) -> None:
        self.decoded: list[int] = []

    def iter_frames(self, start: int, stop: int):
        for index in range(start, stop):
            self.decoded.append(index)
            yield index, np.full((8, 8, 3), index, np.uint8)


def test_crops_come_in_batches_in_order_and_each_frame_is_decoded_once():
    observations = ObservationArrays.empty(10)
    observations.index[:] = np.arange(10)
    rows = np.array([1, 2, 4, 5, 6, 9])
    transforms = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (10, 1, 1))  # identity crop
    source = FakeSource()
    checked = []
    batches = list(face_crop_batches(source, observations, rows, transforms, 4, 4, lambda: checked.append(1)))
    assert [b for b, _ in batches] == [[1, 2, 4, 5], [6, 9]]
    assert [crops[:, 0, 0, 0].tolist() for _, crops in batches] == [[1, 2, 4, 5], [6, 9]]
    assert batches[0][1].shape == (4, 4, 4, 3)
    assert source.decoded == list(range(1, 10)) and len(checked) == len(rows)


def test_no_rows_no_batches_and_nothing_decoded():
    source = FakeSource()
    assert list(face_crop_batches(source, ObservationArrays.empty(3), np.array([], int), np.zeros((3, 2, 3)), 4, 4)) == []
    assert source.decoded == []
