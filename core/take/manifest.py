"""The manifest of a take (``take.json``): what it is, how far each stage got, what it stores.

The manifest is written atomically twice, as ``take.json`` and then ``take.backup.json``, and
carries a SHA-256 of its own content (``checksum``), so a manifest cut short, zero-filled or
altered is recognised (not read as a take with odd values) and its backup is used instead.
Manifests written before the checksum existed are read after a check of their structure.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.atomic import write_json_atomic
from core.errors import DamagedManifestError, TakeError, TimecodeError
from core.take.integrity import ChunkRecord
from core.take.records import (
    RUNNING,
    STATUSES,
    ActorRecord,
    ClosureRecord,
    EmotionRecord,
    FitRecord,
    RefineRecord,
    SourceRecord,
    TakeSettings,
    VideoRecord,
    record_from_dict,
    record_to_dict,
)
from core.timecode import Timecode

log = logging.getLogger(__name__)

TAKE_FORMAT = 1
MANIFEST_NAME = "take.json"
BACKUP_NAME = "take.backup.json"


@dataclass
class TakeManifest:
    """Contents of take.json. ``status``: running | cancelled | complete (of the observation
    stage). ``chunks``: the size and SHA-256 of every stored chunk by its path in the take (None in
    takes written before chunks were recorded: their chunks are read unverified)."""

    source: SourceRecord
    video: VideoRecord
    settings: TakeSettings
    status: str = RUNNING
    frames_done: int = 0
    frames_with_face: int = 0
    actor: ActorRecord | None = None
    fit: FitRecord | None = None
    emotion: EmotionRecord | None = None
    microexpr: RefineRecord | None = None
    closures: ClosureRecord | None = None  # blinks and lip contacts (core/closures/)
    start_timecode: str | None = None  # the timecode of frame 0 given with --start-timecode (over the recording's)
    warnings: list[str] = field(default_factory=list)
    chunks: dict[str, dict[str, Any]] | None = field(default_factory=dict)
    format: int = TAKE_FORMAT
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    updated: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TakeManifest:
        """The manifest of a take.json's content (checked by :func:`structure_problem`)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known.setdefault("chunks", None)  # written before chunks were recorded
        known["source"] = record_from_dict(SourceRecord, data["source"])
        known["video"] = record_from_dict(VideoRecord, data["video"])
        known["settings"] = record_from_dict(TakeSettings, data["settings"])
        stages = {"actor": lambda d: record_from_dict(ActorRecord, d), "fit": lambda d: record_from_dict(FitRecord, d),
                  "emotion": EmotionRecord.from_dict, "microexpr": RefineRecord.from_dict, "closures": ClosureRecord.from_dict}
        for key, read in stages.items():
            known[key] = read(data[key]) if data.get(key) is not None else None
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of take.json (without its checksum)."""
        return record_to_dict(self)

    def timecode(self) -> Timecode | None:
        """The timecode of the take's frame 0: the one given with ``--start-timecode``, else the
        recording's own (``video.timecode``), else None (takes made before timecodes were read
        have neither). Its rate is the video's exact rate."""
        label = self.start_timecode or self.video.timecode
        if not label:
            return None
        try:
            return Timecode.parse(label, self.video.exact_rate)
        except TimecodeError as err:
            log.warning("the take's timecode %s is not used: %s", label, err)
            return None

    def record(self, name: str) -> ChunkRecord | None:
        """The recorded size and digest of the chunk ``name`` (None: not recorded)."""
        return ChunkRecord.from_dict((self.chunks or {}).get(name))

    def set_record(self, name: str, record: ChunkRecord) -> None:
        if self.chunks is None:
            self.chunks = {}
        self.chunks[name] = record.to_dict()

    def forget(self, prefix: str) -> None:
        """Drop the records of the chunks whose path starts with ``prefix``."""
        if self.chunks:
            self.chunks = {k: v for k, v in self.chunks.items() if not k.startswith(prefix)}


