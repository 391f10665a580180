"""Takes that heal: every chunk is checked when read, damage is named in one line by every command,
``analyze`` and ``check --repair`` rebuild it bit-identically from the recording, and one process
writes a take at a time. Real take of single_face.mp4 (fit, emotion with the fast recogniser, a
short refinement), built once per module and copied per case."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.edit import EditLayer, Edits, save_edits
from core.emotion.stage import EmotionConfig
from core.errors import DamagedChunkError, MissingChunkError, TakeBusyError
from core.export import import_curves
from core.fit.fitter import FitConfig
from core.microexpr.config import RefineConfig
from core.pipeline import Pipeline, PipelineConfig
from core.take import Take
from core.take.lock import TakeLock, writer_of
from tests.conftest import ROOT, fixture_path

CONFIG = PipelineConfig(device="cpu", emotion=EmotionConfig(recognisers=("fer",)), refine=RefineConfig(iterations=5))
ANALYZE = ("--recognisers", "fer", "--device", "cpu")  # CONFIG on the command line, less --refine
CHUNKS = ("observations/00000000.npz", "fit/identity.npz", "fit/00000000.npz", "fit/closures.npz",
          "emotion/timelines.npz", "microexpr/refined.npz")
MODES = ("truncate", "zero", "delete")


@pytest.fixture(scope="module")
def good_take(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("integrity") / "good"
    Pipeline(CONFIG).run(fixture_path("single_face.mp4"), root)
    save_edits(root, Edits((EditLayer(intensity=1.2, emotions=(("happy", 1.5),), start=10, stop=40),)))
    return root


@pytest.fixture
def take(good_take, tmp_path) -> Path:
    target = tmp_path / "take"
    shutil.copytree(good_take, target)
    return target


def damage(path: Path, mode: str) -> None:
    if mode == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif mode == "zero":
        path.write_bytes(bytes(path.stat().st_size))
    else:
        path.unlink()


def run(capsys, *args) -> tuple[int, str, str]:
    """``emocap ARGS`` in this process: (exit code, stdout, stderr). An exception escaping main()
    fails the test (that would be a traceback for the user)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("emocap:")]
    assert len(lines) == 1, err
    return lines[0]


def chunk_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.npz"))}


def records(root: Path) -> dict:
    return json.loads((root / "take.json").read_text())["chunks"]


def assert_identical(root: Path, good: Path) -> None:
    """Every chunk byte-identical to the undamaged take's, and the same records."""
    got, want = chunk_bytes(root), chunk_bytes(good)
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []
    assert records(root) == records(good)


def test_every_chunk_is_recorded_with_its_size_and_digest(good_take):
    stored = records(good_take)
    assert set(stored) == set(CHUNKS)
    for name, record in stored.items():
        assert record["size"] == (good_take / name).stat().st_size and len(record["sha256"]) == 64
    assert json.loads((good_take / "take.backup.json").read_text()) == json.loads((good_take / "take.json").read_text())


@pytest.mark.parametrize("chunk", CHUNKS)
def test_a_truncated_chunk_is_named_then_rebuilt_bit_identical(take, good_take, chunk, capsys, caplog):
    damage(take / chunk, "truncate")

    code, out, err = run(capsys, "info", take)
    assert code == 2 and f"{chunk} is damaged" in one_line(err)
    assert "face      in 72 of 72 frames" in out  # the rest of the take is still reported

    code, out, err = run(capsys, "check", take)
    assert code == 1 and chunk in one_line(err) and f"damaged     {chunk}" in out

    code, out, err = run(capsys, "export", take, "--format", "arkit_csv", "--out", take.parent / "curves.csv")
    if code != 0:  # the export reads the damaged chunk: named, in one line
        assert code == 2 and f"{chunk} is damaged" in one_line(err)
    else:
        assert "exported 72 frames" in out

    caplog.clear()
    code, out, err = run(capsys, "analyze", fixture_path("single_face.mp4"), "--out", take, *ANALYZE)
    assert code == 0
    said = " ".join(r.getMessage() for r in caplog.records)
    assert chunk in said
    if chunk.startswith("microexpr/"):  # this run has no --refine: the chunk is named and left for a repair
        assert "run with --refine to rebuild it" in said
        assert run(capsys, "check", take)[0] == 1
    else:
        assert_identical(take, good_take)  # the resumed analysis rebuilt it exactly

    code, out, err = run(capsys, "check", take, "--repair")
    assert code == 0, out + err
    assert_identical(take, good_take)
    assert run(capsys, "info", take)[0] == 0


