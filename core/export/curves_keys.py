"""Reduced curve files (``--reduce`` on curves_npz / curves_json / curves_csv): each column of the
per-frame table becomes a curve of its own with only the keys core.export.keyreduce keeps, to be
interpolated linearly between keys (never across a gap: the frames around a gap are keys).

Tolerances per column: expression curves the weight tolerance (curve units; with a retarget map
the mapped channels' units); rotation, neck, jaw, eyes (axis-angle radians) each component within
radians(degrees) / sqrt(3), so the axis-angle vector, and with it the rotation angle, stays within
the tolerance in degrees; camera translation columns within ``pixels`` px, its log scale within
``pixels / 1000``.

Layouts (a curve's label is its CSV column name: ``expression_<name>`` or ``<array>_<i>``):
- NPZ: ``key_curves`` (C labels), ``key_start`` (C + 1 offsets into the next two),
  ``key_frame`` (video frame numbers, int64), ``key_value`` (float32), ``reduction``
  ([tolerance, degrees, pixels]); frame_index, timestamp, has_face as in the full file.
- JSON: ``keys``: {label: {"frame": [...], "value": [...]}}, ``reduction``: {...}.
- CSV: the ``# key=value`` comment lines (plus frame_index, has_face and reduction), then
  ``curve,frame,time,value``, one row per key.
"""

from __future__ import annotations

import math

import numpy as np

from core.export.keyreduce import KeyReduction, interpolate, keep_mask

ROTATIONS = ("rotation", "neck", "jaw", "eyes")


def column_tolerance(array: str, index: int, red: KeyReduction) -> float:
    if array in ROTATIONS:
        return math.radians(red.degrees) / math.sqrt(3.0)
    if array == "camera":
        return red.pixels / 1000.0 if index == 0 else red.pixels
    return red.tolerance


def reduce_columns(arr: dict, columns: list[tuple[str, str, int]], red: KeyReduction) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, video frames, values) of each column's kept keys; ``columns`` as curves._csv_columns."""
    frames = np.asarray(arr["frame_index"], np.int64)
    out = []
    for label, array, i in columns:
        values = np.asarray(arr[array][:, i], np.float64)
        mask = keep_mask(values, column_tolerance(array, i, red)) & np.isfinite(values)
        out.append((label, frames[mask], values[mask].astype(np.float32)))
    return out


def rebuild(out: dict, keys: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Per-frame arrays (gaps NaN) from reduced keys, into ``out`` (which has frame_index, has_face)."""
    frames = np.asarray(out["frame_index"], np.float64)
    gaps = ~np.asarray(out["has_face"], bool)
    groups: dict[str, dict[int, np.ndarray]] = {}
    names = [str(n) for n in np.asarray(out.get("expression_names", []))]
    for label, (kf, kv) in keys.items():
        if label.startswith("expression_") and label[len("expression_"):] in names:
            array, i = "expression", names.index(label[len("expression_"):])
        else:
            array, _, idx = label.rpartition("_")
            i = int(idx)
        col = interpolate(frames, np.asarray(kf, np.float64), np.asarray(kv, np.float64)) if len(kf) else np.full(len(frames), np.nan)
        col[gaps] = np.nan
        groups.setdefault(array, {})[i] = col
    for array, cols in groups.items():
        out[array] = np.stack([cols[i] for i in sorted(cols)], axis=1).astype(np.float32)
    if str(out.get("model")) == "flame" and "rotation" in out:
        out["shape"] = np.asarray(out["identity"], np.float32)
        out["exp"] = out["expression"]
        out["pose"] = np.concatenate([out["rotation"], out["neck"], out["jaw"], out["eyes"]], axis=1)
        out["trans"] = np.zeros((len(frames), 3), np.float32)
    return out
