import errno
import os

import numpy as np
import pytest

from core.errors import TakeError
from core.observe.types import ActorSelection, FaceBox, TrackState
from core.take import ObservationArrays, Take, TakeManifest
from core.take.atomic import write_bytes_atomic
from core.take.observations import track_state_from_arrays, track_state_to_arrays


def manifest(chunk=4):
    return TakeManifest(
        source={"path": "/x.mp4", "size": 1, "sha1": "ab"},
        video={"fps": 25.0, "width": 64, "height": 48, "variable_frame_rate": False, "truncated_at": None},
        settings={"chunk_size": chunk},
    )


def arrays(start, n):
    a = ObservationArrays.empty(n)
    a.index[:] = np.arange(start, start + n)
    a.timestamp[:] = a.index / 25.0
    a.has_face[::2] = True
    a.landmarks[::2] = np.random.default_rng(start).normal(size=(len(a.landmarks[::2]), 478, 3))
    return a


def test_atomic_write_leaves_the_old_file_when_the_disk_is_full(tmp_path, monkeypatch):
    target = tmp_path / "take.json"
    target.write_text("old")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_bytes_atomic(target, b"new")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_chunks_round_trip_and_only_contiguous_chunks_count(tmp_path):
    take = Take.create(tmp_path / "t", manifest())
    state = TrackState(FaceBox(1.123456789, 2, 3, 4, 0.9), FaceBox(1, 2, 3, 4), ActorSelection(0, 3, FaceBox(5, 6, 7, 8)))
    take.write_chunk(arrays(0, 4), state)
    take.write_chunk(arrays(4, 4), state)
    take.write_chunk(arrays(12, 4), state)  # a gap: frames 8..11 missing
    assert take.stored_chunk_starts() == [0, 4]
    loaded, loaded_state = take.read_chunk(4)
    assert loaded_state == state
    assert np.array_equal(loaded.landmarks, arrays(4, 4).landmarks, equal_nan=True)
    assert len(Take.open(take.root).load_observations()) == 8


def test_track_state_serialisation_is_exact():
    state = TrackState(FaceBox(0.1, 0.2, 100.3, 200.7, 0.87654321), None, None)
    assert track_state_from_arrays(track_state_to_arrays(state)) == state
    assert track_state_from_arrays(track_state_to_arrays(TrackState())) == TrackState()


def test_open_rejects_what_is_not_a_take(tmp_path):
    with pytest.raises(TakeError, match="not a take folder"):
        Take.open(tmp_path)
    (tmp_path / "take.json").write_text("{broken")
    with pytest.raises(TakeError, match="unreadable"):
        Take.open(tmp_path)


def test_create_refuses_to_overwrite_a_folder_that_is_not_a_take(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "precious.txt").write_text("keep me")
    with pytest.raises(TakeError):
        Take.create(tmp_path / "t", manifest(), overwrite=True)
    assert (tmp_path / "t" / "precious.txt").read_text() == "keep me"