def checksum(data: dict[str, Any]) -> str:
    """SHA-256 of a manifest's content (without its own checksum), independent of formatting."""
    content = {k: v for k, v in data.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_manifest(root: Path, manifest: TakeManifest) -> None:
    """Write take.json, then its backup, each atomically, with the content's checksum."""
    data = manifest.to_dict()
    data["checksum"] = checksum(data)
    for name in (MANIFEST_NAME, BACKUP_NAME):
        write_json_atomic(Path(root) / name, data)


def read_manifest(root: Path) -> tuple[TakeManifest, str]:
    """The take's manifest and the file it came from (take.json, or its backup when take.json is
    missing or damaged). Raises TakeError when the folder has neither (not a take folder), and
    DamagedManifestError when neither is intact."""
    root = Path(root)
    problems = []
    for name in (MANIFEST_NAME, BACKUP_NAME):
        try:
            return parse_manifest(root / name), name
        except FileNotFoundError:
            continue
        except DamagedManifestError as err:
            problems.append(err)
    if not problems:
        raise TakeError(f"{root} is not a take folder (no {MANIFEST_NAME})")
    raise DamagedManifestError(
        f"{problems[0]}; its backup is {'damaged too' if len(problems) > 1 else 'missing'}: rerun "
        f"'emocap analyze RECORDING --out {root}' to rebuild it"
    )


def parse_manifest(path: Path) -> TakeManifest:
    """One manifest file, checked. Raises FileNotFoundError when it does not exist, TakeError for
    another take format, DamagedManifestError when it is unreadable or altered."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as err:
        raise DamagedManifestError(f"{path} is unreadable: {err}") from err
    try:
        data = json.loads(text)
    except ValueError as err:
        raise DamagedManifestError(f"{path} is unreadable (cut short or damaged: {err})") from err
    if not isinstance(data, dict):
        raise DamagedManifestError(f"{path} is unreadable (not a take manifest)")
    if "checksum" in data and data["checksum"] != checksum(data):
        raise DamagedManifestError(f"{path} is damaged (its content differs from its checksum)")
    if data.get("format") != TAKE_FORMAT:
        if "checksum" not in data and not isinstance(data.get("format"), int):
            raise DamagedManifestError(f"{path} is unreadable (no take format)")
        raise TakeError(f"{path.parent} has take format {data.get('format')}; this EmoCap reads {TAKE_FORMAT}")
    problem = structure_problem(data)
    if problem:
        raise DamagedManifestError(f"{path} is unreadable ({problem})")
    return TakeManifest.from_dict(data)


def structure_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a manifest's content, or None (values EmoCap relies on)."""
    def is_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    checks = [
        (isinstance(data.get("source"), dict), "source"),
        (isinstance(data.get("video"), dict), "video"),
        (isinstance(data.get("settings"), dict), "settings"),
    ]
    for ok, key in checks:
        if not ok:
            return f"no {key}"
    source, video, settings = data["source"], data["video"], data["settings"]
    if not (isinstance(source.get("path"), str) and isinstance(source.get("sha1"), str) and is_int(source.get("size"))):
        return "bad source"
    if not (isinstance(video.get("fps"), (int, float)) and is_int(video.get("width")) and is_int(video.get("height"))):
        return "bad video"
    if not is_int(settings.get("chunk_size")) or settings["chunk_size"] <= 0:
        return "bad chunk size"
    if data.get("status", "running") not in STATUSES:
        return "bad status"
    for key in ("frames_done", "frames_with_face"):
        if not is_int(data.get(key, 0)) or data.get(key, 0) < 0:
            return f"bad {key}"
    for key in ("actor", "fit", "emotion", "microexpr", "chunks"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"bad {key}"
    for key in ("fit", "emotion", "microexpr"):
        if data.get(key) is not None and not isinstance(data[key].get("settings"), dict):
            return f"bad {key}"
    actor = data.get("actor")
    if actor is not None and not (is_int(actor.get("frame")) and is_int(actor.get("faces_found"))
                                  and isinstance(actor.get("box"), list)):
        return "bad actor"
    if not isinstance(data.get("warnings", []), list):
        return "bad warnings"
    return None
