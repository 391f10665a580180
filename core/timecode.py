"""SMPTE timecode at exact frame rates.

A :class:`Timecode` is a frame count since ``00:00:00:00`` at an exact rate (a
:class:`fractions.Fraction`: ``24000/1001``, ``25``, ``30000/1001``, ...), shown as
``HH:MM:SS:FF`` (non-drop-frame) or ``HH:MM:SS;FF`` (drop-frame). Timecode counts frames, not
seconds: at 23.976 fps (``24000/1001``) non-drop-frame timecode counts 24 frames per label second,
so the label drifts from the wall clock by 0.1 %. Drop-frame timecode (29.97 and 59.94 fps only,
SMPTE 12M) keeps the label near the clock by skipping frame *numbers* (never frames): labels
``;00`` and ``;01`` (``;00`` to ``;03`` at 59.94) at the start of every minute except every tenth
minute. So at 29.97 drop-frame the frame after ``00:00:59;29`` is ``00:01:00;02``: frame 1800 is
``00:01:00;02`` and frame 17982 is ``00:10:00;00``.

The hours wrap at 24 (``23:59:59:23`` is followed by ``00:00:00:00``). A timecode's
:attr:`Timecode.seconds` is ``frames / rate`` exactly: where a frame with that timecode sits on a
timeline that starts at ``00:00:00:00`` and runs at the rate (what FBX and USD exports use).

Pure Python: no NumPy, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from core.errors import TimecodeError

NTSC = Fraction(1000, 1001)
"""NTSC rates are whole rates times this: 24000/1001 (23.976), 30000/1001 (29.97), 60000/1001."""

DROP_FRAME_RATES = {Fraction(30000, 1001): 2, Fraction(60000, 1001): 4}
"""Rates with a drop-frame timecode, and how many frame numbers each (non-tenth) minute skips."""

STANDARD_RATES = tuple(sorted({Fraction(n) for n in (24, 25, 30, 48, 50, 60, 72, 90, 96, 100, 120, 144, 240)}
                              | {Fraction(n) * NTSC for n in (24, 30, 48, 60, 120, 240)}))
"""Frame rates a measured rate snaps to (:func:`exact_rate`)."""

DAY_HOURS = 24
_TEXT = re.compile(r"^\s*(\d{1,2})([:;.,])(\d{2})([:;.,])(\d{2})([:;.,])(\d{2,3})\s*$")


def exact_rate(value: float | int | str | Fraction) -> Fraction:
    """A frame rate as an exact fraction. ``"24000/1001"``, ``Fraction(30000, 1001)`` and ``25``
    are kept as they are; a decimal (``23.976``, ``29.97``, ``59.94``, a float from a container) is
    snapped to the standard rate it rounds from (:data:`STANDARD_RATES`), else to the nearest
    fraction with a denominator up to 1001. Raises TimecodeError for what is not a positive rate."""
    try:
        if isinstance(value, str):
            text = value.strip()
            rate = Fraction(text)
            decimal = "/" not in text and not text.isdigit()
        else:
            rate = Fraction(value)
            decimal = isinstance(value, float)
    except (ValueError, ZeroDivisionError, TypeError):
        raise TimecodeError(f"'{value}' is not a frame rate: use a number or a fraction such as 24000/1001") from None
    if rate <= 0:
        raise TimecodeError(f"a frame rate must be positive, not {value}")
    if not decimal:
        return rate
    for standard in STANDARD_RATES:
        # decimals written to 2 or 3 places (29.97, 23.976, 59.94) are within 0.01 % of their rate
        if abs(rate - standard) <= standard * Fraction(1, 10000):
            return standard
    return rate.limit_denominator(1001)


def rate_text(rate: Fraction) -> str:
    """``"24000/1001"``, ``"25"``: the form :func:`exact_rate` reads back."""
    return str(Fraction(rate))


def nominal_fps(rate: Fraction) -> int:
    """Frames per label second of timecode at ``rate``: the rate itself when it is whole, 24, 30, 60
    ... for the NTSC rates. Raises TimecodeError for a rate that has no timecode (12.5, 26.4...)."""
    rate = Fraction(rate)
    if rate.denominator == 1 and rate >= 1:
        return int(rate)
    whole = rate / NTSC
    if whole.denominator == 1 and whole >= 1:
        return int(whole)
    raise TimecodeError(f"{float(rate):.6g} fps has no timecode: timecode needs a whole frame rate or an NTSC rate "
                        "(24000/1001, 30000/1001, 60000/1001...)")


def _split(frames: int, nominal: int, drop: int) -> tuple[int, int, int, int]:
    """(h, m, s, f) of a frame count (hours not wrapped)."""
    if drop:
        per_ten = 600 * nominal - 9 * drop  # frames in ten minutes (17982 at 29.97)
        per_minute = 60 * nominal - drop  # frames in a minute with a skip (1798)
        tens, rest = divmod(frames, per_ten)
        # minute 0 of each ten keeps all its numbers; the others skip `drop` numbers at their start
        frames += 9 * drop * tens + (drop * ((rest - drop) // per_minute) if rest >= drop else 0)
    seconds, f = divmod(frames, nominal)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return h, m, s, f


@dataclass(frozen=True)
class Timecode:
    """A timecode: ``frames`` since ``00:00:00:00`` at ``rate`` (frames per second, exact), drop-frame
    or not. Build one with :meth:`parse` or :meth:`from_frames`; ``str()`` gives its label."""

    frames: int
    rate: Fraction
    drop_frame: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", Fraction(self.rate))
        if not isinstance(self.frames, int) or isinstance(self.frames, bool):
            raise TimecodeError(f"a timecode's frame count must be an integer, not {self.frames!r}")
        if self.frames < 0:
            raise TimecodeError(f"a timecode's frame count cannot be negative ({self.frames})")
        nominal_fps(self.rate)
        if self.drop_frame and self.rate not in DROP_FRAME_RATES:
            raise TimecodeError(f"drop-frame timecode exists at 29.97 and 59.94 fps only (30000/1001, 60000/1001), "
                                f"not at {rate_text(self.rate)} fps")

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def from_frames(cls, frames: int, rate: Fraction | str | float, drop_frame: bool = False) -> Timecode:
        return cls(int(frames), exact_rate(rate), drop_frame)

    @classmethod
    def parse(cls, text: str, rate: Fraction | str | float, drop_frame: bool | None = None) -> Timecode:
        """``HH:MM:SS:FF`` (non-drop-frame) or ``HH:MM:SS;FF`` (drop-frame; ``.`` or ``,`` before
        the frames also mean drop-frame, as some tools write it) at ``rate``. ``drop_frame``
        (None: from the separator) forces the kind. Raises TimecodeError for a malformed label, a
        field out of range (minutes, seconds, frames at the rate) or a label that drop-frame
        timecode skips (``00:01:00;00``)."""
        rate = exact_rate(rate)
        match = _TEXT.match(str(text))
        if not match:
            raise TimecodeError(f"'{text}' is not a timecode: use HH:MM:SS:FF (or HH:MM:SS;FF for drop-frame)")
        h, m, s, f = (int(match.group(i)) for i in (1, 3, 5, 7))
        separators = {match.group(i) for i in (2, 4, 6)}
        if drop_frame is None:
            drop_frame = match.group(6) in ";.," or ";" in separators
        nominal = nominal_fps(rate)
        if drop_frame and rate not in DROP_FRAME_RATES:
            raise TimecodeError(f"'{text}' is drop-frame timecode, which exists at 29.97 and 59.94 fps only; "
                                f"this clip runs at {float(rate):.6g} fps: write it as HH:MM:SS:FF")
        if h >= DAY_HOURS or m >= 60 or s >= 60:
            raise TimecodeError(f"'{text}' is not a timecode: hours 0-23, minutes and seconds 0-59")
        if f >= nominal:
            raise TimecodeError(f"'{text}': frames run 00-{nominal - 1:02d} at {float(rate):.6g} fps")
        drop = DROP_FRAME_RATES.get(rate, 0) if drop_frame else 0
        if drop and s == 0 and f < drop and m % 10:
            raise TimecodeError(f"'{text}' does not exist in drop-frame timecode (frame numbers 00-{drop - 1:02d} "
                                f"are skipped at the start of each minute but every tenth): "
                                f"{h:02d}:{m:02d}:00;{drop:02d} is the first frame of that minute")
        minutes = 60 * h + m
        frames = ((60 * minutes + s) * nominal + f) - drop * (minutes - minutes // 10)
        return cls(frames, rate, bool(drop_frame))

    # -- reading -----------------------------------------------------------------------------
    @property
    def nominal_fps(self) -> int:
        """Frames per label second (24 at 23.976, 30 at 29.97)."""
        return nominal_fps(self.rate)

    @property
    def components(self) -> tuple[int, int, int, int]:
        """(hours 0-23, minutes, seconds, frames) of the label."""
        h, m, s, f = _split(self.frames, self.nominal_fps, DROP_FRAME_RATES.get(self.rate, 0) if self.drop_frame else 0)
        return h % DAY_HOURS, m, s, f

    @property
    def seconds(self) -> Fraction:
        """``frames / rate``: the time of this frame on a timeline starting at 00:00:00:00."""
        return self.frames / self.rate

    def __str__(self) -> str:
        h, m, s, f = self.components
        return f"{h:02d}:{m:02d}:{s:02d}{';' if self.drop_frame else ':'}{f:02d}"

    def __add__(self, frames: int) -> Timecode:
        """The timecode ``frames`` frames later (``tc + i`` is the timecode of a clip's frame ``i``
        when ``tc`` is that of its frame 0)."""
        if not isinstance(frames, int) or isinstance(frames, bool):
            return NotImplemented
        return Timecode(self.frames + frames, self.rate, self.drop_frame)

    def at(self, index: int) -> Timecode:
        """The timecode of frame ``index`` of a clip whose frame 0 has this timecode."""
        return self + int(index)

    def describe(self) -> str:
        """``01:00:00;00 at 29.97 fps drop-frame``: for messages and summaries."""
        kind = "drop-frame" if self.drop_frame else "non-drop-frame"
        return f"{self} at {float(self.rate):.6g} fps {kind}"


def start_timecode_of(text: str, info) -> str:
    """A ``--start-timecode`` label checked against a recording's exact rate, normalised
    (``01:00:00:00``). info: its ``core.video.VideoInfo`` (``rate``, or else ``fps``). Raises
    TimecodeError when the label does not fit the rate."""
    rate = info.rate or exact_rate(info.fps)
    return str(Timecode.parse(text, rate))
