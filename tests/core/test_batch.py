"""``emocap batch`` on a local Ray cluster that this module starts, bound to 127.0.0.1 only.

One cluster (2 CPUs, no dashboard) serves every test here; the recordings are the short fixtures
(single_face.mp4: 72 frames, no_face.mp4) and a corrupt file, analysed without emotion, and for the
killed worker the 472-frame Wolfgang clip."""

import dataclasses
import json
import os
import shutil
import signal
import socket
import time

import numpy as np
import pytest

from core.batch.inputs import assign_takes, discover, find_recordings
from core.batch.runner import BatchRunner
from core.batch.settings import BatchSettings
from core.batch.summary import COMPLETE, FAILED, UNCHANGED
from core.batch.work import export_path
from core.take import Take
from tests.conftest import fixture_path, run_cli

SETTINGS = BatchSettings(exports=("arkit_csv",))
SETTINGS = dataclasses.replace(SETTINGS, analysis=dataclasses.replace(SETTINGS.analysis, emotion=False, device="cpu"))


# -- discovery and names (no Ray) ------------------------------------------------------------
def test_inputs_are_found_in_folders_and_lists_and_named_without_collisions(tmp_path):
    shoot = tmp_path / "shoot"
    for cam in ("cam_a", "cam_b"):
        (shoot / "day1" / cam).mkdir(parents=True)
        shutil.copy(fixture_path("single_face.mp4"), shoot / "day1" / cam / "take 1.mp4")
    stills = shoot / "stills"
    stills.mkdir()
    shutil.copy(fixture_path("single_face.jpg"), stills / "f0.jpg")
    (shoot / "day1" / "cam_a" / "slate.jpg").write_bytes(b"beside a video")
    (shoot / ".hidden").mkdir()
    os.symlink(fixture_path("no_face.mp4"), shoot / ".hidden" / "x.mp4")
    (shoot / "links").mkdir()
    os.symlink(fixture_path("no_face.mp4"), shoot / "links" / "link.mp4")  # the file the list names too
    listing = tmp_path / "more.txt"
    listing.write_text(f"# extra\n{fixture_path('no_face.mp4')}\nmissing.mov  # not there\n\n")

    sources, notes = discover([shoot, listing])
    assert sources == sorted([shoot / "day1" / "cam_a" / "take 1.mp4", shoot / "day1" / "cam_b" / "take 1.mp4",
                              stills, fixture_path("no_face.mp4"), tmp_path / "missing.mov"])
    assert len(notes) == 1 and notes[0].startswith("1 image(s) beside videos in " + str(shoot / "day1" / "cam_a"))
    assert shoot / "links" / "link.mp4" in discover([shoot])[0]  # a link is kept when nothing names its file

    out = tmp_path / "takes"
    recordings = assign_takes(sources, out)
    names = [r.name for r in recordings]
    assert len(set(names)) == len(names)
    takes = {r.source: r.name for r in recordings}
    assert takes[stills] == "stills" and takes[fixture_path("no_face.mp4")] == "no_face"
    cams = [takes[s] for s in sources if s.name == "take 1.mp4"]
    assert all(n.startswith("take_1-") for n in cams)  # same stem: both get their path's digest
    assert assign_takes(list(reversed(sources)), out) == list(reversed(recordings))  # order does not matter


def test_an_existing_take_keeps_its_name(tmp_path):
    """A take already in the output folder keeps its name for its recording, whatever else the
    batch holds; another recording with the same stem gets a new name."""
    from core.take.manifest import MANIFEST_NAME

    a, b = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4"
    for p in (a, b):
        p.parent.mkdir()
        shutil.copy(fixture_path("single_face.mp4"), p)
    out = tmp_path / "takes"
    (out / "clip").mkdir(parents=True)
    (out / "clip" / MANIFEST_NAME).write_text(json.dumps({"source": {"path": str(b)}}))
    names = {r.source: r.name for r in assign_takes([a, b], out)}
    assert names[b] == "clip" and names[a].startswith("clip-")
    (out / "half").mkdir()
    (out / "half" / ".writer.lock").write_text("")  # a first run that stopped before its manifest
    half = tmp_path / "half.mov"
    assert assign_takes([half], out)[0].name == "half"


# -- on Ray ----------------------------------------------------------------------------------
def _listening_sockets_of_descendants() -> list[str]:
    """The local addresses of listening TCP sockets held by this process's descendants (Ray's
    GCS, raylet and workers), read from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    family, frontier = set(), {os.getpid()}
    while frontier:
        family |= frontier
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - family
    inodes = set()
    for pid in family - {os.getpid()}:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = []
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    raw = bytes.fromhex(fields[1].split(":")[0])
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                    ip = socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6, words)
                    addresses.append(ip)
    return addresses


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance with 2 CPUs, bound to 127.0.0.1 (core.batch.cluster.start_local)."""
    from core.batch import cluster

    cluster.start_local(2)
    import ray

    yield ray.get_runtime_context().gcs_address
    cluster.shutdown()


