"""Per-frame parameter curves as NPZ, JSON or CSV, and :func:`import_curves` to read any back.

Contents: fps, frame_index, timestamp (s), has_face, identity (once), expression (N x E),
rotation / neck / jaw (N x 3 axis-angle radians, model space), eyes (N x 6: left, right), camera
(N x 4, see core.fit.camera), model name and expression names. FLAME takes also carry FLAME's own
layout: shape (S), exp (N x E), pose (N x 15 = global, neck, jaw, eye_left, eye_right), trans (N x 3
zeros). Frames without a face are gaps: NaN (NPZ), null (JSON), empty cells (CSV).

CSV layout: comment lines ``# key=value`` (format, model, fps, expression_names, identity; JSON
values) followed by a header and one row per frame: frame, time, has_face, then the columns of each
array named ``<array>_<i>`` (expression columns by expression name).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from core.errors import ExportError
from core.export.base import GAP_POLICY, ExportRequest, ExportResult, write_file_atomic
from core.export.registry import register

ARRAYS = ("expression", "rotation", "neck", "jaw", "eyes", "camera")
FLAME_KEYS = ("shape", "exp", "pose", "trans")


def curve_arrays(req: ExportRequest) -> dict[str, np.ndarray]:
    fit = req.fit
    out: dict[str, np.ndarray] = {
        "fps": np.float64(req.fps), "frame_index": req.frame_index, "timestamp": req.timestamps,
        "has_face": fit.has_face.astype(bool), "identity": fit.identity.astype(np.float32),
        "model": np.str_(req.model), "expression_names": np.array(req.expression_names, dtype=str),
    }
    for k in ARRAYS:
        out[k] = getattr(fit, k).astype(np.float32)
    if req.model == "flame":
        out["shape"] = fit.identity.astype(np.float32)
        out["exp"] = out["expression"]
        out["pose"] = np.concatenate([out["rotation"], out["neck"], out["jaw"], out["eyes"]], axis=1)
        out["trans"] = np.zeros((len(fit), 3), np.float32)
    return out


def _result(req: ExportRequest) -> ExportResult:
    return ExportResult([req.out], req.num_frames, GAP_POLICY, req.gap_frames)


@register("curves_npz")
def curves_npz(req: ExportRequest) -> ExportResult:
    buf = io.BytesIO()
    np.savez(buf, **curve_arrays(req))
    write_file_atomic(req.out, buf.getvalue())
    return _result(req)


def _nan_to_none(a: np.ndarray):
    return [None if isinstance(v, float) and math.isnan(v) else v for v in a.tolist()] if a.ndim == 1 else [
        _nan_to_none(r) for r in a]


@register("curves_json")
def curves_json(req: ExportRequest) -> ExportResult:
    arr = curve_arrays(req)
    doc = {}
    for k, v in arr.items():
        v = np.asarray(v)
        doc[k] = v.item() if v.ndim == 0 else _nan_to_none(v.astype(np.float64) if v.dtype.kind == "f" else v)
    doc["gap_policy"] = GAP_POLICY
    write_file_atomic(req.out, (json.dumps(doc, allow_nan=False) + "\n").encode())
    return _result(req)


def _csv_columns(arr: dict, names: list[str]) -> list[tuple[str, str, int]]:
    cols = []
    for k in ARRAYS + (("pose", "trans") if "pose" in arr else ()):
        width = arr[k].shape[1]
        for i in range(width):
            label = f"expression_{names[i]}" if k == "expression" and i < len(names) else f"{k}_{i}"
            cols.append((label, k, i))
    return cols


@register("curves_csv")
def curves_csv(req: ExportRequest) -> ExportResult:
    arr = curve_arrays(req)
    buf = io.StringIO()
    for key in ("model", "fps", "expression_names", "identity"):
        v = np.asarray(arr[key])
        buf.write(f"# {key}={json.dumps(v.item() if v.ndim == 0 else v.tolist())}\n")
    buf.write(f"# gap_policy={json.dumps(GAP_POLICY)}\n")
    cols = _csv_columns(arr, req.expression_names)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["frame", "time", "has_face"] + [c[0] for c in cols])
    data = np.concatenate([arr[k][:, i:i + 1] for _, k, i in cols], axis=1) if cols else np.zeros((req.num_frames, 0))
    for r in range(req.num_frames):
        row = [int(arr["frame_index"][r]), repr(float(arr["timestamp"][r])), int(arr["has_face"][r])]
        row += ["" if math.isnan(x) else repr(x) for x in data[r].tolist()]
        w.writerow(row)
    write_file_atomic(req.out, buf.getvalue().encode())
    return _result(req)


def _from_csv(path: Path) -> dict[str, np.ndarray]:
    meta, lines = {}, []
    with open(path, newline="") as f:
        for line in f:
            if line.startswith("#"):
                key, _, value = line[1:].strip().partition("=")
                meta[key] = json.loads(value)
            else:
                lines.append(line)
    rows = list(csv.reader(lines))
    header, body = rows[0], rows[1:]
    table = np.array([[np.nan if c == "" else float(c) for c in r] for r in body], np.float64).reshape(len(body), len(header))
    out: dict[str, np.ndarray] = {
        "model": np.str_(meta["model"]), "fps": np.float64(meta["fps"]),
        "expression_names": np.array(meta["expression_names"], dtype=str),
        "identity": np.array(meta["identity"], np.float32),
        "frame_index": table[:, 0].astype(np.int64), "timestamp": table[:, 1], "has_face": table[:, 2] > 0.5,
    }
    groups: dict[str, list[int]] = {}
    for j, label in enumerate(header[3:], start=3):
        key = "expression" if label.startswith("expression_") else label.rsplit("_", 1)[0]
        groups.setdefault(key, []).append(j)
    for key, idx in groups.items():
        out[key] = table[:, idx].astype(np.float32)
    if "pose" in out:
        out["shape"] = out["identity"]
        out["exp"] = out["expression"]
    return out


def import_curves(path) -> dict[str, np.ndarray]:
    """Read a curves_npz / curves_json / curves_csv file back as a dict of arrays (gaps as NaN)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        if suffix == ".json":
            doc = json.loads(path.read_text())
            out = {}
            for k, v in doc.items():
                if k == "gap_policy":
                    continue
                if k in ("model",):
                    out[k] = np.str_(v)
                elif k == "expression_names":
                    out[k] = np.array(v, dtype=str)
                elif k == "has_face":
                    out[k] = np.array(v, bool)
                elif k == "frame_index":
                    out[k] = np.array(v, np.int64)
                elif k in ("fps", "timestamp"):
                    out[k] = np.array(v, np.float64)
                else:
                    out[k] = np.array([np.nan] if v is None else v, dtype=np.float64).astype(np.float32) if not isinstance(
                        v, list) else _nan_array(v)
            return out
        if suffix == ".csv":
            return _from_csv(path)
    except (OSError, ValueError, KeyError, IndexError) as err:
        raise ExportError(f"{path} is not a readable curves file: {err}") from err
    raise ExportError(f"{path}: curves files end in .npz, .json or .csv")


def _nan_array(v: list) -> np.ndarray:
    def fix(x):
        return [fix(y) for y in x] if isinstance(x, list) else (np.nan if x is None else x)

    return np.array(fix(v), np.float64).astype(np.float32)
