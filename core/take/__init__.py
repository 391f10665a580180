"""Take folders: compact, resumable storage of one analysed recording.

The only code that knows a take's folder layout and its manifest (take.json): ``store`` (Take:
typed reads and writes of every stage's results), ``records`` (the manifest's typed records),
``manifest`` (take.json, its checksum and backup), ``integrity`` and ``health`` (verified reads,
what is damaged), ``lock`` (one writer at a time), ``observations`` (the observation arrays)."""

from core.take.observations import ObservationArrays
from core.take.store import Take, TakeManifest, source_fingerprint

__all__ = ["Take", "TakeManifest", "ObservationArrays", "source_fingerprint"]
