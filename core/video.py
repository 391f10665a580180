"""Frame-exact reading of videos, still images and image folders.

:func:`open_source` turns a path into a :class:`FrameSource`. Every source numbers its frames
``0 .. frame_count - 1`` in presentation order and gives each frame as an ``H x W x 3`` ``uint8`` RGB
array, with its presentation time in seconds in :attr:`FrameSource.timestamps`.

Video files are read with PyAV. At open time the packets are demuxed (not decoded) to build a frame
index: the presentation timestamp (pts) of every frame and the pts of every keyframe. Random access
seeks to the keyframe at or before a frame and decodes forward to the frame with exactly that pts,
which is exact for variable frame rate too. A damaged or cut file keeps its readable frames;
:attr:`VideoInfo.truncated_at` says where reading stops.

Sources are not thread-safe: use one per thread.
"""

from __future__ import annotations

import abc
import itertools
import logging
import math
import operator
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import av
import av.error
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from core.errors import InputNotFoundError, TimecodeError, UnsupportedInputError, VideoDecodeError
from core.timecode import Timecode, exact_rate

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm"})
"""Usual video suffixes (for file dialogs). Files are recognised by content, not by suffix."""

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
"""Suffixes of files read as still images, alone or in an image folder."""

VFR_TOLERANCE = 0.05
"""A frame interval further than this fraction from the median interval makes a video VFR."""

_FORWARD_DECODE_MAX_GAP = 12
"""``read(i)`` decodes forward instead of seeking when ``i`` is at most this many frames ahead."""

_SEEK_RETRIES = 3
"""Earlier keyframes tried when a seek lands after the wanted frame, before seeking to the start."""

_THREADED_CONVERSION_PIXELS = 1_500_000
"""Frames with at least this many pixels are converted to RGB with several threads (0 = auto)."""

_TAIL_CHECK_GOPS = 4
"""Keyframe intervals (from the end) tried when checking that the last indexed frames decode."""


@dataclass(frozen=True)
class VideoInfo:
    """What a source holds. Times in seconds, sizes in pixels (after any rotation tag is applied)."""

    path: str
    """Absolute path of the input (file or folder)."""
    kind: str
    """``"video"``, ``"image"`` or ``"image_sequence"``."""
    frame_count: int
    """Frames that can be read: indices ``0 .. frame_count - 1``."""
    fps: float
    """Nominal frames per second: a video's average rate; ``image_fps`` for images. Always > 0."""
    width: int
    height: int
    duration_s: float
    """Time the frames cover: last timestamp plus one (median) frame interval."""
    variable_frame_rate: bool
    """True when a frame interval differs from the median interval by more than ``VFR_TOLERANCE``."""
    truncated_at: int | None
    """Index of the first frame that cannot be read when the file is damaged or cut (then equal to
    ``frame_count``); ``None`` when the input is whole."""
    codec: str | None
    """Video codec name, e.g. ``"h264"``; ``None`` for images."""
    rate: Fraction | None = None
    """``fps`` exactly: the stream's own rate (``24000/1001`` for 23.976) when the timestamps follow
    it, else the measured rate (core.timecode.exact_rate); ``image_fps`` for images."""
    timecode: str | None = None
    """The recording's start timecode (of frame 0) as the file states it: a QuickTime/MP4 ``tmcd``
    track or a ``timecode`` tag of the video stream or the container (MXF, MKV, ...), normalised
    (``01:00:00;00``, ``;`` for drop-frame); ``None`` when the file has none or it does not fit the
    frame rate (see :func:`read_timecode`)."""

    def start_timecode(self) -> Timecode | None:
        """:attr:`timecode` as a core.timecode.Timecode at :attr:`rate` (None: the input has none)."""
        if not self.timecode or self.rate is None:
            return None
        return Timecode.parse(self.timecode, self.rate)


