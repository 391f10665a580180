"""A take's landmarks read from its chunks when indexed (core/take/landmarks.py)."""

from dataclasses import fields

import numpy as np
import pytest

from core.errors import DamagedChunkError
from core.observe.types import TrackState
from core.take import ObservationArrays, Take
from core.take.landmarks import ChunkedLandmarks
from tests.core.test_take import arrays, manifest

LENGTHS = (5, 3, 7, 1, 6)


def blocks_of(whole: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """``whole`` split into LENGTHS blocks, and a list that records which blocks were read."""
    edges = np.cumsum((0,) + LENGTHS)
    return [whole[a:b].copy() for a, b in zip(edges[:-1], edges[1:])], []


@pytest.fixture
def whole():
    return np.random.default_rng(3).normal(size=(sum(LENGTHS), 478, 3)).astype(np.float32)


def chunked(whole):
    blocks, reads = blocks_of(whole)

    def read(k):
        reads.append(k)
        return blocks[k]

    return ChunkedLandmarks(read, LENGTHS), reads


@pytest.mark.parametrize("key", [
    7, -1, 0, slice(None), slice(2, 17, 3), slice(None, None, -1), slice(30, 40),
    np.array([21, 0, 5, 5, 13]), [4, 5, 6], np.array([], np.int64), (np.arange(22) % 3 == 0),
    (slice(None), [61, 291], slice(None, 2)), (np.array([9, 2]), 33), (5, 10, 1), (Ellipsis, 0), (3, Ellipsis),
])
def test_indexing_gives_what_the_whole_array_gives(whole, key):
    landmarks, _ = chunked(whole)
    expected = whole[key]
    got = landmarks[key]
    assert np.asarray(got).dtype == np.float32 and np.shape(got) == np.shape(expected)
    assert np.array_equal(got, expected)


def test_it_looks_like_the_array_it_stands_for(whole):
    landmarks, reads = chunked(whole)
    assert landmarks.shape == whole.shape and len(landmarks) == len(whole) and landmarks.ndim == 3
    assert np.array_equal(np.asarray(landmarks), whole)
    assert np.asarray(landmarks, np.float64).dtype == np.float64
    assert sorted(set(reads)) == list(range(len(LENGTHS)))


@pytest.mark.parametrize("key", [22, -23, np.array([0, 22]), np.array([-23]), np.ones(5, bool), np.zeros((2, 2), int),
                                 np.array([0.5])])
def test_rows_outside_the_frames_are_refused(whole, key):
    landmarks, _ = chunked(whole)
    with pytest.raises(IndexError):
        landmarks[key]


def test_only_the_blocks_used_last_are_kept(whole):
    landmarks, reads = chunked(whole)
    for row in range(len(whole)):  # a pass frame by frame reads each block once
        landmarks[row]
    assert reads == list(range(len(LENGTHS)))
    landmarks[0]  # block 0 was the least recently used of five: it was let go
    assert reads[-1] == 0 and len(reads) == len(LENGTHS) + 1
    landmarks[21]  # the last block is still held
    assert len(reads) == len(LENGTHS) + 1


def test_a_block_of_the_wrong_size_is_an_error(whole):
    landmarks = ChunkedLandmarks(lambda k: whole[:2], LENGTHS)
    with pytest.raises(ValueError, match="block 0 has shape"):
        landmarks[0]


def test_a_take_reads_its_landmarks_on_demand_as_they_were_stored(tmp_path):
    take = Take.create(tmp_path / "t", manifest())
    for start in (0, 4, 8):
        take.write_chunk(arrays(start, 4 if start < 8 else 3), TrackState())
    held = take.load_observations()
    on_demand = take.load_observations(landmarks_on_demand=True)
    assert isinstance(on_demand.landmarks, ChunkedLandmarks) and isinstance(held.landmarks, np.ndarray)
    for f in fields(ObservationArrays):
        expected = getattr(held, f.name)
        assert np.array_equal(np.asarray(getattr(on_demand, f.name)), expected, equal_nan=expected.dtype.kind == "f")
    assert np.array_equal(on_demand.observation(8).landmarks, held.observation(8).landmarks)

    # a chunk changed after the observations were loaded is refused when its landmarks are read
    later = Take.open(take.root).load_observations(landmarks_on_demand=True)
    path = take.root / "observations" / "00000004.npz"
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF
    path.write_bytes(bytes(data))
    assert np.array_equal(later.landmarks[:4], held.landmarks[:4], equal_nan=True)
    with pytest.raises(DamagedChunkError, match="00000004"):
        later.landmarks[5]


def test_an_analysis_reads_its_landmarks_on_demand(tmp_path):
    from core.stages import RunContext

    take = Take.create(tmp_path / "t", manifest())
    take.write_chunk(arrays(0, 4), TrackState())
    context = RunContext(take=take, source=None, device="cpu", model_choice=None)
    assert isinstance(context.observations.landmarks, ChunkedLandmarks)
    assert context.observations is context.observations
