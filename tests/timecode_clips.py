"""Real video files with a timecode track, made from a fixture's frames (tests of core/timecode.py).

FFmpeg's MOV/MP4 muxer (PyAV's bundled libraries) writes a QuickTime ``tmcd`` track when the video
stream has a ``timecode`` tag: a data stream whose one sample is the start frame number (32-bit big
endian) and whose sample description carries the drop-frame flag. :func:`tmcd_start_frame` reads
that sample back from the file, independently of the ``timecode`` tag FFmpeg derives from it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from core.video import open_source


def write_timecode_clip(src: Path, out: Path, frames: int, rate: Fraction, timecode: str | None,
                        scale: float = 1.0) -> Path:
    """The first ``frames`` frames of ``src`` re-encoded (H.264) at ``rate`` into ``out`` (.mov or
    .mp4), with a tmcd track starting at ``timecode`` (None: no timecode)."""
    with open_source(src) as source, av.open(str(out), "w") as container:
        height, width = source.info.height, source.info.width
        w, h = int(width * scale) // 2 * 2, int(height * scale) // 2 * 2
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        if timecode is not None:
            stream.metadata["timecode"] = timecode
        for _, rgb in source.iter_frames(0, frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if (w, h) != (width, height):
                frame = frame.reformat(width=w, height=h)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def tmcd_start_frame(path: Path) -> int | None:
    """The frame number in the file's tmcd sample (None: no tmcd track), read from the packet."""
    with av.open(str(path)) as container:
        for stream in container.streams.data:
            for packet in container.demux(stream):
                data = bytes(packet)
                if len(data) == 4:
                    return int.from_bytes(data, "big")
    return None


def has_tmcd_box(path: Path) -> bool:
    """Whether the file holds a QuickTime timecode sample description (``tmcd``)."""
    return b"tmcd" in Path(path).read_bytes()
