"""Healing a take before the pipeline resumes it: damaged chunks are rebuilt or dropped for the
stages to recompute, and a lost manifest is rebuilt from the recording and the chunks.

The pipeline (core/pipeline.py) calls :func:`heal` on every take it opens for writing, so
``emocap analyze`` and ``emocap check --repair`` repair the same way:

- a damaged or missing observation chunk is observed again from the recording, from the tracker
  state stored at the end of the chunk before it (the state every run restarts from at a chunk
  boundary), so the rebuilt chunk is byte-identical to the one written first when the observer is
  deterministic; its recorded SHA-256 says whether it is. When it differs, the later stages are
  recomputed;
- a damaged fitted window is dropped, and the fit resumes there (a damaged identity restarts the
  fit); :func:`fit_changed` then says whether the refitted chunks equal their records, else the
  emotion and refinement stages are recomputed too;
- damaged emotion timelines or a damaged refinement are dropped and their stage recomputed.

What was rebuilt is logged (a warning) and returned as one line per chunk.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import DamagedChunkError, TakeError, VideoDecodeError
from core.observe import FaceObserver, TrackState
from core.observe.stage import actor_record
from core.take import ObservationArrays, Take, TakeManifest
from core.take.health import diagnose
from core.take.integrity import ChunkRecord, parse_npz, read_chunk_bytes
from core.take.observations import track_state_from_arrays, track_state_to_arrays
from core.take.records import RUNNING
from core.take.store import (
    CLOSURES_CHUNK,
    FIT_DIR,
    IDENTITY_CHUNK,
    REFINED_CHUNK,
    STAGE_DIRS,
    observation_chunk_name,
)
from core.video import FrameSource

log = logging.getLogger(__name__)


@dataclass
class HealReport:
    """What :func:`heal` did: one line per rebuilt or dropped chunk, and the records of the fit
    chunks dropped for refitting (None: unrecorded), to compare after the fit."""

    lines: list[str] = field(default_factory=list)
    dropped_fit: dict[str, ChunkRecord | None] = field(default_factory=dict)

    def say(self, take: Take, line: str) -> None:
        log.warning("take %s: %s", take.root, line)
        self.lines.append(line)


def heal(take: Take, source: FrameSource, crop_size: int, stages: set[str]) -> HealReport:
    """Check every chunk of ``take`` and repair what is damaged (see the module docstring).
    ``stages``: the later stages this run computes ("fit", "emotion", "microexpr"); a damaged chunk
    of another stage is left in place (and named) rather than dropped, as nothing would rebuild it.
    The caller holds the take's writer lock."""
    report = HealReport()
    bad = diagnose(take).bad
    if not bad:
        return report
    m = take.manifest
    for chunk in [c for c in bad if c.stage not in stages and c.stage != "observations"]:
        bad.remove(chunk)
        option = {"fit": "the fit", "emotion": "--emotion", "microexpr": "--refine"}[chunk.stage]
        report.say(take, f"{chunk.name} is {chunk.reason}; this run does not compute it: "
                         f"run with {option} to rebuild it")
    downstream_stale = False
    for chunk in (c for c in bad if c.stage == "observations"):
        start = int(Path(chunk.name).stem)
        old = m.record(chunk.name)
        new = rebuild_observation_chunk(take, source, start, crop_size)
        exact = old is not None and new == old
        report.say(take, f"rebuilt {chunk.name} ({chunk.reason}) from the recording"
                   + ("" if exact else "; it differs from what was first stored, so the later stages are recomputed"))
        downstream_stale |= not exact
    if any(c.stage == "observations" for c in bad):
        m.frames_with_face = int(take.load_observations().has_face.sum())
    if downstream_stale:
        drop_fit(take, report, "the observations changed")
        take.reset_emotion()
        drop_refinement(take)
    for chunk in (c for c in bad if c.stage == "fit" and m.fit is not None):
        if chunk.name == CLOSURES_CHUNK:  # derived from the fit: the closures stage computes it again
            take.remove_chunk(chunk.name)
            report.say(take, f"{chunk.name} is {chunk.reason}: blinks and lip contacts are recomputed")
            continue
        if chunk.name == IDENTITY_CHUNK:
            drop_fit(take, report, f"{chunk.name} is {chunk.reason}")
        elif chunk.name in report.dropped_fit or not take.has_chunk(chunk.name) and chunk.state != "missing":
            continue
        else:
            report.dropped_fit[chunk.name] = m.record(chunk.name)
            take.remove_chunk(chunk.name)
            m.fit.status = RUNNING
            report.say(take, f"{chunk.name} is {chunk.reason}: refitting it from the observations")
    for chunk in (c for c in bad if c.stage == "emotion"):
        take.reset_emotion()
        report.say(take, f"{chunk.name} is {chunk.reason}: the emotion stage is recomputed")
    for chunk in (c for c in bad if c.stage == "microexpr"):
        take.remove_chunk(chunk.name)
        if chunk.name == REFINED_CHUNK and m.microexpr is not None:
            drop_refinement(take)
            report.say(take, f"{chunk.name} is {chunk.reason}: the refinement is recomputed")
    take.save_manifest()
    return report


def fit_changed(take: Take, report: HealReport) -> bool:
    """After the fit stage: whether a refitted chunk differs from its record (or had none), in
    which case the emotion and refinement stages are dropped for recomputing."""
    changed = [n for n, old in report.dropped_fit.items()
               if n != CLOSURES_CHUNK and (old is None or take.manifest.record(n) != old)]
    if changed:
        take.reset_emotion()
        drop_refinement(take)
        take.save_manifest()
        report.say(take, f"the refitted {', '.join(changed)} differ from what was first stored: "
                         "emotion and refinement are recomputed")
    elif report.dropped_fit:
        report.say(take, f"refitted {', '.join(report.dropped_fit)}: identical to what was first stored")
    return bool(changed)


