import errno
import json
import os

import numpy as np
import pytest

from core.atomic import write_bytes_atomic
from core.errors import TakeError
from core.observe.types import ActorSelection, FaceBox, TrackState
from core.take import ObservationArrays, Take, TakeManifest
from core.take.observations import track_state_from_arrays, track_state_to_arrays
from core.take.records import EmotionSummary, SourceRecord, TakeSettings, VideoRecord


def manifest(chunk=4):
    return TakeManifest(
        source=SourceRecord("/x.mp4", 1, "ab"), video=VideoRecord(fps=25.0, width=64, height=48),
        settings=TakeSettings(chunk_size=chunk),
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


def test_observations_are_gathered_into_one_block_chunk_by_chunk():
    from dataclasses import fields

    parts = [arrays(0, 4), arrays(4, 3), arrays(7, 4)]
    gathered = ObservationArrays.gather(iter(parts), capacity=12)
    assert len(gathered) == 11
    for f in fields(ObservationArrays):
        expected = np.concatenate([getattr(p, f.name) for p in parts])
        assert np.array_equal(getattr(gathered, f.name), expected, equal_nan=expected.dtype.kind == "f")
    with pytest.raises(ValueError, match="more than 10"):
        ObservationArrays.gather(iter(parts), capacity=10)


def test_track_state_serialisation_is_exact():
    state = TrackState(FaceBox(0.1, 0.2, 100.3, 200.7, 0.87654321), None,
                       ActorSelection(3, 2, FaceBox(5.5, 6.5, 50.25, 70.125, 0.75, roll_deg=-37.123456789)))
    assert track_state_from_arrays(track_state_to_arrays(state)) == state
    assert track_state_from_arrays(track_state_to_arrays(TrackState())) == TrackState()
    # a take written before the boxes kept their roll stored five values per box
    old = {k: v[:5] if k.endswith("box") else v for k, v in track_state_to_arrays(state).items()}
    restored = track_state_from_arrays(old)
    assert restored.selection.box == FaceBox(5.5, 6.5, 50.25, 70.125, 0.75) and restored.last_box == state.last_box


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


# take.json as EmoCap 0.1 wrote it before chunks were recorded: no checksum, no chunk records,
# every stage a plain object (a complete fit, emotion and refinement)
OLD_MANIFEST = {
    "format": 1, "status": "complete", "frames_done": 8, "frames_with_face": 4,
    "created": "2026-10-01T10:00:00+00:00", "updated": "2026-10-01T10:05:00+00:00",
    "source": {"path": "/clips/a.mp4", "size": 1234, "sha1": "0" * 40},
    "video": {"path": "/clips/a.mp4", "kind": "video", "frame_count": 8, "fps": 25.0, "width": 64, "height": 48,
              "duration_s": 0.32, "variable_frame_rate": False, "truncated_at": None, "codec": "h264"},
    "settings": {"chunk_size": 4, "crop_size": 256, "image_fps": 30.0, "device": "cpu", "version": "0.1.0"},
    "actor": {"frame": 0, "faces_found": 2, "box": [1.0, 2.0, 30.5, 40.0]},
    "fit": {"settings": {"model": "open", "open_model_version": 3, "fit": {"window": 4}, "neutral": {"frame": 2}},
            "status": "complete", "model": "open", "num_shape": 88, "expression_names": ["jawOpen", "eyeBlinkLeft"]},
    "emotion": {"settings": {"recognisers": ["fer"], "fit": None}, "status": "complete", "primary": "fer",
                "recognisers": ["fer"], "reference_frame": 0, "measured_frames": {"fer": 4},
                "param_model": {}, "summary": {"dominant_emotion": "happy", "emotion_segments": [],
                                               "mean_consistency": {"fer": 0.5}, "emotion_recogniser": "fer"}},
    "microexpr": {"settings": {"window_s": 0.5}, "status": "running"},
    "warnings": ["2 faces in frame 0; following the largest"],
}


def test_a_take_written_by_an_earlier_version_reads_into_typed_records(tmp_path):
    (tmp_path / "take.json").write_text(json.dumps(OLD_MANIFEST))
    m = Take.open(tmp_path).manifest
    assert m.chunks is None  # read unverified
    assert m.source == SourceRecord("/clips/a.mp4", 1234, "0" * 40)
    assert (m.video.fps, m.video.width, m.video.codec) == (25.0, 64, "h264")
    assert m.settings.result_settings() == {"chunk_size": 4, "crop_size": 256, "image_fps": 30.0}
    assert m.actor.faces_found == 2 and m.actor.box == [1.0, 2.0, 30.5, 40.0]
    assert m.fit.complete and m.fit.method == "fit" and m.fit.window == 4 and m.fit.neutral == {"frame": 2}
    assert m.fit.num_shape == 88 and m.fit.expression_names == ["jawOpen", "eyeBlinkLeft"]
    assert m.fit.is_current(OLD_MANIFEST["fit"]["settings"]) and not m.fit.is_current({"model": "flame"})
    assert m.emotion.summary == EmotionSummary("happy", [], {"fer": 0.5}, "fer")
    assert m.microexpr.status == "running" and m.microexpr.summary is None


def test_the_typed_manifest_writes_back_the_layout_it_read(tmp_path):
    """Reading and saving keeps every key and value of the old layout; a key the records do not
    know is dropped, its checksum is added (and what later versions record, as null: chunks,
    stages added since, the video's exact rate and timecode), and nothing else changes."""
    # the carrier face, the recognisers' runtimes and the frames whose renders they judged, recorded
    # since: none in an old take
    emotion = OLD_MANIFEST["emotion"]
    old = OLD_MANIFEST | {"microexpr": OLD_MANIFEST["microexpr"] | {"windows": [], "offset_components": 0,
                                                                    "summary": None},
                          "emotion": emotion | {"carrier": {}, "runtimes": {}, "rendered_frames": {},
                                                "summary": emotion["summary"] | {"mean_carried": {}, "carrier": None}}}
    (tmp_path / "take.json").write_text(json.dumps(old | {"unknown_key": 1}))
    take = Take.open(tmp_path)
    take.save_manifest()
    written = json.loads((tmp_path / "take.json").read_text())
    assert {k for k in set(written) - set(old) if written[k] is not None} == {"checksum"}
    added = {k: v for k, v in written["video"].items() if k not in old["video"]}
    assert added == {"rate": None, "timecode": None}  # recorded since (the exact rate, the timecode), unknown here
    written["video"] = {k: v for k, v in written["video"].items() if k in old["video"]}
    assert {k: v for k, v in written.items() if k in old and k != "updated"} == {k: v for k, v in old.items() if k != "updated"}


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    """Takes, profiles and exports are shared (studio storage, a Ray cluster): an atomic write must
    not leave them readable by their owner only, as its temporary file starts."""
    import os
    import stat

    from core.atomic import AtomicFolder

    mask = os.umask(0)
    os.umask(mask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"
    write_bytes_atomic(atomic, b"x")
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask
    with AtomicFolder(tmp_path / "folder") as folder:
        folder.write("inside.txt", b"x")
    plain_folder = tmp_path / "plain_folder"
    plain_folder.mkdir()
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == stat.S_IMODE(plain_folder.stat().st_mode)
    assert stat.S_IMODE((tmp_path / "folder" / "inside.txt").stat().st_mode) == 0o666 & ~mask
