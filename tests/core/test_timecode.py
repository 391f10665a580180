"""core/timecode.py: exact rates, labels, SMPTE drop-frame numbering."""

from __future__ import annotations

from fractions import Fraction

import pytest

from core.errors import EmoCapError, TimecodeError
from core.timecode import Timecode, exact_rate, nominal_fps, rate_text

NTSC30 = Fraction(30000, 1001)
NTSC60 = Fraction(60000, 1001)
NTSC24 = Fraction(24000, 1001)


def ticking_labels(nominal: int, drop: int, count: int):
    """(frame, (h, m, s, f)) for ``count`` frames from 00:00:00:00, counted as a timecode
    generator does: one label after the other, skipping the first ``drop`` frame numbers of each
    minute not divisible by ten (independent of core.timecode's arithmetic)."""
    h = m = s = f = 0
    for i in range(count):
        yield i, (h % 24, m, s, f)
        f += 1
        if f == nominal:
            f, s = 0, s + 1
            if s == 60:
                s, m = 0, m + 1
                if m == 60:
                    m, h = 0, h + 1
                if drop and m % 10:
                    f = drop


@pytest.mark.parametrize(("frames", "label"), [
    (0, "00:00:00;00"), (1799, "00:00:59;29"), (1800, "00:01:00;02"), (1801, "00:01:00;03"),
    (3597, "00:01:59;29"), (3598, "00:02:00;02"), (17981, "00:09:59;29"), (17982, "00:10:00;00"),
    (17983, "00:10:00;01"), (19782, "00:11:00;02"), (107892, "01:00:00;00"), (2589407, "23:59:59;29"),
    (2589408, "00:00:00;00"),  # a day later the hours wrap
])
def test_drop_frame_29_97_known_labels(frames, label):
    tc = Timecode(frames, NTSC30, drop_frame=True)
    assert str(tc) == label
    if frames < 2589408:
        assert Timecode.parse(label, "30000/1001") == tc


@pytest.mark.parametrize(("frames", "label"), [
    (3599, "00:00:59;59"), (3600, "00:01:00;04"), (35964, "00:10:00;00"), (215784, "01:00:00;00"),
])
def test_drop_frame_59_94_skips_four(frames, label):
    tc = Timecode(frames, NTSC60, drop_frame=True)
    assert str(tc) == label and Timecode.parse(label, NTSC60).frames == frames


@pytest.mark.parametrize(("rate", "drop", "nominal"), [
    (NTSC30, 2, 30), (NTSC60, 4, 60), (NTSC24, 0, 24), (Fraction(25), 0, 25), (NTSC30, 0, 30),
])
def test_labels_match_a_ticking_counter_over_a_day(rate, drop, nominal):
    """Every frame of a day near a minute boundary, and every 101st frame, against a counter that
    ticks label by label; both directions."""
    per_day = 24 * 3600 * nominal - (24 * 6 * 9 * drop)
    checked = 0
    for i, expected in ticking_labels(nominal, drop, per_day + 5):
        h, m, s, f = expected
        if i % 101 and not ((s == 0 and f < drop + 2) or (s == 59 and f >= nominal - 2)):
            continue
        tc = Timecode(i, rate, drop_frame=bool(drop))
        assert tc.components == expected, i
        if i < per_day:
            assert Timecode.parse(str(tc), rate).frames == i
        checked += 1
    assert checked > per_day // 101


def test_frames_after_and_seconds_are_exact():
    start = Timecode.parse("01:00:00:00", "24000/1001")
    assert start.frames == 86400 and start.seconds == Fraction(86400 * 1001, 24000)
    assert str(start + 24) == "01:00:01:00" and str(start.at(23)) == "01:00:00:23"
    assert Timecode.parse("00:00:01:00", 25).seconds == 1
    assert (Timecode.parse("00:59:59;29", NTSC30) + 1).components == (1, 0, 0, 0)


@pytest.mark.parametrize(("text", "kind"), [
    ("01:00:00:00", False), ("01:00:00;00", True), ("01;00;00;00", True), ("01:00:00.00", True),
])
def test_separator_says_drop_frame(text, kind):
    assert Timecode.parse(text, NTSC30).drop_frame is kind


@pytest.mark.parametrize(("text", "rate", "words"), [
    ("1:2:3", 25, "not a timecode"), ("ab:cd:ef:gh", 25, "not a timecode"), ("24:00:00:00", 25, "hours"),
    ("00:60:00:00", 25, "minutes"), ("00:00:00:25", 25, "00-24"), ("00:00:00:24", NTSC24, "00-23"),
    ("00:01:00;00", NTSC30, "does not exist"), ("00:01:00;01", NTSC30, "00:01:00;02"),
    ("00:02:00;03", NTSC60, "00:02:00;04"), ("00:00:10;00", 25, "29.97 and 59.94"),
    ("00:00:00:00", 12.5, "no timecode"), ("00:00:00:00", Fraction(519168, 19667), "no timecode"),
])
def test_bad_labels_are_named_errors(text, rate, words):
    with pytest.raises(TimecodeError, match=words) as err:
        Timecode.parse(text, rate)
    assert isinstance(err.value, EmoCapError) and "\n" not in str(err.value)


def test_a_tenth_minute_keeps_its_first_labels():
    assert Timecode.parse("00:10:00;00", NTSC30).frames == 17982
    assert Timecode.parse("00:20:00;01", NTSC30).frames == 2 * 17982 + 1


def test_invalid_timecodes_cannot_be_built():
    with pytest.raises(TimecodeError):
        Timecode(-1, NTSC30)
    with pytest.raises(TimecodeError, match="29.97 and 59.94"):
        Timecode(0, NTSC24, drop_frame=True)
    with pytest.raises(TimecodeError):
        Timecode(0, Fraction(25, 2))


@pytest.mark.parametrize(("value", "rate"), [
    ("24000/1001", NTSC24), (23.976, NTSC24), ("23.976", NTSC24), (29.97, NTSC30), ("59.94", NTSC60),
    (24000 / 1001, NTSC24), (25, Fraction(25)), ("30", Fraction(30)), (30.0, Fraction(30)),
    (Fraction(150528, 6359), Fraction(150528, 6359)), (119.88, Fraction(120000, 1001)),
])
def test_exact_rate(value, rate):
    assert exact_rate(value) == rate
    assert exact_rate(rate_text(rate)) == rate


@pytest.mark.parametrize("value", ["fast", "0", "-24", "1/0"])
def test_bad_rates(value):
    with pytest.raises(TimecodeError):
        exact_rate(value)


def test_nominal_fps():
    assert [nominal_fps(r) for r in (NTSC24, NTSC30, NTSC60, Fraction(25), Fraction(120))] == [24, 30, 60, 25, 120]
