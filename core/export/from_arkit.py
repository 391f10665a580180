"""ARKit curves -> FLAME: ``emocap convert --from-arkit CSV --flame FILE --out OUT.npz`` turns a
Live Link Face CSV (EmoCap's own arkit_csv export or Epic's app's) into FLAME expression and jaw
parameters per frame through the FLAME <-> ARKit map solved from the user's FLAME file
(core.facemodel.flame_arkit; cached, never shipped).

OUT.npz: ``expression`` N x E and ``jaw`` N x 3 (axis-angle, radians) float32, ``has_face`` N
(rows with empty ARKit cells are NaN), ``timecode`` N strings, ``arkit`` N x 52 the weights read,
``expression_names`` (exp000..), ``flame_sha256`` (the FLAME file the map was solved from)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import FlameArkitError


@dataclass(frozen=True)
class LiveLinkCurves:
    """timecode: N strings; weights: N x 52 in ARKIT_NAMES order (NaN where a cell is empty)."""

    timecode: tuple[str, ...]
    weights: np.ndarray


def read_live_link_csv(path: str | Path) -> LiveLinkCurves:
    """The 52 ARKit columns of a Live Link Face CSV (column names as Epic writes them, EyeBlinkLeft...;
    ARKit's own spelling, eyeBlinkLeft..., is accepted too). FlameArkitError names what is missing."""
    from core.export.arkit_csv import LLF_NAMES

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise FlameArkitError(f"cannot read the Live Link CSV {path}: {err}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise FlameArkitError(f"{path} is empty: expected a Live Link Face CSV (Timecode,BlendShapeCount,EyeBlinkLeft,...)")
    header = [h.strip() for h in rows[0]]
    lowered = {h.lower(): i for i, h in enumerate(header)}
    missing = [n for n in LLF_NAMES if n.lower() not in lowered]
    if missing:
        raise FlameArkitError(f"{path} is not a Live Link Face CSV: {len(missing)} ARKit columns missing "
                              f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})")
    columns = [lowered[n.lower()] for n in LLF_NAMES]
    tc = lowered.get("timecode")
    weights = np.full((len(rows) - 1, len(LLF_NAMES)), np.nan)
    timecodes = []
    for r, row in enumerate(rows[1:]):
        timecodes.append(row[tc] if tc is not None and tc < len(row) else "")
        for c, col in enumerate(columns):
            cell = row[col].strip() if col < len(row) else ""
            if not cell:
                continue
            try:
                value = float(cell)
            except ValueError:
                raise FlameArkitError(f"{path} line {r + 2}, column {header[col]}: not a number: '{cell}'") from None
            if not math.isfinite(value):
                raise FlameArkitError(f"{path} line {r + 2}, column {header[col]}: not a finite number: '{cell}'")
            weights[r, c] = value
    return LiveLinkCurves(tuple(timecodes), weights)


def arkit_csv_to_flame(csv_path, flame_path, out, *, num_expression: int = 50, cache_dir=None) -> dict:
    """Convert (see the module docstring); returns what was written, as arrays."""
    from core.atomic import write_bytes_atomic
    from core.facemodel.flame_arkit import load_or_solve

    curves = read_live_link_csv(csv_path)
    amap = load_or_solve(flame_path, num_expression=num_expression, cache_dir=cache_dir)
    has_face = ~np.isnan(curves.weights).any(axis=1)
    expression, jaw = amap.to_flame(np.clip(np.nan_to_num(curves.weights), 0.0, 1.0))
    expression[~has_face] = np.nan
    jaw[~has_face] = np.nan
    arrays = {"expression": expression.astype(np.float32), "jaw": jaw.astype(np.float32), "has_face": has_face,
              "timecode": np.array(curves.timecode, dtype=str), "arkit": curves.weights.astype(np.float32),
              "expression_names": np.array([f"exp{i:03d}" for i in range(amap.num_expression)]),
              "flame_sha256": np.array(amap.flame_sha256)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, buf.getvalue())
    return arrays


def add_convert_parser(subparsers):
    p = subparsers.add_parser("convert", help="ARKit curves (Live Link Face CSV) to FLAME expression + jaw")
    p.add_argument("--from-arkit", dest="from_arkit", required=True, metavar="CSV", help="a Live Link Face CSV")
    p.add_argument("--flame", required=True, metavar="FILE",
                   help="your FLAME file (generic_model.pkl / flame2023.pkl); the map is solved from it and cached")
    p.add_argument("--out", required=True, metavar="OUT.npz")
    p.add_argument("--expression-components", type=int, default=50, help="FLAME expression components (default 50)")
    p.set_defaults(func=run_convert)
    return p


def run_convert(args) -> int:
    arrays = arkit_csv_to_flame(args.from_arkit, args.flame, args.out, num_expression=args.expression_components)
    print(f"converted {len(arrays['has_face'])} frames ({int(arrays['has_face'].sum())} with ARKit curves) to "
          f"FLAME expression {arrays['expression'].shape[1]} + jaw in {args.out}")
    return 0
