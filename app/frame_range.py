"""A range of frames [start, stop) shown on a timeline as a pyqtgraph LinearRegionItem: the in/out
range of the timelines and the curve editor's selection share it."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


def show_frame_range(region: pg.LinearRegionItem, start: int | None, stop: int | None) -> tuple[int, int] | None:
    """Show frames [start, stop) on ``region`` (from half a frame before ``start`` to half a frame
    before ``stop``) without emitting its change signals; an empty or missing range hides it.
    Returns the range shown, or None."""
    if start is None or stop is None or stop <= start:
        region.hide()
        return None
    region.blockSignals(True)
    region.setRegion((start - 0.5, stop - 0.5))
    region.blockSignals(False)
    region.show()
    return int(start), int(stop)


def frame_range_of(region: pg.LinearRegionItem, frame_count: int) -> tuple[int, int]:
    """The frames [start, stop) that ``region`` covers, rounded to whole frames within a clip of
    ``frame_count`` frames (at least one frame)."""
    low, high = region.getRegion()
    start = int(np.clip(round(low + 0.5), 0, max(frame_count - 1, 0)))
    stop = int(np.clip(round(high + 0.5), start + 1, max(frame_count, 1)))
    return start, stop