def test_the_cluster_listens_on_the_loopback_interface_only(ray_cluster):
    import ray

    assert ray_cluster.startswith("127.0.0.1:")
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    ray.get(ray.remote(lambda: 1).remote())  # a worker is up, with its own server
    addresses = _listening_sockets_of_descendants()
    assert len(addresses) >= 3  # GCS, raylet, a worker: the check sees them
    assert set(addresses) <= {"127.0.0.1", "::ffff:127.0.0.1"}, addresses


@pytest.fixture(scope="module")
def shoot(tmp_path_factory):
    """The fixtures of a small shoot: a face, no face, a corrupt file."""
    folder = tmp_path_factory.mktemp("shoot")
    corrupt = folder / "corrupt.mov"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypqt  " + bytes(range(256)) * 40)
    return [fixture_path("single_face.mp4"), fixture_path("no_face.mp4"), corrupt]


@pytest.fixture(scope="module")
def clean_batch(ray_cluster, shoot, tmp_path_factory):
    """The shoot analysed once: (recordings, summary, progress reports)."""
    out = tmp_path_factory.mktemp("takes")
    recordings, _ = find_recordings(shoot, out)
    reports = []
    summary = BatchRunner(SETTINGS, on_progress=lambda p, event: reports.append(event)).run(recordings)
    return recordings, summary, reports


def test_a_batch_makes_a_take_per_recording_and_reports_the_failures(clean_batch):
    recordings, summary, reports = clean_batch
    by_name = {r.name: r for r in summary.results}
    assert sorted(by_name) == ["corrupt", "no_face", "single_face"]
    recording = {r.name: r for r in recordings}["single_face"]
    face = by_name["single_face"]
    assert face.status == COMPLETE and face.frames == 72 and face.frames_with_face == 72 and face.attempts == 1
    assert face.exports == ["single_face_arkit_csv.csv"]
    csv = export_path(recording, "arkit_csv")
    assert csv.parent == recording.take.parent
    assert len(csv.read_text().splitlines()) == 1 + 72
    assert Take.open(recording.take).read_fit(complete=True) is not None
    assert by_name["no_face"].status == FAILED and by_name["no_face"].reason.startswith("no face found in")
    assert by_name["corrupt"].status == FAILED and "corrupt.mov" in by_name["corrupt"].reason
    assert "\n" not in by_name["corrupt"].reason
    assert not summary.ok and len(summary.failed) == 2
    assert {e["name"] for e in reports} >= {"single_face", "no_face"}
    assert any(e["step"] == "fitting" for e in reports if e["name"] == "single_face")
    assert "single_face  complete" in summary.text()


def _state_of(folder):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*")
            if p.is_file() and p.name != ".writer.lock"}


def test_a_rerun_does_nothing(clean_batch):
    recordings, first, _ = clean_batch
    out = recordings[0].take.parent
    before = _state_of(out)
    summary = BatchRunner(SETTINGS).run(find_recordings([r.source for r in recordings], out)[0])
    assert sorted((r.name, r.status) for r in summary.results) == [
        ("corrupt", FAILED), ("no_face", FAILED), ("single_face", UNCHANGED)]
    assert [r.reason for r in summary.results] == [r.reason for r in first.results]
    assert all(r.exports == [] for r in summary.results)
    assert _state_of(out) == before


def test_a_killed_worker_is_retried_and_its_take_equals_a_clean_run(ray_cluster, tmp_path):
    """On the 472-frame Wolfgang clip, whose fit takes seconds (single_face's is over before a kill
    lands), so the worker dies between its stored observations and the end of its fit."""
    recordings = {}
    for run in ("clean", "killed"):
        (tmp_path / run).mkdir()
        shutil.copy(fixture_path("WolfgangLanger_Pexels.mp4"), tmp_path / run / "clip.mp4")
        recordings[run] = find_recordings([tmp_path / run / "clip.mp4"], tmp_path / run / "takes")[0][0]
    clean, recording = recordings["clean"], recordings["killed"]
    assert BatchRunner(SETTINGS).run([clean]).results[0].status == COMPLETE
    killed, reports = [], []

    def kill_once_observed(progress, event):
        """Once the worker has stored the clip's observations (and is fitting), SIGKILL it."""
        reports.append(event)
        if killed or event["step"] != "observing" or event["position"] != event["total"]:
            return
        manifest = recording.take / "take.json"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = json.loads(manifest.read_text()) if manifest.exists() else {}
            if stored.get("status") == "complete":
                break
            time.sleep(0.05)
        os.kill(event["pid"], signal.SIGKILL)
        killed.append(stored)

    summary = BatchRunner(SETTINGS, on_progress=kill_once_observed).run([recording])
    result = summary.results[0]
    assert killed, "the worker was never seen observing"
    assert killed[0]["status"] == "complete"  # its observations were stored ...
    assert killed[0]["fit"] is None or killed[0]["fit"]["status"] != "complete"  # ... and its fit was not
    assert result.status == COMPLETE and result.attempts == 2, result
    retry = reports[[e["step"] for e in reports].index("starting", 1):]
    observed = [e for e in retry if e["step"] == "observing"]
    assert observed and all(e["from_take"] for e in observed)  # the retry replays the stored chunk
    assert result.exports == ["clip_arkit_csv.csv"]
    resumed, fit = Take.open(recording.take).read_fit(), Take.open(clean.take).read_fit()
    for field in dataclasses.fields(fit):
        assert np.array_equal(getattr(resumed, field.name), getattr(fit, field.name), equal_nan=True), field.name
    assert export_path(recording, "arkit_csv").read_text().splitlines()[1:] == \
        export_path(clean, "arkit_csv").read_text().splitlines()[1:]


