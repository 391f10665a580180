"""Compare input crops with reconstruction renders: [aligned input crop | render] per frame, in one PNG.

    python scripts/render_reconstruction.py TAKE OUT.png [--frames 12,80,200] [--background grey] [--shaded]

The render is the fitted mesh of the frame, seen by its fitted camera in the frame's aligned crop,
textured from the take's reference frame, the one its emotion stage used (else chosen as that
stage chooses: a quiet frame with no hand over the face that FER reads as least expressive,
core.render.reference; core.render.reconstruction): it must show
the fitted expression, not the frame's pixels. Without --frames, the reference frame and the frames
whose expressions differ most from it and from each other are shown (farthest-point sampling on
the expression rows), so a glance covers the clip's range.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from core.facemodel.loading import ModelChoice, load_face_model
from core.fit.params import FitParams
from core.observe.align import warp_crop
from core.render.rasterizer import rasterize, render_shaded
from core.render.reconstruction import BACKGROUNDS, ReconstructionRenderer
from core.render.reference import choose_uncovered_reference_frame
from core.take import Take
from core.video import open_source

log = logging.getLogger("render_reconstruction")


def diverse_frames(fit: FitParams, reference: int, count: int) -> list[int]:
    """``count`` frames with a face, greedily farthest (L1 over expression rows) from the reference
    and from the frames already picked."""
    rows = np.nonzero(fit.has_face & np.isfinite(fit.expression).all(axis=1))[0]
    expression = fit.expression[rows].astype(np.float64)
    picked = [int(np.nonzero(fit.frame_index[rows] == reference)[0][0])]
    distance = np.abs(expression - expression[picked[0]]).sum(axis=1)
    while len(picked) < min(count + 1, len(rows)):
        best = int(np.argmax(distance))
        picked.append(best)
        distance = np.minimum(distance, np.abs(expression - expression[best]).sum(axis=1))
    return [int(fit.frame_index[rows[i]]) for i in picked[1:]]


def shaded(renderer: ReconstructionRenderer, frame: int) -> np.ndarray:
    """The frame's fitted skin mesh in its crop, Lambert-shaded on grey."""
    frags, points = renderer.fragments(frame)
    skin = frags.faces[slice(*renderer.layers["skin"])]
    size = (renderer.crop_size, renderer.crop_size)
    return render_shaded(rasterize(points, skin, size, cull_backfaces=True), points, background=(90, 90, 90))


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("take", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", default="", help="comma-separated frame indices (default: the reference "
                        "and the most different expressions)")
    parser.add_argument("--count", type=int, default=9, help="frames to pick without --frames")
    parser.add_argument("--reference", type=int, help="reference frame (default: the emotion "
                        "stage's: a quiet frame with no hand over the face that FER reads as least expressive)")
    parser.add_argument("--background", choices=BACKGROUNDS, default="reference")
    parser.add_argument("--no-teeth", action="store_true", help="leave the open mouth dark")
    parser.add_argument("--shaded", action="store_true", help="add a third tile: the fitted geometry, shaded")
    parser.add_argument("--columns", type=int, default=3, help="[crop | render] pairs per row")
    parser.add_argument("--flame", help="FLAME file, for takes fitted with FLAME")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    take = Take.open(args.take)
    fit = take.read_fit()
    if fit is None:
        raise SystemExit(f"{args.take} has no fit: analyse it with a face model first")
    settings = take.manifest.fit.settings
    choice = ModelChoice(settings["model"], args.flame or settings.get("flame_path"),
                         settings.get("num_shape", 100), settings.get("num_expression", 50))
    model = load_face_model(choice)
    observations = take.load_observations()
    tiles = []
    with open_source(take.manifest.source.path) as source:
        reference = args.reference
        if reference is None and take.manifest.emotion is not None:
            reference = take.manifest.emotion.reference_frame
        if reference is None or reference < 0:
            from core.emotion.recognisers import load_recogniser
            from core.emotion.stage import expressiveness_judge

            reference = choose_uncovered_reference_frame(
                fit, observations, source.read, expressiveness=expressiveness_judge(load_recogniser("fer"), observations))
        renderer = ReconstructionRenderer(model, fit, observations, reference,
                                          background=args.background, teeth=not args.no_teeth)
        if args.frames:
            frames = [int(f) for f in args.frames.split(",")]
        else:
            frames = [reference] + diverse_frames(fit, reference, args.count - 1)
        renderer.set_reference(reference, source.read(reference))
        start = time.perf_counter()
        renders, _ = renderer.render_crop_batch(frames)
        seconds = time.perf_counter() - start
        for frame, render in zip(frames, renders):
            row = int(np.nonzero(observations.index == frame)[0][0])
            crop = warp_crop(source.read(frame), observations.crop_transform[row].astype(np.float64),
                             renderer.crop_size)
            name = f"frame {frame}" + (" (reference)" if frame == reference else "")
            tile = [label(crop, f"{name} input"), label(render, "render")]
            if args.shaded:
                tile.append(label(shaded(renderer, frame), "geometry"))
            tiles.append(np.hstack(tile))
    log.info("reference frame %d; rendered %d frames in %.1f ms each", reference, len(frames),
             1000 * seconds / len(frames))
    columns = max(1, min(args.columns, len(tiles)))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    sheet = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    log.info("wrote %s (frames %s)", args.out, frames)


if __name__ == "__main__":
    main()
