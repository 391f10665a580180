"""Tests of core.video: frame-exact reading of videos, images and image folders.

Fixtures come from ``../shared/fixtures`` (beside the project root); synthetic clips are encoded with
PyAV into ``tmp_path``. Synthetic frames carry their own index as a row of black/white squares, so a
decoded frame says which frame it is.
"""

from __future__ import annotations

import hashlib
import shutil
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.errors import InputNotFoundError, UnsupportedInputError, VideoDecodeError
from core.video import (
    FrameSource,
    ImageSequenceSource,
    VideoFileSource,
    VideoInfo,
    natural_sort_key,
    open_source,
)

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
WOLFGANG = FIXTURES / "WolfgangLanger_Pexels.mp4"
WOLFGANG_FRAMES = 472
WOLFGANG_KEYFRAMES = [0, 72, 144, 216, 288, 360, 432]

SQUARE = 16  # px per bit of the frame-number stamp
STAMP_BITS = 8


# --------------------------------------------------------------------------------------------------
# helpers


def digest(rgb: np.ndarray) -> str:
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    return hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).hexdigest()


def stamp(rgb: np.ndarray, number: int) -> np.ndarray:
    """``rgb`` with ``number`` written as white (1) / black (0) squares along the top edge."""
    out = rgb.copy()
    for bit in range(STAMP_BITS):
        out[:SQUARE, bit * SQUARE : (bit + 1) * SQUARE] = 255 if number >> bit & 1 else 0
    return out


def read_stamp(rgb: np.ndarray) -> int:
    m = SQUARE // 4  # read the middle of each square, away from compression ringing
    bits = [
        rgb[m : SQUARE - m, bit * SQUARE + m : (bit + 1) * SQUARE - m].mean() > 128
        for bit in range(STAMP_BITS)
    ]
    return sum(1 << bit for bit, on in enumerate(bits) if on)


def encode_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    codec: str = "libx264",
    rate: int = 30,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    gop: int = 12,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode ``frames`` (stamped with their index) at ``rate`` fps, or at ``pts`` in ``time_base``."""
    tb = time_base or Fraction(1, rate)
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=rate, options={"g": str(gop), **(options or {})})
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = tb
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(stamp(rgb, i), format="rgb24")
            frame.pts = i if pts is None else pts[i]
            frame.time_base = tb
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def plain_decode(path: Path) -> list[np.ndarray]:
    """All frames by a plain sequential PyAV decode: the reference for frame-exact access."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def cut_copy(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def cv2_frames(path: Path, keep: set[int]) -> tuple[int, dict[int, np.ndarray]]:
    """Sequential OpenCV read: (frame count, RGB frames at ``keep``)."""
    cap = cv2.VideoCapture(str(path))
    kept, n = {}, 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if n in keep:
            kept[n] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n, kept


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def wolfgang_hashes() -> list[str]:
    """Hash of every Wolfgang frame, from one sequential iter_frames pass."""
    with open_source(WOLFGANG) as source:
        pairs = [(i, digest(rgb)) for i, rgb in source.iter_frames()]
    assert [i for i, _ in pairs] == list(range(WOLFGANG_FRAMES))
    return [h for _, h in pairs]


@pytest.fixture(scope="module")
def small_frames() -> list[np.ndarray]:
    """The first 96 Wolfgang frames at 160x96 (read with OpenCV), material for synthetic clips."""
    cap = cv2.VideoCapture(str(WOLFGANG))
    frames = []
    for _ in range(96):
        ok, bgr = cap.read()
        assert ok
        frames.append(
            cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (160, 96), interpolation=cv2.INTER_AREA)
        )
    cap.release()
    return frames


def assert_frame_exact(source: FrameSource, reference: list[np.ndarray], seed: int = 0) -> None:
    """read(i) in shuffled order, and iter_frames, equal the reference and carry stamp i."""
    assert source.info.frame_count == len(reference)
    for i in np.random.default_rng(seed).permutation(len(reference)):
        rgb = source.read(int(i))
        assert read_stamp(rgb) == i
        assert np.array_equal(rgb, reference[i]), f"frame {i} differs from the sequential decode"
    seen = []
    for i, rgb in source.iter_frames():
        assert np.array_equal(rgb, reference[i])
        seen.append(i)
    assert seen == list(range(len(reference)))