@pytest.mark.parametrize("mode", ("zero", "delete"))
def test_every_kind_of_chunk_damaged_at_once(take, good_take, mode, capsys, caplog):
    for chunk in CHUNKS:
        damage(take / chunk, mode)
    reason = "missing" if mode == "delete" else "damaged"

    code, out, err = run(capsys, "info", take)
    assert code == 2 and f"is {reason}" in one_line(err) and f"and {len(CHUNKS) - 1} more chunks" in one_line(err)
    code, out, err = run(capsys, "check", take)
    assert code == 1 and all(f"{reason:<11} {chunk}" in out for chunk in CHUNKS)
    code, out, err = run(capsys, "export", take, "--format", "arkit_csv", "--out", take.parent / "curves.csv")
    assert code == 2 and f"fit/00000000.npz is {reason}" in one_line(err)

    code, out, err = run(capsys, "analyze", fixture_path("single_face.mp4"), "--out", take, *ANALYZE)
    assert code == 0
    said = " ".join(r.getMessage() for r in caplog.records)
    assert all(chunk in said for chunk in CHUNKS)
    assert run(capsys, "check", take, "--repair")[0] == 0
    assert_identical(take, good_take)


@pytest.mark.parametrize("mode", MODES)
def test_a_damaged_manifest_is_read_from_its_backup_and_restored(take, good_take, mode, capsys, caplog):
    damage(take / "take.json", mode)
    code, out, err = run(capsys, "info", take)
    assert code == 0 and "face      in 72 of 72 frames" in out
    assert any("read its backup" in r.getMessage() for r in caplog.records)
    code, out, _ = run(capsys, "check", take)
    assert code == 1 and "manifest read from take.backup.json" in out
    assert run(capsys, "check", take, "--repair")[0] == 0
    assert json.loads((take / "take.json").read_text())["chunks"] == records(good_take)
    assert_identical(take, good_take)


def test_a_lost_manifest_and_backup_are_rebuilt_from_the_recording_and_the_chunks(take, good_take, capsys):
    damage(take / "take.json", "truncate")
    damage(take / "take.backup.json", "zero")
    code, _, err = run(capsys, "info", take)
    assert code == 2 and "take.json is unreadable" in one_line(err) and "emocap analyze RECORDING" in one_line(err)

    code, out, err = run(capsys, "analyze", fixture_path("single_face.mp4"), "--out", take, *ANALYZE, "--json")
    assert code == 0
    assert json.loads(out)["frames_with_face"] == 72
    rebuilt, good = chunk_bytes(take), chunk_bytes(good_take)
    # observations kept, fit and emotion recomputed exactly; the refinement needs --refine
    assert {n: rebuilt[n] == good[n] for n in rebuilt} == {n: True for n in CHUNKS if not n.startswith("microexpr/")}


def test_a_take_written_before_records_reads_unverified_and_still_heals(take, good_take, capsys):
    manifest = json.loads((take / "take.json").read_text())
    del manifest["chunks"], manifest["checksum"]
    (take / "take.json").write_text(json.dumps(manifest))
    (take / "take.backup.json").unlink()
    code, out, _ = run(capsys, "check", take)
    assert code == 0 and "unverified  fit/00000000.npz" in out
    assert run(capsys, "info", take)[0] == 0

    damage(take / "fit/00000000.npz", "truncate")  # no record: the zip itself says it is cut short
    code, _, err = run(capsys, "info", take)
    assert code == 2 and "fit/00000000.npz is damaged" in one_line(err)
    assert run(capsys, "check", take, "--repair")[0] == 0
    assert chunk_bytes(take) == chunk_bytes(good_take)
    assert records(take) == records(good_take)  # the repair recorded the old chunks too


