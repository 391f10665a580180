"""Draw the fitted mesh of a take over a few of its frames, side by side, into one PNG.

    python scripts/render_fit_overlays.py TAKE OUT.png [--frames 0,100,200,300] [--flame PATH]

The mesh is the fitted face model projected with the fitted camera; landmarks observed by MediaPipe
are drawn as small dots, so misfits are visible.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from core.facemodel.loading import ModelChoice, load_face_model
from core.fit.camera import project
from core.take import Take
from core.video import open_source


def overlay(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
    out = image.copy()
    pts = np.round(vertices[:, :2] * 4).astype(np.int32)  # 2 bits of sub-pixel precision
    cv2.polylines(out, [pts[f] for f in faces], True, (80, 220, 255), 1, cv2.LINE_AA, shift=2)
    if landmarks is not None:
        for x, y in landmarks[:, :2]:
            cv2.circle(out, (int(round(x)), int(round(y))), 1, (255, 60, 60), -1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("take", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", default="", help="comma-separated frame indices (default: 4 spread out)")
    parser.add_argument("--flame", help="FLAME file, for takes fitted with FLAME")
    parser.add_argument("--height", type=int, default=360, help="height of each tile in pixels")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    take = Take.open(args.take)
    settings = take.manifest.fit.settings
    choice = ModelChoice(settings["model"], args.flame or settings.get("flame_path"),
                         settings.get("num_shape", 100), settings.get("num_expression", 50))
    model = load_face_model(choice)
    fit = take.read_fit()
    observations = take.load_observations()
    with_face = np.nonzero(fit.has_face)[0]
    frames = [int(f) for f in args.frames.split(",")] if args.frames else sorted(set(with_face[np.linspace(0, len(with_face) - 1, 4).astype(int)].tolist()))
    tiles = []
    with open_source(take.manifest.source.path) as source:
        for frame in frames:
            image = source.read(frame)
            if fit.has_face[frame]:
                with torch.no_grad():
                    verts = model(fit.to_face_params(np.array([frame]))).vertices
                    image_vertices = project(verts, torch.as_tensor(fit.camera[[frame]]))[0].numpy()
                image = overlay(image, image_vertices, model.faces.numpy(), observations.landmarks[frame])
            cv2.putText(image, f"frame {frame}", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
            scale = args.height / image.shape[0]
            tiles.append(cv2.resize(image, (int(image.shape[1] * scale), args.height), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(args.out), cv2.cvtColor(np.hstack(tiles), cv2.COLOR_RGB2BGR))
    logging.info("wrote %s (frames %s)", args.out, frames)


if __name__ == "__main__":
    main()
