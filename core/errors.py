"""Named errors of EmoCap.

Every error a user can cause derives from :class:`EmoCapError`; its message is one line that says
what went wrong and, where possible, what to do. The CLI prints that line and exits non-zero; the app
shows it in a dialog. Anything else escaping ``core`` is a bug.
"""

from __future__ import annotations


class EmoCapError(Exception):
    """Base of all user-facing errors. ``str(err)`` is a one-line reason."""

    exit_code = 2


class InputNotFoundError(EmoCapError):
    """The input path does not exist."""


class UnsupportedInputError(EmoCapError):
    """The input exists but is not a readable video, image, or image folder."""


class VideoDecodeError(EmoCapError):
    """A video could be opened but a frame could not be decoded."""


class NoFaceFoundError(EmoCapError):
    """No frame of the input shows a face."""

    exit_code = 3


class TimecodeError(EmoCapError):
    """A timecode or frame rate cannot be used: a malformed label (not HH:MM:SS:FF), a field out of
    range, a drop-frame label that does not exist, or a rate that has no timecode."""


class TakeError(EmoCapError):
    """A take folder is missing, corrupt, or belongs to another recording."""


class CancelledError(EmoCapError):
    """The user cancelled a running job; what was finished is kept."""

    exit_code = 130


class DeviceError(EmoCapError):
    """The requested compute device is not available."""


class FaceModelError(EmoCapError):
    """The face model file is missing, not FLAME, or has the wrong shapes."""


class ModelNotInstalledError(EmoCapError):
    """A model EmoCap can use is not in the model store; ``emocap models install`` fetches it."""


class ModelIntegrityError(EmoCapError):
    """A file in the model store does not match its recorded SHA-256; it is not used."""


class ExportError(EmoCapError):
    """A take cannot be exported as asked (no fit, bad range, unknown format, a failed write)."""


class EditError(EmoCapError):
    """An edit of a take's curves cannot be applied (an unknown emotion, a bad range or value)."""


class EncoderError(EmoCapError):
    """A face encoder checkpoint is missing, unreadable or does not fit the chosen face model."""


class RefinerError(EmoCapError):
    """The micro-expression refiner cannot run as asked (unusable weights, no fit to refine)."""


class DamagedChunkError(TakeError):
    """A file a take stores (a chunk of observations, a fitted window, the emotion timelines, the
    refinement) is damaged: its size or SHA-256 differs from what the manifest recorded, or it cannot
    be read. ``chunk`` is its path inside the take (``fit/00000000.npz``)."""

    def __init__(self, take: object, chunk: str, reason: str) -> None:
        self.take, self.chunk, self.reason = str(take), chunk, reason
        super().__init__(
            f"take {take}: {chunk} is {reason}; 'emocap check {take} --repair' (or rerunning "
            "'emocap analyze') rebuilds it"
        )


class MissingChunkError(DamagedChunkError):
    """A file the take's manifest lists is not there."""

    def __init__(self, take: object, chunk: str) -> None:
        super().__init__(take, chunk, "missing")


class DamagedManifestError(TakeError):
    """A take's manifest (take.json) and its backup are unreadable, cut short or altered."""


class TakeBusyError(TakeError):
    """Another process holds the take's writer lock (an analysis, a repair); readers never wait."""

    def __init__(self, take: object, pid: int | None) -> None:
        self.take, self.pid = str(take), pid
        who = f"process {pid}" if pid else "another process"
        super().__init__(f"take {take} is being written by {who}; wait for it to finish or cancel it")


class RetargetMapError(ExportError):
    """A retarget map (YAML, core.export.retarget) cannot be used: unreadable YAML, a bad number,
    an unknown key, or a source curve the take does not have. The message names the file, the line
    and the key."""


class KeyReductionError(ExportError):
    """Key reduction cannot be applied as asked (a bad tolerance, a format without keys)."""


class FlameArkitError(FaceModelError):
    """The FLAME <-> ARKit map (core.facemodel.flame_arkit) cannot be used as asked: a map solved
    for another FLAME file or component count, a Live Link CSV without the ARKit columns, ARKit
    curves asked of a take that has no FLAME fit."""


class PerformerProfileError(EmoCapError):
    """A performer profile is missing, unreadable, built for another face model, or cannot be
    built from the given takes (no face, no neutral frames)."""


class BatchFailedError(EmoCapError):
    """Some recordings of a batch failed (each with its reason in the batch's summary); the
    others are done."""

    exit_code = 4
