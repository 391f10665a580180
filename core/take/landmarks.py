"""A take's landmarks read from its observation chunks when they are indexed, not held.

The landmarks are most of what a take's observations weigh (478 x 3 float32, 5.7 KB a frame:
115 MB at 20 000 frames), and every stage of an analysis reads them a window or a few points at a
time; :class:`ChunkedLandmarks` keeps only the blocks read last.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from core.observe.landmark_ids import NUM_LANDMARKS


class ChunkedLandmarks:
    """N x 478 x 3 float32 landmarks (image pixels) stored as consecutive blocks of rows (a take's
    observation chunks): ``read_block(k)`` returns block k (``lengths[k]`` x 478 x 3) and is called
    when a row of it is indexed; the CACHED_BLOCKS blocks used last are kept.

    Indexing takes the rows first (an int, a slice, an int or bool array, or ``...``), then what
    NumPy takes for the remaining axes, and returns a new NumPy array: ``landmarks[rows]``,
    ``landmarks[:, [61, 291], :2]`` (every row, streamed block by block). ``np.asarray`` reads every
    block into one array. Safe to index from several threads."""

    CACHED_BLOCKS = 4
    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, read_block: Callable[[int], np.ndarray], lengths: Sequence[int]) -> None:
        self._read_block = read_block
        self._starts = np.concatenate([[0], np.cumsum(np.asarray(lengths, np.int64))])  # block k: rows [starts[k], starts[k + 1])
        self.shape = (int(self._starts[-1]), NUM_LANDMARKS, 3)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ChunkedLandmarks(shape={self.shape}, blocks={len(self._starts) - 1})"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        if first is Ellipsis:
            first, rest = slice(None), key
        rows, single = self._rows(first)
        per_row = (slice(None), *rest)  # applied to each block's selected rows
        out = np.empty((len(rows),) + np.empty((0, *self.shape[1:]), self.dtype)[per_row].shape[1:], self.dtype)
        blocks = np.searchsorted(self._starts, rows, side="right") - 1
        for k in np.unique(blocks):
            where = np.flatnonzero(blocks == k)
            out[where] = self._block(int(k))[rows[where] - self._starts[k]][per_row]
        return out[0] if single else out

    def _rows(self, first) -> tuple[np.ndarray, bool]:
        """The row numbers (ascending or not, each in [0, N)) that ``first`` selects, and whether it
        was a single row (an int: the result has no row axis)."""
        n = len(self)
        if isinstance(first, (int, np.integer)):
            row = int(first) + n if first < 0 else int(first)
            if not 0 <= row < n:
                raise IndexError(f"row {first} is out of range for {n} frames")
            return np.array([row]), True
        if isinstance(first, slice):
            return np.arange(*first.indices(n)), False
        selection = np.asarray(first)
        if selection.ndim != 1:
            raise IndexError("landmark rows are selected by an int, a slice or a 1-D array")
        if selection.dtype == bool:
            if len(selection) != n:
                raise IndexError(f"a boolean row selection of length {len(selection)} for {n} frames")
            return np.flatnonzero(selection), False
        if len(selection) and not np.issubdtype(selection.dtype, np.integer):
            raise IndexError(f"landmark rows must be integers, not {selection.dtype}")
        rows = selection.astype(np.int64)
        rows = np.where(rows < 0, rows + n, rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"a row is out of range for {n} frames")
        return rows, False

    def _block(self, k: int) -> np.ndarray:
        with self._lock:
            block = self._cache.get(k)
            if block is not None:
                self._cache.move_to_end(k)
                return block
            block = np.asarray(self._read_block(k), np.float32)
            expected = (int(self._starts[k + 1] - self._starts[k]), *self.shape[1:])
            if block.shape != expected:
                raise ValueError(f"landmark block {k} has shape {block.shape}, not {expected}")
            self._cache[k] = block
            if len(self._cache) > self.CACHED_BLOCKS:
                self._cache.popitem(last=False)
            return block
