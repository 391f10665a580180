"""The emocap command line, as a user runs it: exit codes, one-line errors, JSON summaries."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, fixture_path, modules_loaded_by, run_cli

SUMMARY_KEYS = {"frames", "frames_with_face", "fps", "width", "height", "seconds", "warnings"}


def assert_one_line_error(result, code, text):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("emocap:")]
    assert len(lines) == 1 and text in lines[0], result.stderr


def test_analyze_json_then_info_json(tmp_path):
    result = run_cli("analyze", str(fixture_path("single_face.mp4")), "--out", str(tmp_path / "t"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["frames"] > 0 and summary["frames_with_face"] == summary["frames"]
    # emotion is measured by default, by the MIT-licensed FER model only
    assert summary["emotion_recognisers"] == [{"name": "fer", "licence": "MIT", "runtime": "onnxruntime float32"}]
    assert summary["dominant_emotion"]
    info = run_cli("info", str(tmp_path / "t"), "--json")
    assert info.returncode == 0
    assert json.loads(info.stdout) == summary
    text = run_cli("info", str(tmp_path / "t"))
    assert "face      in" in text.stdout and "emotion   measured by fer (MIT; onnxruntime float32)" in text.stdout
    # 'emocap info' reads the take alone: no torch, no MediaPipe (it took 3.5 s while it loaded them)
    loaded = modules_loaded_by(
        "import contextlib, io; from core.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): code = main(['info', {str(tmp_path / 't')!r}])\n"
        "print(code)", ("torch", "mediapipe"))
    assert loaded.stdout.split() == ["0", "[]"], loaded.stderr


def test_missing_path(tmp_path):
    assert_one_line_error(run_cli("analyze", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "t")), 2, "nope.mp4")


def test_folder_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    assert_one_line_error(run_cli("analyze", str(tmp_path / "empty"), "--out", str(tmp_path / "t")), 2, "no images")


def test_text_file_renamed_mp4(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 50)
    assert_one_line_error(run_cli("analyze", str(fake), "--out", str(tmp_path / "t")), 2, "fake.mp4")


def test_no_face_video_is_a_clean_no_face_result(tmp_path):
    result = run_cli("analyze", str(fixture_path("no_face.mp4")), "--out", str(tmp_path / "t"), "--json")
    assert_one_line_error(result, 3, "no face found")
    assert json.loads(result.stdout)["frames_with_face"] == 0


def test_group_photo_names_how_many_faces(tmp_path):
    result = run_cli("analyze", str(fixture_path("multi_face.jpg")), "--out", str(tmp_path / "t"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames_with_face"] == 1 and summary["actor_faces"] >= 2
    assert any(f"{summary['actor_faces']} faces" in w and "largest" in w for w in summary["warnings"])


def test_info_on_a_folder_that_is_not_a_take(tmp_path):
    assert_one_line_error(run_cli("info", str(tmp_path)), 2, "not a take folder")


def test_unknown_device(tmp_path):
    result = run_cli("analyze", str(fixture_path("single_face.jpg")), "--out", str(tmp_path / "t"), "--device", "tpu")
    assert_one_line_error(result, 2, "unknown device")


@pytest.mark.parametrize("args", [(), ("gui",)])
def test_gui_without_a_display_says_so(args, monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert_one_line_error(run_cli(*args, timeout=60), 2, "no display")


def test_the_parser_loads_no_model_code():
    """Every 'emocap' call builds the whole parser first, so a subcommand's parser must not import
    torch or the models (the calibrate command's did: 5 s before 'emocap --help' answered)."""
    result = modules_loaded_by("from core.cli import build_parser; build_parser()", ("torch", "scipy", "mediapipe"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_models_list_loads_no_model_code():
    """'emocap models list' reads the open model's file and the model store: no torch (3.2 s while
    the face model package imported it)."""
    result = modules_loaded_by(
        "import contextlib, io; from core.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): code = main(['models', 'list'])\n"
        "print(code)", ("torch", "mediapipe"))
    assert result.stdout.split() == ["0", "[]"], result.stderr


def test_the_program_exits_with_the_command_status_and_skips_the_final_collections(tmp_path):
    # `emocap` and `python -m core.cli` run core.cli.run: main's status, everything frozen out of the
    # garbage collector before the interpreter takes its modules apart (0.4-0.5 s of each command)
    script = tmp_path / "probe.py"
    script.write_text(
        "import atexit, gc, sys\n"
        "import core.cli\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "sys.argv = ['emocap', 'analyze', sys.argv[1], '--out', sys.argv[2]]\n"
        "core.cli.run()\n")
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "nope.mp4"), str(tmp_path / "t")],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert_one_line_error(result, 2, "nope.mp4")
    assert result.stdout.split() == ["frozen", "True"]