# --------------------------------------------------------------------------------------------------
# the Wolfgang fixture: info, exact random access, iteration, OpenCV agreement


def test_wolfgang_info_and_timestamps() -> None:
    with open_source(WOLFGANG) as source:
        info = source.info
        assert isinstance(source, VideoFileSource)
        assert isinstance(info, VideoInfo)
        assert Path(info.path).resolve() == WOLFGANG.resolve()  # absolute; symlinks kept as given
        assert info.kind == "video"
        assert info.codec == "h264"
        assert info.frame_count == WOLFGANG_FRAMES
        assert (info.width, info.height) == (640, 360)
        assert info.fps == pytest.approx(24000 / 1001, abs=1e-9)
        assert info.variable_frame_rate is False
        assert info.truncated_at is None
        assert info.duration_s == pytest.approx(WOLFGANG_FRAMES * 1001 / 24000, abs=1e-6)
        ts = source.timestamps
        assert ts.dtype == np.float64 and ts.shape == (WOLFGANG_FRAMES,)
        np.testing.assert_allclose(ts, np.arange(WOLFGANG_FRAMES) * 1001 / 24000, rtol=0, atol=1e-9)
        with pytest.raises(ValueError):
            ts[0] = 1.0  # read-only


def test_random_read_is_frame_exact(wolfgang_hashes: list[str]) -> None:
    rng = np.random.default_rng(1234)
    around_keys = [k + d for k in WOLFGANG_KEYFRAMES for d in (-1, 0, 1) if 0 <= k + d < WOLFGANG_FRAMES]
    indices = [int(i) for i in rng.choice(WOLFGANG_FRAMES, 30, replace=False)] + around_keys
    rng.shuffle(indices)
    indices += [471, 0, 300, 299, 298, 5, 440, 439, 431, 432]  # backward jumps, across keyframes
    with open_source(WOLFGANG) as source:
        for i in indices:
            rgb = source.read(i)
            assert rgb.shape == (360, 640, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
            assert digest(rgb) == wolfgang_hashes[i], f"read({i}) differs from iter_frames"


def test_forward_scrubbing_decodes_on_without_seeking(wolfgang_hashes: list[str]) -> None:
    with open_source(WOLFGANG) as source:
        assert isinstance(source, VideoFileSource)
        source.read(60)
        seeks = source._decoder.seeks
        for i in range(61, 160):  # crosses keyframes 72 and 144
            assert digest(source.read(i)) == wolfgang_hashes[i]
        source.read(170)  # a small jump ahead
        source.read(200)  # a bigger one, but inside the same keyframe interval
        assert source._decoder.seeks == seeks
        assert digest(source.read(150)) == wolfgang_hashes[150]  # backwards: one seek
        assert source._decoder.seeks == seeks + 1


def test_read_returns_a_fresh_array(wolfgang_hashes: list[str]) -> None:
    with open_source(WOLFGANG) as source:
        a = source.read(10)
        a[:] = 0
        assert digest(source.read(10)) == wolfgang_hashes[10]


def test_iter_frames_ranges(wolfgang_hashes: list[str]) -> None:
    with open_source(WOLFGANG) as source:
        got = [(i, digest(rgb)) for i, rgb in source.iter_frames(70, 80)]
        assert got == [(i, wolfgang_hashes[i]) for i in range(70, 80)]
        assert [i for i, _ in source.iter_frames(465)] == list(range(465, WOLFGANG_FRAMES))
        assert [i for i, _ in source.iter_frames(468, 10_000)] == list(range(468, WOLFGANG_FRAMES))
        assert list(source.iter_frames(10, 10)) == []
        # iteration does not disturb random access on the same source, and the other way round
        frames = source.iter_frames(200, 210)
        assert next(frames)[0] == 200
        assert digest(source.read(5)) == wolfgang_hashes[5]
        assert [(i, digest(rgb)) for i, rgb in frames] == [(i, wolfgang_hashes[i]) for i in range(201, 210)]


@pytest.mark.parametrize(
    ("name", "count", "tolerance"),
    [
        (WOLFGANG.name, 472, 2.0),
        ("single_face.mp4", 72, 2.0),
        ("no_face.mp4", 95, 2.0),  # 98 packets, the first 3 are cut by the edit list
        # BT.709-tagged HEVC: we convert with the BT.709 matrix, OpenCV always uses BT.601
        ("face_noface.mov", 169, 6.0),
    ],
)
def test_matches_opencv_sequential_read(name: str, count: int, tolerance: float) -> None:
    path = FIXTURES / name
    sample = {0, 1, count // 3, count // 2, count - 2, count - 1}
    cv_count, cv_frames = cv2_frames(path, sample)
    with open_source(path) as source:
        assert source.info.frame_count == cv_count == count
        for i in sorted(sample):
            rgb = source.read(i)
            assert rgb.shape == cv_frames[i].shape
            assert mean_abs_diff(rgb, cv_frames[i]) < tolerance, f"{name} frame {i}"


def test_other_fixture_videos_report_sensible_info() -> None:
    with open_source(FIXTURES / "single_face.mp4") as source:
        info = source.info
        assert (info.kind, info.codec, info.width, info.height) == ("video", "h264", 640, 360)
        assert info.fps == pytest.approx(30.0)
        assert info.duration_s == pytest.approx(72 / 30)
        assert not info.variable_frame_rate and info.truncated_at is None

    with open_source(FIXTURES / "face_noface.mov") as source:  # an iPhone clip, 24 and 30 fps mixed
        info = source.info
        assert (info.codec, info.width, info.height, info.frame_count) == ("hevc", 960, 540, 169)
        assert info.variable_frame_rate is True
        assert info.fps == pytest.approx(26.4, abs=0.05)
        ts = source.timestamps
        assert ts[0] == 0.0 and np.all(np.diff(ts) > 0)
        assert ts[-1] == pytest.approx(97695 / 15360, abs=1e-9)

    with open_source(FIXTURES / "no_face.mp4") as source:
        info = source.info
        assert (info.codec, info.width, info.height, info.frame_count) == ("h264", 960, 540, 95)
        assert info.fps == pytest.approx(24.0, abs=0.01)
        assert not info.variable_frame_rate
        np.testing.assert_allclose(source.timestamps, np.arange(95) / 24, atol=1e-9)


# --------------------------------------------------------------------------------------------------
# damaged and cut files


@pytest.mark.parametrize(("fraction", "low", "high"), [(0.6, 280, 289), (0.2, 80, 92)])
def test_cut_mp4_with_index_at_start_keeps_readable_frames(
    tmp_path: Path, wolfgang_hashes: list[str], fraction: float, low: int, high: int
) -> None:
    # The moov box of this file is at the start, so the index lists all 472 frames but only the
    # first part of the frame data is there (at 20 % the last packet is also cut in half).
    cut = cut_copy(WOLFGANG, tmp_path / "cut.mp4", fraction)
    with open_source(cut) as source:
        n = source.info.frame_count
        assert low <= n <= high
        assert source.info.truncated_at == n
        assert source.timestamps.shape == (n,)
        assert source.info.duration_s == pytest.approx(n * 1001 / 24000, abs=1e-6)
        assert [(i, digest(rgb)) for i, rgb in source.iter_frames()] == [
            (i, wolfgang_hashes[i]) for i in range(n)
        ]
        for i in (n - 1, 0, n - 2, n // 2, n - 1):
            assert digest(source.read(i)) == wolfgang_hashes[i]
        with pytest.raises(IndexError):
            source.read(n)


def test_damaged_tail_keeps_the_frames_before_it(tmp_path: Path, wolfgang_hashes: list[str]) -> None:
    # Same size and index, but the last 30 % of the bytes are zeros: those frames fail to decode.
    data = bytearray(WOLFGANG.read_bytes())
    start = int(len(data) * 0.7)
    data[start:] = bytes(len(data) - start)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with open_source(damaged) as source:
        n = source.info.frame_count
        assert 300 <= n <= 340
        assert source.info.truncated_at == n
        assert [(i, digest(rgb)) for i, rgb in source.iter_frames(n - 40)] == [
            (i, wolfgang_hashes[i]) for i in range(n - 40, n)
        ]
        assert digest(source.read(n - 1)) == wolfgang_hashes[n - 1]
        with pytest.raises(IndexError):
            source.read(n)


def test_damaged_middle_raises_at_the_first_bad_frame(tmp_path: Path, wolfgang_hashes: list[str]) -> None:
    # Zeros over 40..45 % of the bytes: about frames 179..215 fail; the keyframe at 216 recovers.
    data = bytearray(WOLFGANG.read_bytes())
    a, b = int(len(data) * 0.40), int(len(data) * 0.45)
    data[a:b] = bytes(b - a)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with open_source(damaged) as source:
        assert source.info.frame_count == WOLFGANG_FRAMES and source.info.truncated_at is None
        seen: list[int] = []
        with pytest.raises(VideoDecodeError) as err:
            for i, rgb in source.iter_frames(100):
                assert digest(rgb) == wolfgang_hashes[i]
                seen.append(i)
        bad = seen[-1] + 1
        assert 150 < bad < 216 and seen == list(range(100, bad))
        assert f"frame {bad} of {damaged}" in str(err.value)
        with pytest.raises(VideoDecodeError):
            source.read(bad)
        assert digest(source.read(216)) == wolfgang_hashes[216]
        assert digest(source.read(bad - 1)) == wolfgang_hashes[bad - 1]
        assert [i for i, _ in source.iter_frames(216)] == list(range(216, WOLFGANG_FRAMES))


def test_cut_mp4_with_index_at_end_is_refused_in_one_line(tmp_path: Path) -> None:
    cut = cut_copy(FIXTURES / "single_face.mp4", tmp_path / "cut.mp4", 0.6)  # moov at the end: lost
    with pytest.raises(UnsupportedInputError) as err:
        open_source(cut)
    message = str(err.value)
    assert "\n" not in message and str(cut) in message and "cut off" in message


@pytest.mark.parametrize(
    ("name", "container_options"),
    [("clip.mkv", {}), ("fragmented.mp4", {"movflags": "frag_keyframe+empty_moov"})],
)
def test_cut_file_without_frame_count_is_flagged_and_numbered_exactly(
    tmp_path: Path, small_frames: list[np.ndarray], name: str, container_options: dict[str, str]
) -> None:
    # Matroska and fragmented MP4 give no frame count; the cut shows as a top-level element larger
    # than the file. With B-frames, frames right before the cut may be missing while later ones are
    # there: they must not shift the numbering.
    clip = encode_clip(tmp_path / name, small_frames, container_options=container_options)
    cut = cut_copy(clip, tmp_path / f"cut-{name}", 0.6)
    with open_source(cut) as source:
        n = source.info.frame_count
        assert 40 <= n < 96
        assert source.info.truncated_at == n
        assert [read_stamp(rgb) for _, rgb in source.iter_frames()] == list(range(n))
        assert [read_stamp(source.read(i)) for i in range(n - 1, -1, -5)] == list(range(n - 1, -1, -5))


# --------------------------------------------------------------------------------------------------
# synthetic clips: high frame rate, variable frame rate, containers, rotation


@pytest.mark.parametrize("rate", [120, 240])
def test_high_frame_rate(tmp_path: Path, small_frames: list[np.ndarray], rate: int) -> None:
    clip = encode_clip(tmp_path / f"hfr{rate}.mp4", small_frames[:60], rate=rate, gop=24)
    with open_source(clip) as source:
        info = source.info
        assert info.fps == pytest.approx(rate, abs=1e-9)
        assert info.frame_count == 60
        assert info.duration_s == pytest.approx(60 / rate, abs=1e-9)
        assert not info.variable_frame_rate
        np.testing.assert_allclose(source.timestamps, np.arange(60) / rate, atol=1e-9)
        assert_frame_exact(source, plain_decode(clip))


def test_variable_frame_rate(tmp_path: Path, small_frames: list[np.ndarray]) -> None:
    steps = [3000 if k % 2 else 1500 for k in range(59)]  # 1/30 s and 1/60 s, alternating
    pts = [9000, *(9000 + np.cumsum(steps)).tolist()]  # the first frame at 0.1 s
    clip = encode_clip(tmp_path / "vfr.mp4", small_frames[:60], pts=pts, time_base=Fraction(1, 90000))
    with open_source(clip) as source:
        info = source.info
        assert info.variable_frame_rate is True
        assert info.frame_count == 60
        np.testing.assert_allclose(source.timestamps, (np.array(pts) - 9000) / 90000, atol=1e-9)
        assert info.fps == pytest.approx(59 / ((pts[-1] - pts[0]) / 90000), rel=0.01)
        assert_frame_exact(source, plain_decode(clip))


@pytest.mark.parametrize(
    ("name", "codec", "options"),
    [
        ("clip.mkv", "libx264", {}),
        ("clip.mov", "libx264", {}),
        ("clip.avi", "mpeg4", {}),
        ("clip.webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}),
        ("renamed.mp4", "libx264", {}),  # renamed to .bin: found by content, not by suffix
    ],
)
def test_containers(
    tmp_path: Path, small_frames: list[np.ndarray], name: str, codec: str, options: dict[str, str]
) -> None:
    clip = encode_clip(tmp_path / name, small_frames[:48], codec=codec, options=options)
    if name == "renamed.mp4":
        clip = clip.rename(tmp_path / "renamed.bin")
    with open_source(clip) as source:
        assert source.info.kind == "video"
        assert source.info.fps == pytest.approx(30.0, rel=1e-3)
        assert source.info.truncated_at is None
        assert not source.info.variable_frame_rate
        assert_frame_exact(source, plain_decode(clip))


def test_rotation_tag_is_applied(tmp_path: Path, small_frames: list[np.ndarray]) -> None:
    clip = encode_clip(tmp_path / "rotated.mp4", small_frames[:12], rotation=90)  # 90 deg counterclockwise
    stored = plain_decode(clip)
    with open_source(clip) as source:
        assert (source.info.width, source.info.height) == (96, 160)
        for i in (0, 7):
            rgb = source.read(i)
            assert np.array_equal(rgb, np.rot90(stored[i]))
            assert read_stamp(np.rot90(rgb, -1)) == i


# --------------------------------------------------------------------------------------------------
# images and image folders


def test_single_image() -> None:
    path = FIXTURES / "single_face.jpg"
    expected = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    with open_source(path, image_fps=25.0) as source:
        info = source.info
        assert isinstance(source, ImageSequenceSource)
        assert (info.kind, info.frame_count, info.fps, info.codec) == ("image", 1, 25.0, None)
        assert (info.height, info.width) == expected.shape[:2]
        assert info.duration_s == pytest.approx(1 / 25)
        assert source.timestamps.tolist() == [0.0]
        assert np.array_equal(source.read(0), expected)
        assert [i for i, _ in source.iter_frames()] == [0]
        with pytest.raises(IndexError):
            source.read(1)


def test_image_found_by_content(tmp_path: Path) -> None:
    path = tmp_path / "still.mp4"
    shutil.copy(FIXTURES / "multi_face.jpg", path)
    with open_source(path) as source:
        assert source.info.kind == "image"
        assert source.read(0).shape == (667, 1000, 3)


def write_png(path: Path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_image_folder_in_natural_order(tmp_path: Path, small_frames: list[np.ndarray]) -> None:
    names = ["frame_10.png", "frame_2.png", "frame_1.png", "Frame_3.PNG", "frame_100.png"]
    order = [1, 2, 3, 10, 100]
    for name in names:
        number = int(name.split("_")[1].split(".")[0])
        write_png(tmp_path / name, stamp(small_frames[0], number))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    with open_source(tmp_path, image_fps=12.5) as source:
        info = source.info
        assert (info.kind, info.path, info.frame_count) == ("image_sequence", str(tmp_path), 5)
        assert (info.width, info.height, info.fps) == (160, 96, 12.5)
        assert info.duration_s == pytest.approx(5 / 12.5)
        np.testing.assert_allclose(source.timestamps, np.arange(5) / 12.5)
        assert [read_stamp(source.read(i)) for i in range(5)] == order
        assert [read_stamp(rgb) for _, rgb in source.iter_frames(1)] == order[1:]
        assert np.array_equal(source.read(0), stamp(small_frames[0], 1))  # PNG: lossless
        with pytest.raises(IndexError):
            source.read(5)


def test_natural_sort_key() -> None:
    names = ["img10.png", "img2.png", "img1.png", "IMG3.png", "a.png", "img2b.png"]
    assert sorted(names, key=natural_sort_key) == [
        "a.png",
        "img1.png",
        "img2.png",
        "img2b.png",
        "IMG3.png",
        "img10.png",
    ]


def test_image_folder_with_mixed_sizes_names_the_odd_file(tmp_path: Path) -> None:
    write_png(tmp_path / "a1.png", np.zeros((48, 64, 3), np.uint8))
    write_png(tmp_path / "a2.png", np.zeros((48, 64, 3), np.uint8))
    write_png(tmp_path / "a3.png", np.zeros((48, 32, 3), np.uint8))
    write_png(tmp_path / "a4.png", np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(UnsupportedInputError, match=r"a3\.png is 32x48"):
        open_source(tmp_path)


def test_image_folder_honours_exif_orientation(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    upright = image.fromarray(np.zeros((48, 64, 3), np.uint8))  # 64 wide, 48 high
    upright.save(tmp_path / "1.jpg")
    sideways = image.fromarray(np.zeros((64, 48, 3), np.uint8))  # stored 48 wide, shown turned
    exif = sideways.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    sideways.save(tmp_path / "2.jpg", exif=exif.tobytes())
    with open_source(tmp_path) as source:
        assert (source.info.width, source.info.height) == (64, 48)
        assert source.read(1).shape == (48, 64, 3)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(UnsupportedInputError, match="no images in"):
        open_source(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UnsupportedInputError) as err:
        open_source(empty)
    assert str(err.value) == f"no images in {empty}"


# --------------------------------------------------------------------------------------------------
# bad inputs, ranges, closing


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(InputNotFoundError) as err:
        open_source(missing)
    assert str(missing) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["notes.mp4", "notes.jpg", "empty.mov"])
def test_not_a_video_or_image(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("" if name.startswith("empty") else "this is a text file, not a video\n" * 20)
    with pytest.raises(UnsupportedInputError) as err:
        open_source(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_bad_image_fps() -> None:
    with pytest.raises(ValueError):
        open_source(FIXTURES / "single_face.jpg", image_fps=0.0)


def test_index_out_of_range() -> None:
    with open_source(FIXTURES / "single_face.mp4") as source:
        for bad in (-1, 72, 10_000):
            with pytest.raises(IndexError):
                source.read(bad)
        assert source.read(71).shape == (360, 640, 3)  # still usable after the errors


def test_context_manager_closes() -> None:
    with open_source(FIXTURES / "single_face.mp4") as video:
        frames = video.iter_frames()
        next(frames)
    assert video.closed
    with pytest.raises(ValueError):
        video.read(0)
    with pytest.raises(ValueError):
        next(video.iter_frames())
    video.close()  # idempotent

    with open_source(FIXTURES / "single_face.jpg") as image:
        pass
    assert image.closed
    with pytest.raises(ValueError):
        image.read(0)
