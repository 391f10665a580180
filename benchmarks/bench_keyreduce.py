"""Key reduction (``--reduce``): keys before and after, and the largest error measured in the file.

    python benchmarks/bench_keyreduce.py [--tolerance 0.01] [--degrees 0.1] [--takes DIR]

Analyses the fixture clips (``../shared/fixtures``: WolfgangLanger_Pexels.mp4, single_face.mp4,
face_noface.mov) with ``emocap analyze`` into DIR (default: a temporary folder; a complete take
there is reused), exports each take in every keyed format with and without reduction, and reads
the reduced file back with an independent reader: ufbx for FBX (tests/core/ufbx_curves.py, in a
subprocess), pygltflib for glTF, pxr for USD, core.export.import_curves for the curve files. Each
is evaluated at every frame, as the format interpolates (linear; slerp for glTF/USD quaternions).

Columns: keys before (every frame of every curve: expression curves and joint rotations; for
FBX the Euler components of the bone rotations), keys after, ratio, max weight error (expression
curves against the fit, curve units) and max rotation error (degrees, against the unreduced
export). glTF and USD share one set of key times between all blend-shape weights (one sampler /
one array attribute), so their ratio is higher than the per-curve formats'.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.export import export, import_curves, prepare_export  # noqa: E402
from core.export.base import held_rows  # noqa: E402
from core.export.keyreduce import KeyReduction, interpolate  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
CLIPS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov")
FORMATS = (("fbx", "fbx"), ("gltf", "glb"), ("usd", "usdc"), ("curves_npz", "npz"), ("curves_csv", "csv"))


def analyse(clip: Path, out: Path) -> Path:
    if not (out / "take.json").exists() or '"complete"' not in (out / "take.json").read_text():
        emocap = Path(sys.executable).with_name("emocap")
        subprocess.run([str(emocap), "analyze", str(clip), "--out", str(out), "--device", "cpu"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return out


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle between quaternions (degrees; 4 asin(|a - b| / 2) of the normalised pair)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    b = b * np.where((a * b).sum(-1) < 0, -1.0, 1.0)[..., None]
    return np.degrees(4 * np.arcsin(np.clip(np.linalg.norm(a - b, axis=-1) / 2, 0, 1)))


def slerp_at(times: np.ndarray, key_t: np.ndarray, key_q: np.ndarray) -> np.ndarray:
    out = []
    for time in times:
        k = min(max(int(np.searchsorted(key_t, time, side="right")) - 1, 0), max(len(key_t) - 2, 0))
        if len(key_t) == 1:
            out.append(key_q[0])
            continue
        s = float(np.clip((time - key_t[k]) / (key_t[k + 1] - key_t[k]), 0, 1))
        qa, qb = key_q[k], key_q[k + 1] * np.sign(key_q[k] @ key_q[k + 1])
        omega = np.arccos(np.clip(qa @ qb, -1, 1))
        out.append(qa if omega < 1e-9 else (np.sin((1 - s) * omega) * qa + np.sin(s * omega) * qb) / np.sin(omega))
    return np.array(out)


def read_fbx(path: Path, frames) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "c.npz"
        subprocess.run([sys.executable, "-P", str(ROOT / "tests" / "core" / "ufbx_curves.py"), str(path), str(out),
                        *map(str, frames)], check=True, capture_output=True)
        return dict(np.load(out))


def gltf_channels(path: Path) -> dict:
    import pygltflib

    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()

    def accessor(i):
        a = gltf.accessors[i]
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[a.type]
        start = (gltf.bufferViews[a.bufferView].byteOffset or 0) + (a.byteOffset or 0)
        return np.frombuffer(blob, np.float32, a.count * width, start).reshape(a.count, width).astype(np.float64)

    anim = gltf.animations[0]
    return {(c.target.node, c.target.path): (accessor(anim.samplers[c.sampler].input)[:, 0],
                                             accessor(anim.samplers[c.sampler].output)) for c in anim.channels}


def measure(take: Path, fmt: str, suffix: str, folder: Path, red: KeyReduction) -> tuple[int, int, float, float]:
    full = export(take, fmt, folder / f"full.{suffix}").paths[0]
    reduced = export(take, fmt, folder / f"reduced.{suffix}", reduce=red).paths[0]
    req = prepare_export(take, fmt, full)
    e = req.fit.expression.shape[1]
    truth = req.fit.expression[held_rows(req.fit.has_face)].astype(np.float64)
    if fmt == "fbx":
        frames = req.frame_index.tolist()
        a, b = read_fbx(full, frames), read_fbx(reduced, frames)
        before = int(a["key_counts"].sum() + a["bone_key_counts"].sum())
        after = int(b["key_counts"].sum() + b["bone_key_counts"].sum())
        return before, after, float(np.abs(b["weights"] - truth).max()), float(angle_deg(a["rotations"], b["rotations"]).max())
    if fmt == "gltf":
        a, b = gltf_channels(full), gltf_channels(reduced)
        t, w = b[(0, "weights")]
        weights = interpolate(req.timestamps, t, w.reshape(len(t), -1))
        rot = [angle_deg(slerp_at(a[k][0], *b[k]), a[k][1]).max() for k in b if k[1] == "rotation"]
        before = sum(len(v[0]) * (e if k[1] == "weights" else 1) for k, v in a.items())
        after = sum(len(v[0]) * (e if k[1] == "weights" else 1) for k, v in b.items())
        return before, after, float(np.abs(weights - truth).max()), float(max(rot))
    if fmt == "usd":
        from pxr import Usd, UsdSkel

        stages = [Usd.Stage.Open(str(p)) for p in (full, reduced)]  # kept open while their attributes are read

        def attrs(stage):
            anim = UsdSkel.Animation(stage.GetPrimAtPath("/EmoCap/Skel/Anim"))
            return anim.GetBlendShapeWeightsAttr(), anim.GetRotationsAttr(), anim.GetTranslationsAttr()

        fa, fb = attrs(stages[0]), attrs(stages[1])
        codes = [Usd.TimeCode(float(f)) for f in req.frame_index]
        weights = np.array([np.array(fb[0].Get(c)) for c in codes])

        def quats(attr):
            return np.array([[[q.GetReal(), *q.GetImaginary()] for q in attr.Get(c)] for c in codes])

        joints = len(fa[1].Get(codes[0]))
        before = sum(len(x.GetTimeSamples()) * k for x, k in zip(fa, (e, joints, joints)))
        after = sum(len(x.GetTimeSamples()) * k for x, k in zip(fb, (e, joints, joints)))
        return before, after, float(np.abs(weights - truth).max()), float(angle_deg(quats(fa[1]), quats(fb[1])).max())
    a, b = import_curves(full), import_curves(reduced)
    columns = [k for k in ("expression", "rotation", "neck", "jaw", "eyes", "camera")]
    before = int(sum(np.isfinite(a[k]).sum() for k in columns))
    after = count_curve_keys(reduced)
    faces = a["has_face"]
    rot = max(np.degrees(np.linalg.norm(b[k][faces] - a[k][faces], axis=1)).max() for k in ("rotation", "neck", "jaw", "eyes"))
    return before, after, float(np.abs(b["expression"][faces] - a["expression"][faces]).max()), float(rot)


def count_curve_keys(path: Path) -> int:
    """Keys in a reduced curves file: NPZ ``key_frame`` entries, CSV rows after the header."""
    if path.suffix == ".npz":
        with np.load(path) as raw:
            return int(len(raw["key_frame"]))
    return len([x for x in path.read_text().splitlines() if x and not x.startswith("#")]) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tolerance", type=float, default=0.01, help="weight tolerance (curve units)")
    parser.add_argument("--degrees", type=float, default=0.1, help="rotation tolerance (degrees)")
    parser.add_argument("--takes", type=Path, default=None, help="folder for the analysed takes (reused)")
    args = parser.parse_args()
    red = KeyReduction(args.tolerance, degrees=args.degrees)
    takes = args.takes or Path(tempfile.mkdtemp(prefix="emocap_bench_keys_"))
    print(f"tolerance {args.tolerance:g} (curve units), {args.degrees:g} degrees\n")
    print(f"{'clip':<28} {'format':<11} {'frames':>6} {'keys before':>11} {'keys after':>10} {'ratio':>6} "
          f"{'max weight err':>14} {'max rot err deg':>15}")
    for clip in CLIPS:
        take = analyse(FIXTURES / clip, takes / Path(clip).stem)
        frames = prepare_export(take, "curves_npz", "x.npz").num_frames
        for fmt, suffix in FORMATS:
            with tempfile.TemporaryDirectory() as tmp:
                before, after, werr, rerr = measure(take, fmt, suffix, Path(tmp), red)
            print(f"{clip:<28} {fmt:<11} {frames:>6} {before:>11} {after:>10} {after / before:>6.3f} {werr:>14.5f} {rerr:>15.4f}")


if __name__ == "__main__":
    main()