def test_the_command_joins_a_cluster_by_address_and_exits_non_zero_on_failures(clean_batch, ray_cluster):
    recordings = {r.name: r for r in clean_batch[0]}
    out = recordings["single_face"].take.parent
    result = run_cli("batch", str(recordings["single_face"].source), str(recordings["corrupt"].source), "--out", str(out),
                     "--export", "arkit_csv", "--address", ray_cluster, "--json", timeout=180)
    assert result.returncode == 4, result.stderr
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"complete": 0, "unchanged": 1, "failed": 1, "cancelled": 0}
    assert summary["cluster"].startswith("local Ray")
    assert "1 of 2 recordings failed: corrupt:" in result.stderr


def test_the_command_refuses_unknown_export_formats(tmp_path):
    result = run_cli("batch", str(fixture_path("single_face.mp4")), "--out", str(tmp_path), "--export", "fbx,nope")
    assert result.returncode == 2 and "unknown export format 'nope'" in result.stderr
    assert not any(tmp_path.iterdir())


def test_a_cancelled_batch_stops_its_tasks_and_reports_them(ray_cluster, tmp_path, monkeypatch):
    """Through the board only: Ray's interrupt could land in an import of the reused worker."""
    import threading

    import ray

    from core.batch.summary import CANCELLED

    def no_interrupt(*args, **kwargs):
        raise AssertionError("a batch cancel must not interrupt its workers")

    monkeypatch.setattr(ray, "cancel", no_interrupt)

    clips = []
    for name in ("one", "two", "three"):
        clips.append(tmp_path / f"{name}.mp4")
        # the long clip (472 frames): a short one could finish before the cancel reached its worker
        shutil.copy(fixture_path("WolfgangLanger_Pexels.mp4"), clips[-1])
    recordings, _ = find_recordings(clips, tmp_path / "takes")
    cancel = threading.Event()
    runner = BatchRunner(SETTINGS, workers=1, cancel=cancel,
                         on_progress=lambda p, event: event["step"] == "starting" and cancel.set())
    summary = runner.run(recordings)
    assert [r.status for r in summary.results] == [CANCELLED] * 3
    assert all("rerun resumes" in r.reason for r in summary.results)
    assert not (recordings[1].take / "take.json").exists()  # never started


def test_a_cancel_reaches_a_running_task_through_its_progress_reports(ray_cluster, tmp_path):
    """Without Ray's interrupt: the board answers the task's first report with the cancel, and
    the task stops (an interrupt can land in code that swallows it)."""
    import ray

    from core.batch.runner import ProgressBoard, _run_task
    from core.errors import CancelledError

    clip = tmp_path / "one.mp4"
    shutil.copy(fixture_path("single_face.mp4"), clip)
    recordings, _ = find_recordings([clip], tmp_path / "takes")
    board = ray.remote(num_cpus=0)(ProgressBoard).remote()
    ray.get(board.cancel.remote())
    with pytest.raises(ray.exceptions.RayTaskError) as caught:
        ray.get(ray.remote(num_cpus=1, max_retries=0)(_run_task).remote(recordings[0], SETTINGS, board))
    assert isinstance(caught.value.cause, CancelledError)
    assert [e["step"] for e in ray.get(board.take.remote())] == ["starting"]  # it stopped at its first report
    ray.kill(board)


def test_an_unreachable_cluster_is_a_one_line_error(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("batch", str(fixture_path("single_face.mp4")), "--out", str(tmp_path / "takes"),
                     "--address", f"127.0.0.1:{port}", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"emocap: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused"
    assert not (tmp_path / "takes").exists()


def test_a_missing_performer_profile_stops_the_batch_before_it_starts(tmp_path):
    result = run_cli("batch", str(fixture_path("single_face.mp4")), "--out", str(tmp_path / "takes"),
                     "--performer", str(tmp_path / "nobody.npz"))
    assert result.returncode == 2
    assert "performer profile" in result.stderr and "not found" in result.stderr
    assert not (tmp_path / "takes").exists() or not any((tmp_path / "takes").iterdir())
