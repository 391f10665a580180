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