def test_reads_raise_named_errors(take):
    damage(take / "fit/00000000.npz", "zero")
    (take / "emotion/timelines.npz").unlink()
    opened = Take.open(take)
    with pytest.raises(DamagedChunkError) as damaged:
        opened.read_fit_window(0)
    assert damaged.value.chunk == "fit/00000000.npz" and "SHA-256" in str(damaged.value)
    with pytest.raises(MissingChunkError):
        opened.read_emotion()


def test_chunks_in_the_middle_are_rebuilt_from_the_tracker_state_before_them(tmp_path, capsys):
    """Three observation chunks of 32 frames: the middle one and the last (partial) one are
    observed again from the state stored at the end of the chunk before; bytes identical."""
    good = tmp_path / "good"
    Pipeline(PipelineConfig(device="cpu", chunk_size=32)).run(fixture_path("single_face.mp4"), good)
    take = tmp_path / "take"
    shutil.copytree(good, take)
    damage(take / "observations/00000032.npz", "truncate")
    damage(take / "observations/00000064.npz", "delete")
    code, out, _ = run(capsys, "check", take)
    assert code == 1 and "damaged     observations/00000032.npz" in out and "missing     observations/00000064.npz" in out
    assert run(capsys, "check", take, "--repair")[0] == 0
    assert_identical(take, good)


