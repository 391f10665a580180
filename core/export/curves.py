"""Per-frame parameter curves as NPZ, JSON or CSV, and :func:`import_curves` to read any back.

Contents: fps, frame_index, timestamp (s), has_face, identity (once), expression (N x E),
rotation / neck / jaw (N x 3 axis-angle radians, model space), eyes (N x 6: left, right), camera
(N x 4, see core.fit.camera), model name and expression names. FLAME takes also carry FLAME's own
layout: shape (S), exp (N x E), pose (N x 15 = global, neck, jaw, eye_left, eye_right), trans (N x 3
zeros). Frames without a face are gaps: NaN (NPZ), null (JSON), empty cells (CSV).

CSV layout: comment lines ``# key=value`` (format, model, fps, expression_names, identity; JSON
values) followed by a header and one row per frame: frame, time, has_face, then the columns of each
array named ``<array>_<i>`` (expression columns by expression name).

With a retarget map (core.export.retarget) ``expression`` / ``expression_names`` are the map's
target channels (FLAME's own ``exp`` stays FLAME's coefficients). With key reduction
(``--reduce``) the per-frame curves are replaced by per-curve keys: layouts in
core.export.curves_keys; :func:`import_curves` reads both.
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
        out["exp"] = req.model_expression().astype(np.float32)  # FLAME's coefficients, also under a retarget map
        out["pose"] = np.concatenate([out["rotation"], out["neck"], out["jaw"], out["eyes"]], axis=1)
        out["trans"] = np.zeros((len(fit), 3), np.float32)
    return out


def _result(req: ExportRequest) -> ExportResult:
    return ExportResult([req.out], req.num_frames, GAP_POLICY, req.gap_frames)


def _reduced(req: ExportRequest, arr: dict) -> tuple[dict, list]:
    """(the arrays without the per-frame curves, the kept keys) of a reduced export (curves_keys)."""
    from core.export.curves_keys import reduce_columns

    columns = _csv_columns({k: arr[k] for k in ARRAYS}, req.expression_names)
    keys = reduce_columns(arr, columns, req.reduction)
    rest = {k: v for k, v in arr.items() if k not in ARRAYS + ("exp", "pose", "trans")}
    return rest, keys


def _reduction_info(req: ExportRequest) -> dict:
    r = req.reduction
    return {"tolerance": r.tolerance, "degrees": r.degrees, "pixels": r.pixels, "interpolation": "linear"}


@register("curves_npz")
def curves_npz(req: ExportRequest) -> ExportResult:
    buf = io.BytesIO()
    arr = curve_arrays(req)
    if req.reduction is not None:
        arr, keys = _reduced(req, arr)
        arr["key_curves"] = np.array([k[0] for k in keys], dtype=str)
        arr["key_start"] = np.cumsum([0] + [len(k[1]) for k in keys]).astype(np.int64)
        arr["key_frame"] = np.concatenate([k[1] for k in keys]).astype(np.int64)
        arr["key_value"] = np.concatenate([k[2] for k in keys]).astype(np.float32)
        arr["reduction"] = np.array([req.reduction.tolerance, req.reduction.degrees, req.reduction.pixels])
    np.savez(buf, **arr)
    write_file_atomic(req.out, buf.getvalue())
    return _result(req)


def _nan_to_none(a: np.ndarray):
    return [None if isinstance(v, float) and math.isnan(v) else v for v in a.tolist()] if a.ndim == 1 else [
        _nan_to_none(r) for r in a]


@register("curves_json")
def curves_json(req: ExportRequest) -> ExportResult:
    arr = curve_arrays(req)
    doc = {}
    if req.reduction is not None:
        arr, keys = _reduced(req, arr)
        doc["keys"] = {label: {"frame": f.tolist(), "value": [float(x) for x in v]} for label, f, v in keys}
        doc["reduction"] = _reduction_info(req)
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
    w = csv.writer(buf, lineterminator="\n")
    if req.reduction is not None:
        rest, keys = _reduced(req, arr)
        buf.write(f"# frame_index={json.dumps(rest['frame_index'].tolist())}\n")
        buf.write(f"# has_face={json.dumps(rest['has_face'].astype(int).tolist())}\n")
        buf.write(f"# reduction={json.dumps(_reduction_info(req))}\n")
        w.writerow(["curve", "frame", "time", "value"])
        for label, frames, values in keys:
            for f, v in zip(frames.tolist(), values.tolist()):
                w.writerow([label, f, repr(f / req.fps), repr(v)])
        write_file_atomic(req.out, buf.getvalue().encode())
        return _result(req)
    cols = _csv_columns(arr, req.expression_names)
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
    if header == ["curve", "frame", "time", "value"]:  # a reduced file (core.export.curves_keys)
        keys: dict[str, tuple[list, list]] = {}
        for label, frame, _, value in body:
            keys.setdefault(label, ([], []))
            keys[label][0].append(int(frame))
            keys[label][1].append(float(value))
        return _rebuild_keys({"model": np.str_(meta["model"]), "fps": np.float64(meta["fps"]),
                              "expression_names": np.array(meta["expression_names"], dtype=str),
                              "identity": np.array(meta["identity"], np.float32),
                              "frame_index": np.array(meta["frame_index"], np.int64),
                              "timestamp": np.array(meta["frame_index"], np.float64) / float(meta["fps"]),
                              "has_face": np.array(meta["has_face"], bool)}, keys)
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


def _rebuild_keys(out: dict, keys: dict) -> dict:
    from core.export.curves_keys import rebuild

    return rebuild(out, keys)


def import_curves(path) -> dict[str, np.ndarray]:
    """Read a curves_npz / curves_json / curves_csv file back as a dict of arrays (gaps as NaN).
    A reduced file (``--reduce``) comes back per frame, interpolated linearly between its keys,
    with its keys too (``key_curves``... as the NPZ layout in core.export.curves_keys)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path) as data:
                out = {k: data[k] for k in data.files}
            if "key_curves" in out:
                start = out["key_start"]
                keys = {str(c): (out["key_frame"][start[i]:start[i + 1]], out["key_value"][start[i]:start[i + 1]])
                        for i, c in enumerate(out["key_curves"])}
                out = _rebuild_keys(out, keys)
            return out
        if suffix == ".json":
            doc = json.loads(path.read_text())
            out = {}
            for k, v in doc.items():
                if k in ("gap_policy", "keys", "reduction"):
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
            if "keys" in doc:
                out = _rebuild_keys(out, {c: (np.array(k["frame"], np.int64), np.array(k["value"], np.float64))
                                          for c, k in doc["keys"].items()})
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