def drop_fit(take: Take, report: HealReport, why: str) -> None:
    """Remove every fitted chunk (the fit stage starts over), remembering their records."""
    m = take.manifest
    if m.fit is None:
        return
    for name, value in (m.chunks or {}).items():
        if name.startswith(f"{FIT_DIR}/"):
            report.dropped_fit.setdefault(name, ChunkRecord.from_dict(value))
    take.reset_fit()
    m.fit.status = RUNNING
    report.say(take, f"{why}: the fit is recomputed from the observations")


def drop_refinement(take: Take) -> None:
    """Remove the refinement; the stage (and its summary) is redone."""
    if take.manifest.microexpr is not None:
        take.reset_refinement()
        take.manifest.microexpr.status = RUNNING
        take.manifest.microexpr.summary = None


def record_unverified(take: Take) -> list[str]:
    """Record the size and SHA-256 of every chunk that has no record but reads back whole (a take
    written before chunks were recorded), so that later reads verify them; returns their names.
    The caller holds the take's writer lock."""
    names = []
    for chunk in diagnose(take).chunks:
        if chunk.state == "unverified":
            take.manifest.set_record(chunk.name, ChunkRecord.of(read_chunk_bytes(take.root, chunk.name, None)))
            names.append(chunk.name)
    if names:
        take.save_manifest()
        log.info("take %s: recorded %d chunks written before chunk records", take.root, len(names))
    return names


# ---- observations ---------------------------------------------------------------------------
def observe_range(source: FrameSource, start: int, stop: int, state: TrackState, crop_size: int
                  ) -> tuple[ObservationArrays, TrackState]:
    """Observe frames [start, stop) from the tracker state ``state``, as the pipeline does from a
    chunk boundary; returns the observations and the tracker state after them."""
    observations = []
    with FaceObserver(crop_size=crop_size, crop_images=False) as observer:
        observer.reset(track_state_from_arrays(track_state_to_arrays(state)))
        for index, image in source.iter_frames(start=start, stop=stop):
            observation = observer.observe(index, float(source.timestamps[index]), image)
            observations.append(dataclasses.replace(observation, crop=None))
        return ObservationArrays.from_observations(observations), observer.state


def rebuild_observation_chunk(take: Take, source: FrameSource, start: int, crop_size: int) -> ChunkRecord:
    """Observe the frames of the chunk at ``start`` again and store them; returns its record."""
    chunk = take.manifest.settings.chunk_size
    stop = min(start + chunk, take.manifest.frames_done)
    name = observation_chunk_name(start)
    state = TrackState() if start == 0 else take.read_chunk(start - chunk)[1]
    try:
        arrays, after = observe_range(source, start, stop, state, crop_size)
    except VideoDecodeError as err:
        raise DamagedChunkError(take.root, name, f"damaged, and the recording cannot be read there ({err})") from err
    if len(arrays) != stop - start:
        raise DamagedChunkError(take.root, name, f"damaged, and the recording ends at frame {start + len(arrays)}")
    return take.write_chunk(arrays, after)


# ---- a lost manifest -------------------------------------------------------------------------
def rebuild_manifest(root: Path, source: FrameSource, manifest: TakeManifest) -> Take:
    """A take whose take.json and backup are both lost or damaged, rebuilt for the recording
    ``source`` with the new ``manifest`` (its source, video and settings): the observation chunks
    that read back whole and match the recording's frames and time stamps are kept (from frame 0,
    up to the first that does not), and observing resumes after them. The later stages' settings
    were only in the manifest, so their chunks are removed and they are recomputed."""
    take = Take(root, manifest)
    chunk = manifest.settings.chunk_size
    kept = 0
    for start in range(0, source.info.frame_count, chunk):
        name = observation_chunk_name(start)
        arrays = _matching_chunk(take, source, name, start)
        if arrays is None:
            break
        observations, state = arrays
        take.manifest.set_record(name, ChunkRecord.of(read_chunk_bytes(root, name, None)))
        manifest.frames_done = start + len(observations)
        manifest.frames_with_face += int(observations.has_face.sum())
        manifest.actor = actor_record(state) or manifest.actor
        kept += 1
        if len(observations) < chunk:
            break
    for path in (root / STAGE_DIRS[0]).glob("*.npz"):
        if path.name not in {Path(n).name for n in manifest.chunks or {}}:
            path.unlink()
    for folder in STAGE_DIRS[1:]:
        shutil.rmtree(root / folder, ignore_errors=True)
    try:
        (root / STAGE_DIRS[0]).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TakeError(f"cannot write to take {root}: {err.strerror}") from err
    manifest.status = RUNNING
    take.save_manifest()
    log.warning("take %s: take.json was lost or damaged; rebuilt it from the recording and %d intact observation "
                "chunks (frames 0-%d); the later stages are recomputed", root, kept, manifest.frames_done)
    return take


def _matching_chunk(take: Take, source: FrameSource, name: str, start: int):
    """The observations and state of the chunk ``name`` when it reads back whole and belongs to
    ``source`` (its frames' indices and time stamps), else None."""
    try:
        data = parse_npz(take.root, name, read_chunk_bytes(take.root, name, None))
        observations = ObservationArrays.from_npz_dict(data)
        state = track_state_from_arrays(data)
    except (DamagedChunkError, ValueError, KeyError, TypeError, IndexError):
        return None
    index = np.arange(start, start + len(observations))
    if not len(observations) or not np.array_equal(observations.index, index) or index[-1] >= len(source.timestamps):
        return None
    if not np.array_equal(observations.timestamp, source.timestamps[index]):
        return None
    return observations, state
