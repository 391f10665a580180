"""The observation stage of an analysis: every frame of the recording observed (core/observe/)
and stored chunk by chunk in the take (TAKE/observations/<first frame>.npz), resumed after the
last stored chunk. Tracking restarts at every chunk boundary from the state stored with the chunk
before, which is what makes a resumed run bit-identical to an uninterrupted one.

Its settings (chunk size, crop size, image frame rate) are the take's own: a take with other ones
is refused when it is opened (core/pipeline.py), so the stage is current once it is complete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from core.errors import CancelledError, VideoDecodeError
from core.observe import FaceObserver, FrameObservation, TrackState
from core.prefetch import prefetch
from core.results import FrameResult
from core.stages import RunContext, Stage
from core.take import ObservationArrays, Take
from core.take.observations import track_state_from_arrays, track_state_to_arrays
from core.take.records import CANCELLED, COMPLETE, RUNNING, ActorRecord, StageRecord


def actor_record(state: TrackState) -> ActorRecord | None:
    """How the tracker chose the performer (None before it chose one)."""
    if state.selection is None:
        return None
    box = state.selection.box
    return ActorRecord(state.selection.frame_index, state.selection.faces_found,
                       [round(v, 1) for v in (box.x0, box.y0, box.x1, box.y1)])


class ObserveStage(Stage):
    """The observation stage (core/stages.py). ``crop_images``: whether streamed observations
    carry the crop image (the take stores only its transform)."""

    name = "observations"

    def __init__(self, crop_images: bool = False) -> None:
        self.crop_images = crop_images

    def settings(self, ctx: RunContext) -> dict[str, Any]:
        return ctx.take.manifest.settings.result_settings()

    def record(self, take: Take) -> StageRecord:
        return StageRecord(take.manifest.settings.result_settings(), take.manifest.status)

    def replay(self, ctx: RunContext) -> Generator[FrameResult, None, TrackState]:
        """The stored frames, as FrameResults from the take; returns the tracker state after them."""
        total = ctx.source.info.frame_count
        state, position = TrackState(), 0
        for start in ctx.take.expected_chunk_starts():
            arrays, state = ctx.take.read_chunk(start)
            for row in range(len(arrays)):
                position += 1
                yield FrameResult(arrays.observation(row), position, total, from_take=True)
        return state

    def start(self, ctx: RunContext, settings: dict[str, Any]) -> None:
        ctx.take.manifest.status = RUNNING

    def resume(self, ctx: RunContext, settings: dict[str, Any]) -> Generator[FrameResult, None, None]:
        state = yield from self.replay(ctx)
        take, source = ctx.take, ctx.source
        manifest = take.manifest
        chunk = manifest.settings.chunk_size
        position = manifest.frames_done
        total = source.info.frame_count
        buffer: list[FrameObservation] = []
        # A frame is tracked here while the one before it is described (head pose, crop
        # transform, blendshapes) on a thread: MediaPipe releases the GIL while it runs.
        described: Future[FrameObservation] | None = None
        state_after: TrackState | None = None  # the tracking state after the frame being described

        def finish() -> Generator[FrameResult, None, None]:
            """Hand on the frame being described; store its chunk when full."""
            nonlocal described, position, buffer
            if described is None:
                return
            observation, described = described.result(), None
            buffer.append(dataclasses.replace(observation, crop=None))
            position += 1
            yield FrameResult(observation, position, total)
            if len(buffer) == chunk:
                store(take, buffer, state_after)
                buffer = []

        with FaceObserver(crop_size=manifest.settings.crop_size, crop_images=self.crop_images) as observer, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="face-description") as describing:
            observer.state = state
            try:
                for index, image in prefetch(source.iter_frames(start=position)):
                    if ctx.cancel is not None and ctx.cancel.is_set():
                        manifest.status = CANCELLED
                        take.save_manifest()
                        raise CancelledError(
                            f"analysis cancelled at frame {index}; {manifest.frames_done} frames are "
                            f"stored in {take.root} and a new run resumes from there"
                        )
                    if index % chunk == 0:
                        # Round-trip through the stored form so that a resumed run starts from
                        # bit-identical state.
                        observer.reset(track_state_from_arrays(track_state_to_arrays(observer.state)))
                    tracked = observer.track(index, float(source.timestamps[index]), image)
                    yield from finish()
                    described, state_after = describing.submit(observer.describe, tracked, image), observer.state
                yield from finish()
            except VideoDecodeError as err:
                yield from finish()
                manifest.warnings.append(f"decoding stopped at frame {position}: {err}")
                manifest.video.truncated_at = position
            if buffer:
                store(take, buffer, observer.state)
        if source.info.truncated_at is not None and not any("truncated" in w for w in manifest.warnings):
            manifest.warnings.append(
                f"the source is truncated: frames from {source.info.truncated_at} on are unreadable"
            )
        add_face_warnings(take)
        manifest.status = COMPLETE
        take.save_manifest()


def store(take: Take, buffer: list[FrameObservation], state: TrackState) -> None:
    """Store one chunk of observed frames and what the manifest counts of them."""
    arrays = ObservationArrays.from_observations(buffer)
    take.write_chunk(arrays, state)
    manifest = take.manifest
    manifest.frames_with_face += int(arrays.has_face.sum())
    manifest.actor = actor_record(state) or manifest.actor
    manifest.frames_done = int(arrays.index[-1]) + 1
    take.save_manifest()


def add_face_warnings(take: Take) -> None:
    """The warnings of a finished observation: no face at all, several faces, frames without one."""
    m = take.manifest
    if m.frames_with_face == 0:
        m.warnings.append(f"no face found in any of the {m.frames_done} frames")
        return
    if m.actor and m.actor.faces_found > 1:
        x0, y0, x1, y1 = m.actor.box
        m.warnings.append(
            f"{m.actor.faces_found} faces in frame {m.actor.frame}; following the largest "
            f"(x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px)"
        )
    missing = m.frames_done - m.frames_with_face
    if missing:
        m.warnings.append(f"no face in {missing} of {m.frames_done} frames (flagged, not filled in)")