class FrameSource(abc.ABC):
    """Frames of one input, numbered in presentation order. Use as a context manager or call
    :meth:`close`.

    Attributes:
        info: what the input holds.
        timestamps: ``float64`` seconds, shape ``(frame_count,)``, read-only; presentation time of
            each frame, ``0.0`` for frame 0.
    """

    info: VideoInfo
    timestamps: np.ndarray

    def __init__(self, info: VideoInfo, timestamps: np.ndarray) -> None:
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if timestamps.shape != (info.frame_count,):
            raise ValueError(f"{info.frame_count} frames but {timestamps.shape} timestamps")
        timestamps.setflags(write=False)
        self.info = info
        self.timestamps = timestamps
        self._closed = False

    @abc.abstractmethod
    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as an ``H x W x 3`` ``uint8`` RGB array (a new array the caller owns).

        Raises:
            IndexError: ``index`` is outside ``[0, frame_count)``.
            VideoDecodeError: the frame is listed but cannot be decoded.
        """

    @abc.abstractmethod
    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, rgb)`` for frames ``start .. stop - 1`` in order, in constant memory.

        ``stop=None`` (or beyond the end) means up to ``frame_count``. Indices are consecutive: when
        a frame cannot be decoded, the frames before it have been yielded and ``VideoDecodeError``
        is raised; ``iter_frames(index + 1)`` or :meth:`read` can go on after it.
        """

    def close(self) -> None:
        """Release files and decoders. Idempotent; reading afterwards raises ``ValueError``."""
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return f"{type(self).__name__}({i.path!r}, {i.kind}, {i.frame_count} frames, {i.width}x{i.height})"

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"frame source is closed: {self.info.path}")

    def _check_index(self, index: int) -> int:
        index = operator.index(index)
        if not 0 <= index < self.info.frame_count:
            raise IndexError(f"frame {index} out of range [0, {self.info.frame_count}) in {self.info.path}")
        return index

    def _frame_range(self, start: int, stop: int | None) -> range:
        start = operator.index(start)
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        n = self.info.frame_count
        stop = n if stop is None else min(operator.index(stop), n)
        return range(min(start, n), stop)


def open_source(path: str | os.PathLike[str], *, image_fps: float = 30.0) -> FrameSource:
    """Open a video file, a still image, or a folder of images.

    Args:
        path: the input. Files are recognised by content: anything FFmpeg reads as video is a video;
            files with an image suffix, or that only OpenCV can read, are still images.
        image_fps: frame rate given to images and image folders (frame ``i`` at ``i / image_fps`` s).

    Raises:
        InputNotFoundError: ``path`` does not exist.
        UnsupportedInputError: not a readable video or image, a folder without images or with
            images of different sizes, or a video cut so badly that nothing can be read.
        VideoDecodeError: a video opens but none of its frames decodes.
    """
    if not (math.isfinite(image_fps) and image_fps > 0):
        raise ValueError(f"image_fps must be a positive number, got {image_fps}")
    p = Path(os.path.abspath(os.fspath(path)))
    if not p.exists():
        raise InputNotFoundError(f"input not found: {p}")
    if p.is_dir():
        return ImageSequenceSource.from_folder(p, image_fps)
    if not p.is_file():
        raise UnsupportedInputError(f"not a file or folder: {p}")
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSequenceSource.from_image(p, image_fps)
    try:
        return VideoFileSource(p)
    except UnsupportedInputError:
        if _decode_image(p) is None:  # a still image with an unusual suffix?
            raise
        return ImageSequenceSource.from_image(p, image_fps)


# --------------------------------------------------------------------------------------------------
# Video files


