"""Timecode from the recording (a real QuickTime/MP4 tmcd track) or --start-timecode, into the take,
`emocap info`, the Live Link Face CSV, FBX (read back by ufbx) and USD (read back by pxr)."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from core.errors import TimecodeError
from core.export import export, prepare_export
from core.take.manifest import BACKUP_NAME, MANIFEST_NAME, checksum
from core.take.store import Take
from core.timecode import Timecode
from core.video import open_source, read_timecode
from tests.conftest import fixture_path, modules_loaded_by, run_cli
from tests.core.test_cli import assert_one_line_error
from tests.core.test_export_scene import run_reader
from tests.core.test_timecode import ticking_labels
from tests.timecode_clips import has_tmcd_box, tmcd_start_frame, write_timecode_clip

NTSC30 = Fraction(30000, 1001)
NTSC24 = Fraction(24000, 1001)
FRAMES = 24
START = "00:00:59;20"  # at 29.97 drop-frame: frame 1790; ten frames later the labels skip ;00 and ;01


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tc_clips")
    src = fixture_path("WolfgangLanger_Pexels.mp4")
    return {
        "df": write_timecode_clip(src, folder / "df.mov", FRAMES, NTSC30, START),
        "ndf": write_timecode_clip(src, folder / "ndf.mp4", 6, NTSC24, "10:20:30:12", scale=0.5),
        "pal": write_timecode_clip(src, folder / "pal.mp4", 6, Fraction(25), "23:59:59:24", scale=0.5),
        "none": write_timecode_clip(src, folder / "none.mp4", 12, NTSC24, None),
    }


@pytest.fixture(scope="module")
def df_take(clips, tmp_path_factory) -> Path:
    """The drop-frame clip analysed by the command line, as a user would (no emotion: faster)."""
    out = tmp_path_factory.mktemp("tc_takes") / "df"
    result = run_cli("analyze", str(clips["df"]), "--out", str(out), "--device", "cpu", "--no-emotion", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert (summary["timecode"], summary["rate"], summary["timecode_origin"]) == (START, "30000/1001", "recording")
    return out


@pytest.fixture(scope="module")
def ndf_take(clips, tmp_path_factory) -> Path:
    """The clip without a timecode at 23.976, given one on the command line."""
    out = tmp_path_factory.mktemp("tc_takes") / "ndf"
    result = run_cli("analyze", str(clips["none"]), "--out", str(out), "--device", "cpu", "--no-emotion",
                     "--start-timecode", "01:00:00:00")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "timecode  01:00:00:00 at frame 0 (24000/1001 fps, from the command line)" in result.stdout
    return out


# --- reading the recording's timecode ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "rate", "label", "frames"), [
    ("df", NTSC30, START, 59 * 30 + 20),  # minute 0: no label skipped yet
    ("ndf", NTSC24, "10:20:30:12", (10 * 3600 + 20 * 60 + 30) * 24 + 12),
    ("pal", Fraction(25), "23:59:59:24", 24 * 3600 * 25 - 1),
])
def test_the_tmcd_track_is_read(clips, name, rate, label, frames):
    """The file really has a tmcd track whose sample holds the start frame number (read from the
    packet), and what core.video reports is that frame number's label at the video's exact rate."""
    path = clips[name]
    assert has_tmcd_box(path) and tmcd_start_frame(path) == frames
    with open_source(path) as source:
        info = source.info
    assert info.rate == rate and info.timecode == label
    tc = info.start_timecode()
    assert tc.frames == frames and tc.drop_frame is (";" in label)


def test_a_recording_without_timecode_has_none(clips):
    for path in (clips["none"], fixture_path("WolfgangLanger_Pexels.mp4")):
        assert not has_tmcd_box(path) and tmcd_start_frame(path) is None
        with open_source(path) as source:
            assert source.info.timecode is None and source.info.start_timecode() is None
            assert source.info.rate == NTSC24


def test_a_timecode_that_does_not_fit_the_rate_is_dropped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="core.video"):
        assert read_timecode("00:00:10;00", Fraction(25), "clip.mov") is None
        assert read_timecode("01:00:00:00", Fraction(519168, 19667), "phone.mov") is None
    assert "clip.mov" in caplog.text and "29.97 and 59.94" in caplog.text and "no timecode" in caplog.text
    assert read_timecode("01:00:00:00", Fraction(25)) == "01:00:00:00"


def test_images_have_an_exact_rate_and_no_timecode():
    with open_source(fixture_path("single_face.jpg"), image_fps=24000 / 1001) as source:
        assert source.info.rate == NTSC24 and source.info.start_timecode() is None


# --- the take -------------------------------------------------------------------------------------------


def test_the_take_stores_the_recordings_timecode_and_exact_rate(df_take):
    data = json.loads((df_take / MANIFEST_NAME).read_text())
    assert data["video"]["rate"] == "30000/1001" and data["video"]["timecode"] == START
    assert data["start_timecode"] is None
    tc = Take.open(df_take).manifest.timecode()
    assert (tc.frames, tc.rate, tc.drop_frame) == (1790, NTSC30, True)
    info = run_cli("info", str(df_take))
    assert "timecode  00:00:59;20 at frame 0 (30000/1001 fps drop-frame, from the recording)" in info.stdout


def test_start_timecode_overrides_and_stays(df_take, clips, tmp_path):
    take = tmp_path / "t"
    shutil.copytree(df_take, take)
    result = run_cli("analyze", str(clips["df"]), "--out", str(take), "--no-emotion", "--device", "cpu",
                     "--start-timecode", "09:59:59;29", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert (summary["timecode"], summary["timecode_origin"]) == ("09:59:59;29", "command line")
    m = Take.open(take).manifest
    assert m.start_timecode == "09:59:59;29" and m.video.timecode == START  # the recording's is kept too
    # a rerun without the option resumes (nothing to do) and keeps the timecode given before
    again = run_cli("analyze", str(clips["df"]), "--out", str(take), "--no-emotion", "--device", "cpu", "--json")
    assert json.loads(again.stdout)["timecode"] == "09:59:59;29"
    rows = read_csv_timecodes(export(take, "arkit_csv", tmp_path / "a.csv").paths[0])
    assert rows[:2] == ["09:59:59;29.000", "10:00:00;00.000"]  # 10:00 is a tenth minute: ;00 exists


@pytest.mark.parametrize(("value", "words"), [
    ("00:01:00;00", "does not exist"), ("1:00", "not a timecode"), ("00:00:00:30", "00-29"),
])
def test_a_bad_start_timecode_is_one_line_and_makes_no_take(clips, tmp_path, value, words):
    out = tmp_path / "t"
    result = run_cli("analyze", str(clips["df"]), "--out", str(out), "--start-timecode", value, timeout=120)
    assert_one_line_error(result, 2, words)
    assert not out.exists()


def test_a_bad_start_timecode_is_refused_before_the_models_load(clips, tmp_path):
    """The label is checked against the recording's rate before the pipeline's imports (torch,
    MediaPipe: 3.9 s before the refusal)."""
    result = modules_loaded_by(
        "from core.cli import main\n"
        f"print(main(['analyze', {str(clips['df'])!r}, '--out', {str(tmp_path / 't')!r}, "
        "'--start-timecode', '00:00:00:30']))", ("torch", "mediapipe"))
    assert result.stdout.split() == ["2", "[]"], result.stderr
    assert "frames run 00-29" in result.stderr and not (tmp_path / "t").exists()


def test_drop_frame_needs_a_drop_frame_rate(clips, tmp_path):
    result = run_cli("analyze", str(clips["none"]), "--out", str(tmp_path / "t"), "--start-timecode", "01:00:00;00")
    assert_one_line_error(result, 2, "29.97 and 59.94")


def test_a_take_from_before_timecodes_opens_and_gets_them_on_its_next_run(df_take, clips, tmp_path):
    take = tmp_path / "old"
    shutil.copytree(df_take, take)
    for name in (MANIFEST_NAME, BACKUP_NAME):  # take.json as written before this change
        data = json.loads((take / name).read_text())
        del data["video"]["rate"], data["video"]["timecode"], data["start_timecode"]
        data["checksum"] = checksum(data)
        (take / name).write_text(json.dumps(data))
    m = Take.open(take).manifest
    assert m.timecode() is None and m.video.exact_rate == NTSC30  # the float fps, snapped
    req = prepare_export(take, "arkit_csv", tmp_path / "a.csv")
    assert req.timecode is None and req.exact_rate == NTSC30
    # the CSV as before: the time since the clip's start (frame 1 at 29.97 is 33.4 ms in)
    assert read_csv_timecodes(export(take, "arkit_csv", tmp_path / "a.csv").paths[0])[:2] == [
        "00:00:00:00.000", "00:00:00:01.000"]
    result = run_cli("analyze", str(clips["df"]), "--out", str(take), "--no-emotion", "--device", "cpu", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["timecode"] == START
    assert Take.open(take).manifest.video.rate == "30000/1001"


# --- exports --------------------------------------------------------------------------------------------


def read_csv_timecodes(path: Path) -> list[str]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "Timecode"
    return [row[0] for row in rows[1:]]


def test_live_link_csv_has_the_timecode_of_every_frame(df_take, tmp_path):
    """Labels of a counter that ticks from 00:00:59;20 and skips ;00 and ;01 at 00:01:00."""
    got = read_csv_timecodes(export(df_take, "arkit_csv", tmp_path / "a.csv").paths[0])
    ticking = [labels for _, labels in ticking_labels(30, 2, 1790 + FRAMES)][1790:]
    assert got == [f"{h:02d}:{m:02d}:{s:02d};{f:02d}.000" for h, m, s, f in ticking]
    assert got[9:12] == ["00:00:59;29.000", "00:01:00;02.000", "00:01:00;03.000"]
    part = read_csv_timecodes(export(df_take, "arkit_csv", tmp_path / "b.csv", "12:20").paths[0])
    assert part == got[12:20]  # a range keeps its frames' timecodes


def fbx_timing(path: Path) -> dict[str, np.ndarray]:
    return run_reader("ufbx_timing.py", [path], [])


def test_fbx_keys_sit_at_the_timecode(df_take, tmp_path):
    """Every animated value (52 shape keys, the bones' rotations and the root's translation) keys
    video frame N at (1790 + N) / (30000/1001) s; the stack and the file's time span start there;
    TimeMode says NTSC drop-frame."""
    path = export(df_take, "fbx", tmp_path / "f.fbx", "4:20").paths[0]
    d = fbx_timing(path)
    first, last = (float(Fraction(1790 + f) / NTSC30) for f in (4, 19))
    assert first == pytest.approx(59.8598, abs=1e-4)  # 1794 x 1.001 / 30
    assert len(d["value_names"]) >= 52 + 5 and (d["key_counts"] == 16).all()
    np.testing.assert_allclose(d["first_key"], first, rtol=0, atol=1e-9)
    np.testing.assert_allclose(d["last_key"], last, rtol=0, atol=1e-9)
    np.testing.assert_allclose(d["stack_time"], [first, last], rtol=0, atol=1e-9)
    np.testing.assert_allclose(d["span"], [first, last], rtol=0, atol=1e-9)
    assert d["time_mode"] == 8 and d["fps"] == pytest.approx(30000 / 1001, abs=1e-12)


def test_fbx_at_23_976_starts_at_an_hour_of_timecode(ndf_take, tmp_path):
    """01:00:00:00 at 24000/1001 is frame 86400: 3603.6 s on the file's clock (not 3600: the
    timecode counts 24 frames a label second)."""
    d = fbx_timing(export(ndf_take, "fbx", tmp_path / "f.fbx").paths[0])
    np.testing.assert_allclose(d["first_key"], 3603.6, rtol=0, atol=1e-9)
    np.testing.assert_allclose(d["last_key"], float(Fraction(86400 + 11) / NTSC24), rtol=0, atol=1e-9)
    assert d["time_mode"] == 13  # film full frame: 23.976


def test_fbx_without_timecode_keys_the_video_frames(df_take, tmp_path):
    take = tmp_path / "t"
    shutil.copytree(df_take, take)
    m = Take.open(take)
    m.manifest.video.timecode = None
    m.save_manifest()
    d = fbx_timing(export(take, "fbx", tmp_path / "f.fbx", "3:6").paths[0])
    np.testing.assert_allclose(d["first_key"], 3 / float(NTSC30), rtol=0, atol=1e-9)
    np.testing.assert_allclose(d["span"], [3 / float(NTSC30), 5 / float(NTSC30)], rtol=0, atol=1e-9)
    assert d["time_mode"] == 9  # NTSC full frame: no drop-frame without a drop-frame timecode


@pytest.mark.parametrize("suffix", ["usda", "usdc"])
def test_usd_time_codes_are_timecode_frames(df_take, tmp_path, suffix):
    from pxr import Usd, UsdSkel

    path = export(df_take, "usd", tmp_path / f"f.{suffix}", "4:20").paths[0]
    stage = Usd.Stage.Open(str(path))
    assert stage.GetTimeCodesPerSecond() == 30000 / 1001 and stage.GetFramesPerSecond() == 30000 / 1001
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (1794.0, 1809.0)
    anim = UsdSkel.Animation(stage.GetPrimAtPath("/EmoCap/Skel/Anim"))
    for attr in (anim.GetBlendShapeWeightsAttr(), anim.GetRotationsAttr(), anim.GetTranslationsAttr()):
        assert attr.GetTimeSamples() == [float(f) for f in range(1794, 1810)]
    assert dict(stage.GetRootLayer().customLayerData) == {
        "timecode": "00:00:59;24", "timecodeRate": "30000/1001", "dropFrame": True}
    # time code 1794 is video frame 4: its weights are the fit's row 4
    req = prepare_export(df_take, "usd", path, "4:20")
    np.testing.assert_allclose(np.array(anim.GetBlendShapeWeightsAttr().Get(Usd.TimeCode(1794.0))),
                               req.fit.expression[0], atol=1e-6)
    assert stage.GetStartTimeCode() / stage.GetTimeCodesPerSecond() == pytest.approx(
        float(Timecode.parse("00:00:59;24", NTSC30).seconds), abs=1e-12)


def test_timecode_errors_are_emocap_errors():
    with pytest.raises(TimecodeError):
        Timecode.parse("25:00:00:00", 25)
