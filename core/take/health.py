"""A take's health: every chunk its manifest says it stores, checked (never written).

``diagnose(take)`` lists, per stage (observations, fit, emotion, microexpr), each chunk the
manifest implies and whether it is ``ok`` (matches its recorded size and SHA-256), ``unverified``
(no record, as in takes written before records existed, but every array reads back with a good
CRC-32), ``damaged`` or ``missing``. ``emocap check`` prints it; the pipeline's repair
(core/take_repair.py) acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import DamagedChunkError, MissingChunkError
from core.take.integrity import read_npz
from core.take.store import EMOTION_CHUNK, FIT_DIR, IDENTITY_CHUNK, MICROEXPR_DIR, REFINED_CHUNK, Take, observation_chunk_name

OK, UNVERIFIED, DAMAGED, MISSING = "ok", "unverified", "damaged", "missing"
STAGES = ("observations", "fit", "emotion", "microexpr")
DEFAULT_FIT_WINDOW = 256  # core.fit.fitter.FitConfig.window, for fits stored without their settings


@dataclass(frozen=True)
class ChunkHealth:
    """One chunk: its path in the take, its stage, its state and (when not ok) why."""

    name: str
    stage: str
    state: str
    reason: str = ""

    @property
    def bad(self) -> bool:
        return self.state in (DAMAGED, MISSING)


@dataclass(frozen=True)
class TakeHealth:
    """The chunks of a take and the manifest file that was read (take.json or its backup)."""

    root: str
    manifest_file: str
    chunks: tuple[ChunkHealth, ...]

    @property
    def bad(self) -> list[ChunkHealth]:
        return [c for c in self.chunks if c.bad]

    def stage_state(self, stage: str) -> str:
        """ok, unverified, damaged, or "absent" when the take has no chunk of that stage."""
        states = [c.state for c in self.chunks if c.stage == stage]
        if not states:
            return "absent"
        for state in (MISSING, DAMAGED, UNVERIFIED):
            if state in states:
                return DAMAGED if state == MISSING else state
        return OK


def expected_chunks(take: Take) -> list[tuple[str, str]]:
    """(chunk path, stage) of every chunk the manifest says the take stores."""
    m = take.manifest
    found = [(observation_chunk_name(start), "observations") for start in take.expected_chunk_starts()]
    recorded = set(m.chunks or {})
    if m.fit is not None:
        fit_names = {n for n in recorded if n.startswith(f"{FIT_DIR}/")}
        fit_names |= {f"{FIT_DIR}/{p.name}" for p in (take.root / FIT_DIR).glob("*.npz")}
        if m.fit.complete:
            fit_names.add(IDENTITY_CHUNK)
            window = m.fit.window or DEFAULT_FIT_WINDOW
            fit_names |= {take.fit_window_name(start) for start in range(0, m.frames_done, window)}
        found += [(name, "fit") for name in sorted(fit_names)]
    if m.emotion is not None and m.emotion.complete or EMOTION_CHUNK in recorded:
        found.append((EMOTION_CHUNK, "emotion"))
    if m.microexpr is not None:
        names = {n for n in recorded if n.startswith(f"{MICROEXPR_DIR}/")}
        names |= {f"{MICROEXPR_DIR}/{p.name}" for p in (take.root / MICROEXPR_DIR).glob("*.npz")}
        if m.microexpr.complete:
            names.add(REFINED_CHUNK)
        found += [(name, "microexpr") for name in sorted(names)]
    return found


def check_chunk(take: Take, name: str, stage: str) -> ChunkHealth:
    """Read one chunk whole and say how it is."""
    record = take.manifest.record(name)
    try:
        if stage == "observations":
            take.read_chunk(int(name.split("/")[1][:8]))
        else:
            read_npz(take.root, name, record)
    except MissingChunkError:
        return ChunkHealth(name, stage, MISSING, "missing")
    except DamagedChunkError as err:
        return ChunkHealth(name, stage, DAMAGED, err.reason)
    return ChunkHealth(name, stage, OK if record is not None else UNVERIFIED)


def diagnose(take: Take) -> TakeHealth:
    """Check every chunk of ``take`` (reads them all; writes nothing)."""
    chunks = tuple(check_chunk(take, name, stage) for name, stage in expected_chunks(take))
    return TakeHealth(str(take.root), take.manifest_file, chunks)