@dataclass(frozen=True)
class _VideoIndex:
    """Where the frames of one video stream are, in the stream's time base."""

    stream_index: int
    pts: np.ndarray
    """int64, shape (frame_count,): pts of each readable frame, ascending."""
    key_pts: np.ndarray
    """int64, ascending: pts of every keyframe packet (also those the decoder discards)."""
    dts_limit: int | None
    """No packet with a larger dts is sent to the decoder (the cut of a truncated file)."""
    rotation: int
    """Quarter turns counterclockwise (0..3) that the display matrix asks for."""

    def key_at_or_before(self, pts: int) -> int:
        """Position in ``key_pts`` of the last keyframe with pts <= ``pts`` (-1 if none)."""
        return int(np.searchsorted(self.key_pts, pts, side="right")) - 1


class _Decoder:
    """One open container, positioned by :meth:`frames_from`; hands out decoded frames with their
    frame index, in presentation order."""

    def __init__(self, path: str, index: _VideoIndex, pts_to_index: dict[int, int]) -> None:
        self._index = index
        self._pts_to_index = pts_to_index
        self._container = _open_container(path)
        self._stream = self._container.streams[index.stream_index]
        self._stream.thread_type = "AUTO"
        self.seeks = 0
        # frames: what decoding on yields, None when a seek is needed; last: index of the last frame
        # taken from it (-1 for none).
        self.frames: Iterator[tuple[int, av.VideoFrame]] | None = None
        self.last = -1

    def close(self) -> None:
        self.frames = None
        self._container.close()

    def frames_from(self, target: int) -> None:
        """Seek so that :attr:`frames` next yields frame ``target`` (or the frames after it, when
        ``target`` cannot be decoded). Frames before ``target`` are skipped.

        Seeks to the keyframe at or before ``target``; when the demuxer lands after ``target``
        (open GOP, inexact index), retries from earlier keyframes and finally from the start.
        """
        target_pts = int(self._index.pts[target])
        k = self._index.key_at_or_before(target_pts)
        tries: list[int | None] = [
            int(self._index.key_pts[j]) for j in range(k, max(k - _SEEK_RETRIES, -1), -1)
        ]
        tries.append(None)
        for seek_pts in tries:
            self._seek(seek_pts)
            frames = self._decode()
            first = next(frames, None)
            if first is None:
                continue
            if first[0] <= target:
                self.frames = _skip_before(target, itertools.chain([first], frames))
                self.last = target - 1
                return
            logger.debug("seek to pts %s landed on frame %d, after frame %d", seek_pts, first[0], target)
        self.frames, self.last = None, -1

    def _seek(self, pts: int | None) -> None:
        self.seeks += 1
        if pts is None:
            self._container.seek(0)  # start of the file
        else:
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)

    def _decode(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """Demux and decode from the current position to the end (or the cut of a truncated file),
        yielding ``(index, frame)`` for frames in the index."""
        codec = self._stream.codec_context
        limit = self._index.dts_limit
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as err:
                logger.debug("demuxing stopped: %s", err)
                break
            if packet.size == 0:  # end-of-file marker or a dropped-frame placeholder
                continue
            if limit is not None and packet.dts is not None and packet.dts > limit:
                break
            try:
                decoded = codec.decode(packet)
            except av.error.FFmpegError as err:
                logger.debug("packet pts=%s not decoded: %s", packet.pts, err)
                continue
            yield from self._with_index(decoded)
        try:
            decoded = codec.decode(None)  # drain frames held back by reordering and threads
        except av.error.FFmpegError as err:
            logger.debug("draining the decoder failed: %s", err)
            decoded = []
        yield from self._with_index(decoded)

    def _with_index(self, frames: list[av.VideoFrame]) -> Iterator[tuple[int, av.VideoFrame]]:
        for frame in frames:
            i = self._pts_to_index.get(frame.pts) if frame.pts is not None else None
            if i is not None:
                yield i, frame


def _skip_before(
    target: int, frames: Iterator[tuple[int, av.VideoFrame]]
) -> Iterator[tuple[int, av.VideoFrame]]:
    """``frames`` without those before ``target`` or out of order (a repeated pts)."""
    last = target - 1
    for i, frame in frames:
        if i > last:
            last = i
            yield i, frame


class _RgbConverter:
    """Decoded frame -> ``H x W x 3`` uint8 RGB, honouring the colour tags and the rotation."""

    def __init__(self, rotation: int) -> None:
        self._rotation = rotation
        self._reformatter = VideoReformatter()  # reused: keeps its scaler context between frames

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        # Scaler threads only pay off for big frames; the decoder already keeps the cores busy.
        threads = 1 if frame.width * frame.height < _THREADED_CONVERSION_PIXELS else 0
        rgb = self._reformatter.reformat(
            frame, format="rgb24", src_color_range=frame.color_range or None, threads=threads
        ).to_ndarray()
        if self._rotation:
            rgb = np.rot90(rgb, self._rotation)
        return np.ascontiguousarray(rgb)


class VideoFileSource(FrameSource):
    """Frames of one video file (the first video stream that is not cover art)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = os.path.abspath(os.fspath(path))
        self._path = path
        container = _open_container(path)
        try:
            stream = _pick_video_stream(container, path)
            scan = _scan_packets(container, stream, path)
            stream_index = stream.index
            codec_name = stream.codec_context.name
            rate = stream.average_rate
            time_base = stream.time_base or Fraction(1, 90000)
            timecode_tag = _timecode_tag(container, stream)
        finally:
            container.close()

        index = _VideoIndex(stream_index, scan.pts, scan.key_pts, scan.dts_limit, rotation=0)
        index, first = _check_decodable(path, index)
        pts = index.pts
        n = len(pts)
        truncated_at = n if (scan.cut or n < len(scan.pts)) else None
        if truncated_at is not None:
            listed = f"of {scan.listed} " if scan.listed > n else ""
            logger.warning("%s is damaged or cut: only frames 0..%d %scan be read", path, n - 1, listed)

        seconds = (pts - pts[0]).astype(np.float64) * (time_base.numerator / time_base.denominator)
        intervals = np.diff(pts)
        median = float(np.median(intervals)) if n > 1 else 0.0
        fps = _nominal_fps(rate, seconds)
        exact = Fraction(rate) if rate and float(rate) == fps else exact_rate(fps)
        step_s = median * float(time_base) if median > 0 else 1.0 / fps
        tolerance = max(VFR_TOLERANCE * median, 1.0)  # 1 tick: coarse time bases round intervals
        vfr = bool(n > 2 and np.any(np.abs(intervals - median) > tolerance))

        width, height = first.width, first.height
        if index.rotation % 2:
            width, height = height, width
        info = VideoInfo(
            path=path,
            kind="video",
            frame_count=n,
            fps=fps,
            width=width,
            height=height,
            duration_s=float(seconds[-1] + step_s),
            variable_frame_rate=vfr,
            truncated_at=truncated_at,
            codec=codec_name,
            rate=exact,
            timecode=read_timecode(timecode_tag, exact, path),
        )
        super().__init__(info, seconds)
        self._index = index
        self._pts_to_index = {int(p): i for i, p in enumerate(pts)}
        self._to_rgb = _RgbConverter(index.rotation)
        self._decoder = _Decoder(path, index, self._pts_to_index)
        self._iterators: set[_Decoder] = set()
        self._cached: tuple[int, np.ndarray] | None = None
        logger.info(
            "opened %s: %s %dx%d, %d frames, %.3f fps%s%s",
            path,
            codec_name,
            width,
            height,
            n,
            fps,
            ", variable frame rate" if vfr else "",
            f", rotated {90 * index.rotation} deg" if index.rotation else "",
        )

    def read(self, index: int) -> np.ndarray:
        self._check_open()
        i = self._check_index(index)
        if self._cached is not None and self._cached[0] == i:
            return self._cached[1].copy()
        decoder = self._decoder
        if decoder.frames is None or not self._can_decode_forward(decoder.last, i):
            decoder.frames_from(i)
        for j, frame in decoder.frames or ():
            decoder.last = j
            if j == i:
                rgb = self._to_rgb(frame)
                self._cached = (i, rgb)
                return rgb.copy()
            if j > i:
                break
        decoder.frames, decoder.last = None, -1
        raise VideoDecodeError(f"frame {i} of {self.info.path} cannot be decoded")

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        self._check_open()
        wanted = self._frame_range(start, stop)
        if not wanted:
            return
        decoder = _Decoder(self._path, self._index, self._pts_to_index)
        self._iterators.add(decoder)
        try:
            decoder.frames_from(wanted.start)
            expected = wanted.start
            for i, frame in decoder.frames or ():
                if i != expected or i >= wanted.stop:
                    break
                yield i, self._to_rgb(frame)
                expected += 1
            if expected < wanted.stop:
                raise VideoDecodeError(f"frame {expected} of {self._path} cannot be decoded")
        finally:
            self._iterators.discard(decoder)
            decoder.close()

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        self._cached = None
        self._decoder.close()
        for decoder in list(self._iterators):
            decoder.close()
        self._iterators.clear()

    def _can_decode_forward(self, last: int, i: int) -> bool:
        """True when decoding on from frame ``last`` reaches ``i`` at least as fast as seeking."""
        if last < 0 or i <= last:
            return False
        if i - last <= _FORWARD_DECODE_MAX_GAP:
            return True
        pts = self._index.pts
        return self._index.key_at_or_before(int(pts[i])) == self._index.key_at_or_before(int(pts[last]))


@dataclass(frozen=True)
class _PacketScan:
    """Frame index of a video stream from demuxing alone."""

    pts: np.ndarray
    """int64, ascending pts of the frames (packets the decoder keeps)."""
    key_pts: np.ndarray
    """int64, ascending pts of all keyframe packets."""
    dts_limit: int | None
    """Set when the file is cut: the dts of the last whole packet."""
    listed: int
    """Frames the container says it has; 0 when it does not say."""
    cut: bool
    """The file looks cut or damaged: packets are missing or partial, or demuxing failed."""


def _scan_packets(container: av.container.InputContainer, stream: av.VideoStream, path: str) -> _PacketScan:
    """Demux every packet of ``stream`` (no decoding) and index its frames.

    A cut file ends with a partial packet (flagged corrupt) or simply lacks the last packets. The
    demuxer hands out packets in decode order, so everything missing has a dts above that of the
    last whole packet, and as pts >= dts, every frame with pts <= that dts is complete: only those
    are kept.
    """
    shown: list[tuple[int, int | None]] = []  # (pts, dts) of packets the decoder will output
    keys: list[int] = []
    demuxed = discarded = 0
    corrupt_tail = demux_failed = False
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as err:
            logger.warning("%s: demuxing stopped early: %s", path, err)
            demux_failed = True
            break
        if packet.pts is None or packet.size == 0:
            continue
        demuxed += 1
        corrupt_tail = packet.is_corrupt
        if packet.is_keyframe:
            keys.append(packet.pts)
        if packet.is_discard:  # e.g. before the start of an edit list: decoded, never shown
            discarded += 1
        elif not corrupt_tail:
            shown.append((packet.pts, packet.dts))
    declared = stream.frames or 0
    cut = demux_failed or corrupt_tail or demuxed < declared or _shorter_than_declared(path)
    dts_limit = None
    if cut and shown and shown[-1][1] is not None:
        dts_limit = int(shown[-1][1])
        shown = [(p, d) for p, d in shown if p <= dts_limit]
    pts = np.unique(np.array([p for p, _ in shown], dtype=np.int64))
    if len(pts) < len(shown):
        logger.warning("%s: %d frames share a timestamp with another, kept once", path, len(shown) - len(pts))
    if len(pts) == 0:
        raise UnsupportedInputError(f"video has no readable frames: {path}")
    return _PacketScan(
        pts=pts,
        key_pts=np.unique(np.array(keys, dtype=np.int64)),
        dts_limit=dts_limit,
        listed=max(declared - discarded, 0),
        cut=cut,
    )


def _nominal_fps(rate: Fraction | None, seconds: np.ndarray) -> float:
    """The stream's average rate when it matches the timestamps within 1 %, else the measured mean
    rate (some containers report a codec rate that VFR timestamps do not follow)."""
    nominal = float(rate) if rate else 0.0
    if len(seconds) < 2 or seconds[-1] <= 0:
        return nominal if nominal > 0 else 30.0
    measured = (len(seconds) - 1) / float(seconds[-1])
    if nominal > 0 and abs(nominal - measured) <= 0.01 * measured:
        return nominal
    logger.debug("average rate %s does not match the timestamps; using %.3f fps", rate, measured)
    return measured


def _timecode_tag(container: av.container.InputContainer, stream: av.VideoStream) -> str | None:
    """The ``timecode`` FFmpeg reports for the video: FFmpeg reads a QuickTime/MP4 ``tmcd`` track's
    first sample (its frame number and drop-frame flag) into the ``timecode`` tag of the tmcd
    stream and of the video stream it belongs to; MXF, MKV and others carry it as a stream or
    container tag. The video stream's own tag first, then a data (tmcd) stream's, then the
    container's."""
    candidates = [stream.metadata, *(s.metadata for s in container.streams.data), container.metadata]
    for tags in candidates:
        value = (tags or {}).get("timecode")
        if value:
            return str(value)
    return None


def read_timecode(tag: str | None, rate: Fraction, path: str = "") -> str | None:
    """A timecode tag checked against the video's exact ``rate`` and normalised (``01:00:00;00``);
    None when there is no tag, or (with a warning) when it is malformed or the rate has no
    timecode (a variable-rate phone clip)."""
    if not tag:
        return None
    try:
        return str(Timecode.parse(tag, rate))
    except TimecodeError as err:
        logger.warning("%s: its timecode is not used: %s", path, err)
        return None


def _check_decodable(path: str, index: _VideoIndex) -> tuple[_VideoIndex, av.VideoFrame]:
    """Decode frame 0 (for size and rotation) and the frames from the last keyframe on; shrink the
    index to the frames that really decode (a damaged tail). Returns the new index and frame 0."""
    pts_to_index = {int(p): i for i, p in enumerate(index.pts)}
    decoder = _Decoder(path, index, pts_to_index)
    try:
        decoder.frames_from(0)
        first = next(decoder.frames or iter(()), None)
        if first is None or first[0] != 0:
            raise VideoDecodeError(f"the first frame of {path} cannot be decoded")
        frame = first[1]
        rotation = _quarter_turns(frame)
        n = _decodable_prefix(decoder, index, pts_to_index)
        return _VideoIndex(index.stream_index, index.pts[:n], index.key_pts, index.dts_limit, rotation), frame
    finally:
        decoder.close()


def _decodable_prefix(decoder: _Decoder, index: _VideoIndex, pts_to_index: dict[int, int]) -> int:
    """Number of leading frames that decode, judged by decoding from the last keyframes only."""
    n = len(index.pts)
    k = index.key_at_or_before(int(index.pts[-1]))
    for _ in range(_TAIL_CHECK_GOPS):
        key_pts = int(index.key_pts[k]) if k >= 0 else int(index.pts[0])
        start = pts_to_index.get(key_pts, int(np.searchsorted(index.pts, key_pts)))
        if start >= n:
            k -= 1
            continue
        decoder.frames_from(start)
        decoded = {i for i, _ in decoder.frames or ()}
        missing = [i for i in range(start, n) if i not in decoded]
        if not missing:
            return n
        n = missing[0]
        if n > start or k <= 0:
            return n
        k -= 1  # nothing decodes from this keyframe on: look further back
    return n


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counterclockwise quarter turns (0..3) the frame's display matrix asks for."""
    try:
        degrees = frame.rotation
    except Exception:  # no or odd display matrix: show the frame as stored
        return 0
    return round((degrees or 0) / 90.0) % 4


def _open_container(path: str) -> av.container.InputContainer:
    try:
        return av.open(path, mode="r")
    except av.error.FFmpegError as err:
        if _looks_like_mp4(path):
            raise UnsupportedInputError(
                f"MP4/MOV file cannot be read, probably cut off before recording finished "
                f"(no frame index): {path}"
            ) from err
        raise UnsupportedInputError(f"not a video or image FFmpeg can read: {path}") from err


def _pick_video_stream(container: av.container.InputContainer, path: str) -> av.VideoStream:
    fmt = container.format.name
    if fmt == "image2" or fmt.endswith("_pipe"):
        raise UnsupportedInputError(f"a still image, not a video: {path}")
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise UnsupportedInputError(f"no video stream in {path}")


def _shorter_than_declared(path: str) -> bool:
    """True when the file ends before its container says it does (a cut recording).

    Reads the top-level sizes of ISO-BMFF (MP4/MOV), Matroska/WebM and RIFF (AVI) files; other
    formats, and sizes written as "unknown" (live recordings), give False.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] == b"RIFF":
                return 8 + int.from_bytes(head[4:8], "little") > size
            if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML header, then the Segment
                header_size, n = _ebml_vint(head, 4)
                segment = 4 + n + header_size
                f.seek(segment)
                data = f.read(12)
                if data[:4] != b"\x18\x53\x80\x67" or len(data) < 5:
                    return False
                segment_size, n = _ebml_vint(data, 4)
                return segment_size >= 0 and segment + 4 + n + segment_size > size
            if head[4:8] in _BMFF_BOXES:
                return _bmff_box_past_end(f, size)
    except (OSError, ValueError):
        return False
    return False


_BMFF_BOXES = (b"ftyp", b"wide", b"mdat", b"free", b"moov", b"skip")


def _bmff_box_past_end(f: BinaryIO, size: int) -> bool:
    """True when a top-level ISO-BMFF box claims to end after the file's ``size``."""
    offset = 0
    while offset + 8 <= size:
        f.seek(offset)
        header = f.read(16)
        if not header[4:8].isalnum():
            return False  # not a box: trailing bytes we do not understand
        box = int.from_bytes(header[:4], "big")
        if box == 1 and len(header) >= 16:
            box = int.from_bytes(header[8:16], "big")
        elif box == 0:  # runs to the end of the file
            return False
        if box < 8:
            return False  # not a box structure we understand
        offset += box
    return offset > size


def _ebml_vint(data: bytes, pos: int) -> tuple[int, int]:
    """EBML variable-length size at ``data[pos]``: ``(value, length in bytes)``; value -1 for
    "unknown size"."""
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        raise ValueError("bad EBML size")
    value = first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = value << 8 | b
    return (-1 if value == (1 << (7 * length)) - 1 else value), length


def _looks_like_mp4(path: str) -> bool:
    """True when the file starts like an ISO-BMFF (MP4/MOV) file."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] in _BMFF_BOXES


# --------------------------------------------------------------------------------------------------
# Images


class ImageSequenceSource(FrameSource):
    """A still image (one frame) or a folder of same-sized images in natural order."""

    def __init__(
        self,
        files: list[Path],
        info: VideoInfo,
        first: np.ndarray | None = None,
    ) -> None:
        super().__init__(info, np.arange(info.frame_count, dtype=np.float64) / info.fps)
        self._files = files
        self._first = first  # frame 0, decoded at open time

    @classmethod
    def from_image(cls, path: Path, image_fps: float) -> ImageSequenceSource:
        rgb = _decode_image(path)
        if rgb is None:
            raise UnsupportedInputError(f"not an image OpenCV can read: {path}")
        info = _image_info(path, "image", 1, image_fps, rgb.shape[1], rgb.shape[0])
        logger.info("opened image %s: %dx%d", path, info.width, info.height)
        return cls([path], info, first=rgb)

    @classmethod
    def from_folder(cls, folder: Path, image_fps: float) -> ImageSequenceSource:
        files = sorted(
            (
                p
                for p in folder.iterdir()
                if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
            ),
            key=lambda p: natural_sort_key(p.name),
        )
        if not files:
            raise UnsupportedInputError(f"no images in {folder}")
        first = _decode_image(files[0])
        if first is None:
            raise UnsupportedInputError(f"not an image OpenCV can read: {files[0]}")
        size = (first.shape[1], first.shape[0])
        for f in files[1:]:
            other = _image_size(f)
            if other is None:
                raise UnsupportedInputError(f"not an image OpenCV can read: {f}")
            if other != size:
                raise UnsupportedInputError(
                    f"image {f} is {other[0]}x{other[1]} but {files[0].name} is {size[0]}x{size[1]}; "
                    "all images in a folder must have the same size"
                )
        info = _image_info(folder, "image_sequence", len(files), image_fps, *size)
        logger.info("opened image folder %s: %d images, %dx%d", folder, len(files), *size)
        return cls(files, info, first=first)

    @property
    def files(self) -> list[Path]:
        """The image files, frame by frame."""
        return list(self._files)

    def read(self, index: int) -> np.ndarray:
        self._check_open()
        i = self._check_index(index)
        if i == 0 and self._first is not None:
            return self._first.copy()
        path = self._files[i]
        rgb = _decode_image(path)
        if rgb is None:
            raise VideoDecodeError(f"image {path} (frame {i}) cannot be decoded")
        if rgb.shape[:2] != (self.info.height, self.info.width):
            raise UnsupportedInputError(
                f"image {path} is {rgb.shape[1]}x{rgb.shape[0]} but the folder's images are "
                f"{self.info.width}x{self.info.height}"
            )
        return rgb

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        self._check_open()
        for i in self._frame_range(start, stop):
            self._check_open()
            yield i, self.read(i)

    def close(self) -> None:
        super().close()
        self._first = None


def natural_sort_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders runs of digits by value: ``frame_2`` before ``frame_10``."""
    parts = re.split(r"(\d+)", name)
    return (*((1, int(t)) if t.isdigit() else (0, t.casefold()) for t in parts), (0, name))


def _image_info(path: Path, kind: str, count: int, fps: float, width: int, height: int) -> VideoInfo:
    return VideoInfo(
        path=str(path),
        kind=kind,
        frame_count=count,
        fps=float(fps),
        width=int(width),
        height=int(height),
        duration_s=count / fps,
        variable_frame_rate=False,
        truncated_at=None,
        codec=None,
        rate=exact_rate(fps),
    )


def _decode_image(path: Path) -> np.ndarray | None:
    """The image as ``H x W x 3`` uint8 RGB (EXIF orientation applied), or None if unreadable."""
    try:
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: that fails on non-ASCII Windows paths
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except (OSError, cv2.error):
        return None
    if bgr is None:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


_EXIF_ORIENTATION = 0x0112
_EXIF_TRANSPOSED = frozenset({5, 6, 7, 8})


def _image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` as :func:`_decode_image` would return it, from the header when Pillow is
    available (fast for big folders), else by decoding. None when the file is not an image."""
    try:
        from PIL import Image  # optional: only makes checking a big folder fast

        with Image.open(path) as im:
            width, height = im.size
            if im.getexif().get(_EXIF_ORIENTATION, 1) in _EXIF_TRANSPOSED:
                width, height = height, width
            return width, height
    except Exception:  # no Pillow, or a file Pillow does not know: let OpenCV decide
        rgb = _decode_image(path)
        return None if rgb is None else (rgb.shape[1], rgb.shape[0])
