"""Take folders: compact, resumable storage of one analysed recording."""

from core.take.observations import ObservationArrays
from core.take.store import Take, TakeManifest, source_fingerprint

__all__ = ["Take", "TakeManifest", "ObservationArrays", "source_fingerprint"]