def test_check_without_the_recording_names_what_cannot_be_repaired(take, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    shutil.copy(fixture_path("single_face.mp4"), clip)
    moved = tmp_path / "moved"
    Pipeline(PipelineConfig(device="cpu", model=None)).run(clip, moved)
    clip.unlink()
    damage(moved / "observations/00000000.npz", "truncate")
    code, _, err = run(capsys, "check", moved, "--repair")
    assert code == 2 and "cannot be repaired" in one_line(err) and "clip.mp4 is missing" in one_line(err)


def test_export_leaves_out_a_damaged_window_that_cannot_be_recomputed_and_states_the_gap(tmp_path, capsys):
    """Three fitted windows, the recording gone (nothing can be recomputed), the middle window
    damaged: the export writes the intact frames, holds the damaged ones as gaps, and says which
    in one line; the frames it exports are those of the undamaged take."""
    clip = tmp_path / "clip.mp4"
    shutil.copy(fixture_path("single_face.mp4"), clip)
    root = tmp_path / "t"
    Pipeline(PipelineConfig(device="cpu", fit=FitConfig(window=32))).run(clip, root)
    clip.unlink()
    whole = tmp_path / "whole.npz"
    assert run(capsys, "export", root, "--format", "curves_npz", "--out", whole)[0] == 0
    damage(root / "fit/00000032.npz", "truncate")

    code, out, err = run(capsys, "export", root, "--format", "curves_npz", "--out", tmp_path / "part.npz")
    assert code == 0 and "exported 72 frames" in out
    notes = [line for line in err.splitlines() if "fit/00000032.npz" in line]
    assert len(notes) == 1 and "frames 32-63 are gaps: fit/00000032.npz is damaged" in notes[0]
    part, good = import_curves(tmp_path / "part.npz"), import_curves(whole)
    assert np.isnan(part["expression"][32:64]).all()
    intact = np.r_[0:32, 64:72]
    assert np.array_equal(part["expression"][intact], good["expression"][intact])

    code, _, err = run(capsys, "export", root, "--format", "curves_npz", "--out", tmp_path / "head.npz", "--range", "0:32")
    assert code == 0 and "fit/00000032.npz" not in err  # a range without the gap states none


# ---- one writer at a time ----------------------------------------------------------------------
def test_a_second_writer_is_refused_while_readers_go_on(take, capsys):
    damage(take / "fit/00000000.npz", "truncate")
    writer = Pipeline(CONFIG).analyze(fixture_path("single_face.mp4"), take)
    next(writer)  # the first writer holds the lock from here on
    try:
        assert writer_of(take) == os.getpid()
        code, _, err = run(capsys, "analyze", fixture_path("single_face.mp4"), "--out", take, *ANALYZE)
        assert code == 2 and f"take {take} is being written by process {os.getpid()}" in one_line(err)
        with pytest.raises(TakeBusyError):
            TakeLock(take).acquire()
        damage(take / "emotion/timelines.npz", "zero")
        code, _, err = run(capsys, "check", take, "--repair")
        assert code == 2 and "is being written by process" in one_line(err)
        code, out, _ = run(capsys, "check", take)  # readers never wait
        assert code == 1 and f"process {os.getpid()} is writing this take now" in out
        assert "fit/00000000.npz" not in out  # the first writer repaired it already
    finally:
        writer.close()
    assert writer_of(take) is None
    assert run(capsys, "analyze", fixture_path("single_face.mp4"), "--out", take, *ANALYZE)[0] == 0


def test_the_lock_goes_with_a_killed_writer(take, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom core.take.lock import TakeLock\n"
         f"TakeLock({str(take)!r}).acquire()\nprint('locked', flush=True)\ntime.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = run(capsys, "analyze", fixture_path("single_face.mp4"), "--out", take, *ANALYZE)
        assert code == 2 and f"being written by process {holder.pid}" in one_line(err)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert run(capsys, "analyze", fixture_path("single_face.mp4"), "--out", take, *ANALYZE)[0] == 0


def test_overwrite_keeps_the_lock_and_refuses_a_folder_that_is_not_a_take(tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, "analyze", fixture_path("single_face.jpg"), "--out", folder, "--overwrite")
    assert code == 2 and "not a take folder" in one_line(err)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # not even a lock file


# ---- fuzzing -----------------------------------------------------------------------------------
def test_the_fuzzer_finds_tracebacks_and_hangs():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import fuzz_takes
    finally:
        sys.path.remove(str(ROOT / "scripts"))

    def broken() -> int:
        raise KeyError("fit")

    def stuck() -> int:
        time.sleep(5)
        return 0

    def two_lines() -> int:
        sys.stderr.write("emocap: one\nemocap: two\n")
        return 2

    assert fuzz_takes.run_command(broken, 5)[1] == "traceback"
    assert fuzz_takes.run_command(stuck, 0.2)[1] == "hang"
    assert fuzz_takes.run_command(two_lines, 5)[1] == "not-one-line"
    assert fuzz_takes.run_command(lambda: main(["info", "/nonexistent/take"]), 5)[1] == "refused"


def fuzz(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fuzz_takes.py"), *args, "--json"],
        capture_output=True, text=True, timeout=900, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return json.loads(result.stdout)


def test_seeded_fuzz_of_takes_recordings_and_flame_files(good_take):
    """300 damaged copies of take files (half of them as takes written before chunk records), the
    clip, the photo and a synthetic FLAME file, each read by a command in a worker process: no
    traceback, no hang, every refusal one line (scripts/fuzz_takes.py runs more)."""
    report = fuzz("--take", str(good_take), "--cases", "300", "--seed", "20261204", "--case-timeout", "20")
    assert report["cases"] == 300
    assert report["failed"] == [], json.dumps(report["failed"][:5], indent=1)
    assert report["refused"] >= 50 and report["ok"] >= 50  # both kinds of answer were exercised
    assert {key.split(":")[0] for key in report["by_target"]} >= {
        "info", "check", "export --format arkit_csv", "read recording", "load flame"}


def test_a_flame_file_with_corrupt_sparse_indices_is_refused(good_take):
    """Fuzz case 203 of this seed: corrupt sparse indices once crashed the interpreter in scipy."""
    report = fuzz("--take", str(good_take), "--first", "203", "--cases", "204", "--seed", "20261204")
    assert report["cases"] == 1 and report["failed"] == []


def test_a_flame_file_with_damaged_faces_is_refused(good_take):
    """Fuzz case 287 of seed 7: damaged faces or vertices once failed in the registration."""
    report = fuzz("--take", str(good_take), "--first", "287", "--cases", "288", "--seed", "7")
    assert report["cases"] == 1 and report["failed"] == []


def test_damaged_edits_are_named_by_check_and_export(take, capsys):
    (take / "edits.json").write_text('{"format": 1, "layers": [{"intensity": ')
    code, out, err = run(capsys, "check", take)
    assert code == 1 and "edits         damaged" in out and "edits.json is damaged" in one_line(err)
    code, _, err = run(capsys, "export", take, "--format", "arkit_csv", "--out", take.parent / "curves.csv")
    assert code == 2 and "edits.json is unreadable" in one_line(err)
