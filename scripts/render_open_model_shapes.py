"""Render every expression of the open face model at full weight into one PNG grid, for review.

Each tile is an orthographic, Lambert-shaded view of the mesh, coloured by how far each part moved
(grey = still, yellow 3 mm, orange 6 mm, red 9 mm and more); the neutral's feature lines (lids,
lips, brows, nose wings, face outline) are drawn in light blue over it, the moved ones in black, so
the motion reads at a glance. Front views are not mirrored: the performer's left is on the image
right. Shapes that move mostly in depth get a second tile seen from the performer's left side (face
toward the image left).

    python scripts/render_open_model_shapes.py [OUT.png] [--model resources/open_face_model.npz]
        [--only jawOpen,mouthSmileLeft,jawOpen+mouthClose] [--columns 8] [--tile 2.4]

The default grid ends with a few sums of shapes that animators use together (jawOpen+mouthClose).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402

from core.facemodel import open_model as om  # noqa: E402
from core.observe import landmark_ids as ids  # noqa: E402

log = logging.getLogger("render_open_model_shapes")

SIDE_VIEWS = (
    "jawOpen", "jawForward", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "cheekPuff", "tongueOut",
)
FACE_OVAL = ids.FACE_OVAL + ids.FACE_OVAL[:1]  # closed, to draw as a line
FEATURE_LINES = (
    (33,) + om.RIGHT_UPPER_LID + (133,), (33,) + om.RIGHT_LOWER_LID + (133,),
    (263,) + om.LEFT_UPPER_LID + (362,), (263,) + om.LEFT_LOWER_LID + (362,),
    om.RIGHT_BROW_UPPER, om.RIGHT_BROW_LOWER, om.LEFT_BROW_UPPER, om.LEFT_BROW_LOWER,
    om.UPPER_LIP_OUTER, om.LOWER_LIP_OUTER, om.UPPER_LIP_INNER, om.LOWER_LIP_INNER,
    om.RIGHT_NOSE_WING, om.LEFT_NOSE_WING, FACE_OVAL,
)
COMBINATIONS = ("jawOpen+mouthClose", "eyeBlinkLeft+eyeBlinkRight", "mouthSmileLeft+mouthSmileRight")
IRIS_POINTS = np.array(ids.RIGHT_IRIS + ids.LEFT_IRIS)
IRIS_COLOUR = (0.15, 0.25, 0.45)
MOTION_CMAP = LinearSegmentedColormap.from_list(
    "motion", [(0.0, (0.82, 0.82, 0.82)), (0.25, (1.0, 0.9, 0.3)), (0.5, (1.0, 0.55, 0.1)),
               (0.75, (0.9, 0.15, 0.1)), (1.0, (0.5, 0.0, 0.1))])
MOTION_SCALE_M = 0.012  # displacement shown in the darkest colour
LIGHT = np.array([-0.35, 0.45, 1.0]) / np.linalg.norm([-0.35, 0.45, 1.0])


def project(points: np.ndarray, view: str) -> np.ndarray:
    """Model space -> (u right, v up, w toward the camera), millimetres."""
    p = points * 1000.0
    if view == "front":
        return p
    return np.stack([-p[:, 2], p[:, 1], p[:, 0]], axis=1)  # camera on the performer's left


def draw_mesh(ax, vertices: np.ndarray, faces: np.ndarray, motion: np.ndarray, neutral: np.ndarray, view: str) -> None:
    q = project(vertices, view)
    a, b, c = (q[faces[:, k]] for k in range(3))
    normals = np.cross(b - a, c - a)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    visible = normals[:, 2] > 0
    order = np.argsort(((a + b + c)[:, 2])[visible])
    tris = faces[visible][order]
    shade = 0.35 + 0.65 * np.clip(normals[visible][order] @ LIGHT, 0, 1)
    face_motion = motion[tris].mean(axis=1) / MOTION_SCALE_M
    colours = MOTION_CMAP(np.clip(face_motion, 0, 1))[:, :3] * shade[:, None]
    colours[np.isin(tris, IRIS_POINTS).all(axis=1)] = IRIS_COLOUR  # depth-sorted with the lids
    ax.add_collection(PolyCollection(q[tris][:, :, :2], facecolors=colours, edgecolors=colours, linewidths=0.2))
    neutral_q = project(neutral, view)
    ax.add_collection(LineCollection([neutral_q[list(line), :2] for line in FEATURE_LINES],
                                     colors=(0.2, 0.6, 1.0, 0.8), linewidths=0.6))
    ax.add_collection(LineCollection([q[list(line), :2] for line in FEATURE_LINES],
                                     colors=(0, 0, 0, 0.9), linewidths=0.5))
    ax.set_xlim(-85, 85) if view == "front" else ax.set_xlim(-75, 95)
    ax.set_ylim(-150, 65)
    ax.set_aspect("equal")
    ax.axis("off")


def render(data, out: Path, only: list[str] | None, columns: int, tile: float) -> None:
    """Tiles: each name in ``only`` (front and side) or the default set; a name may be a sum of
    shapes ("jawOpen+mouthClose")."""
    names = list(data.expression_names)
    tiles = [("neutral", "front"), ("neutral", "side")] if not only else []
    for name in only or names + list(COMBINATIONS):
        tiles.append((name, "front"))
        if only or name in SIDE_VIEWS or name in COMBINATIONS:
            tiles.append((name, "side"))
    rows = int(np.ceil(len(tiles) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * tile, rows * tile * 1.15), squeeze=False)
    template = data.template.astype(np.float64)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, view) in zip(axes.flat, tiles):
        disp = np.zeros_like(template)
        for part in name.split("+"):
            if part != "neutral":
                disp += data.expression_basis[:, :, names.index(part)]
        motion = np.linalg.norm(disp, axis=1)
        draw_mesh(ax, template + disp, data.faces, motion, template, view)
        label = name if view == "front" else f"{name} (side)"
        ax.set_title(f"{label}\nmax {motion.max() * 1000:.1f} mm", fontsize=8)
    fig.suptitle("open face model: ARKit shapes at weight 1 (colour = motion, grey 0, red >= 9 mm; "
                 "blue lines = neutral; front views unmirrored: performer's left on the right)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    log.info("wrote %s (%d tiles)", out, len(tiles))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("/tmp/open_model_shapes.png"))
    parser.add_argument("--model", type=Path, default=om.OPEN_MODEL_PATH)
    parser.add_argument("--only", help="comma-separated expression names or sums of them such as "
                        "jawOpen+mouthClose (each gets a front and a side view)")
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--tile", type=float, default=2.4, help="tile width in inches (100 dpi)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = om.load_open_model(args.model)
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    unknown = [p for n in only or () for p in n.split("+") if p not in data.expression_names]
    if unknown:
        parser.error(f"unknown expression names: {', '.join(unknown)}")
    render(data, args.out, only, args.columns, args.tile)


if __name__ == "__main__":
    main()
