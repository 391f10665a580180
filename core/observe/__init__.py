"""Face observation: detection, one-actor tracking, 478 landmarks with iris, head pose, crops."""

from core.observe.observer import FaceObserver
from core.observe.types import ActorSelection, FaceBox, FrameObservation, TrackState

__all__ = ["FaceObserver", "FrameObservation", "FaceBox", "TrackState", "ActorSelection"]
