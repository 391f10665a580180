"""Rebuild ``resources/appearance_maps.npz``: how each expression shape of the open model changes the
skin's brightness (core/render/appearance.py), learned from photographs.

KDEF's frontal photos (``../shared/expressions/kdef``: 56 people, neutral and six expressions) are
observed with MediaPipe's face mesh as the pipeline does and warped into the open model's texture
space by their landmarks. The change of log brightness from each person's neutral photo to each of
their expressions is regressed on the curves that explain the expression's landmark motion with
the open model's shapes (core.facemodel.calibration.fit_weights), each shape only near where it
moves the surface (core/render/appearance_learning.py). Half profiles are not used: their far side
is foreshortened out of the texture. Deterministic for the same inputs; about a minute.

    python scripts/build_appearance_maps.py [--calibration ../shared/expressions/kdef] [--people N]
        [--out resources/appearance_maps.npz]
    python scripts/build_appearance_maps.py --verify [--out resources/appearance_maps.npz]

The maps record the SHA-256 of the files that decide their numbers (the open model among them) and
of the photos; ``--verify`` says whether they are still the files on disk. KDEF (Lundqvist, Flykt
and Öhman 1998, Karolinska Institutet) is licensed for non-commercial research; the maps record
that they were derived from it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.digest import file_sha256  # noqa: E402
from core.facemodel.calibration import expression_motion, fit_weights  # noqa: E402
from core.facemodel.curve_mirror import curve_mirror  # noqa: E402
from core.facemodel.open_model import (  # noqa: E402
    LEFT_BROW_LOWER,
    LEFT_BROW_UPPER,
    LOWER_LIP_OUTER,
    OPEN_MODEL_PATH,
    RIGHT_BROW_LOWER,
    RIGHT_BROW_UPPER,
    UPPER_LIP_OUTER,
    load_open_model,
)
from core.observe import landmark_ids as ids  # noqa: E402
from core.render.appearance import APPEARANCE_MAPS_PATH, AppearanceMaps, load_appearance_maps, save_appearance_maps  # noqa: E402
from core.render.appearance_learning import (  # noqa: E402
    edge_fade,
    learn_maps,
    log_brightness_change,
    near_outlines,
    shape_support,
    texture_space,
    warp_to_texture,
)
from core.video import open_source  # noqa: E402
from scripts.build_open_model import BUILD_INPUTS, EXPRESSIONS, KDEF, KDEF_TERMS, build_record, kdef_photos, observe  # noqa: E402

log = logging.getLogger("build_appearance_maps")

MM_PER_PX = 1.0
SUPPORT_RADIUS_MM = 20.0  # how far from where a shape moves the skin its map may reach
RIDGE = 1.0  # on each map value, against the sum of squared weights of the samples (about 30 per shape)
FEATURE_MARGIN_MM = 2.0  # lips, eye openings and brows (and this much around them) keep their reference look
EDGE_FADE_MM = 6.0  # each map fades in from the edge of where it may act (no seams)
BLUR_PX = 0.7  # of the photo before warping (photo pixels are about a third of a millimetre)
Z_WEIGHT = 0.25  # MediaPipe's depth counts a quarter in the curves' fit, as in the model's calibration
# Shapes that get no map (learned with the others, so they take their share of the change, then
# dropped): blinks and gaze move the lids over the eyeball and the iris within it, which the
# render draws with its own eye layer; in KDEF's expressions their weights mostly stand in for
# squints and lid tension, and their maps whitened closed lids. tongueOut is never seen.
NO_MAP_STEMS = ("eyeBlink", "eyeLook", "tongueOut")
MAPS_INPUTS = BUILD_INPUTS + (
    "scripts/build_appearance_maps.py",
    "core/render/appearance_learning.py",
    "resources/open_face_model.npz",
)


def maps_record(photos: list[Path], people: int | None) -> dict:
    """What a build was made from: SHA-256 of each of MAPS_INPUTS and one over the photos."""
    record = build_record(photos, people)
    return {**record, "inputs": {name: file_sha256(ROOT / name) for name in MAPS_INPUTS}}


def stale_inputs(maps_path: Path, folder: Path) -> list[str]:
    """Why the maps at ``maps_path`` are not what a build would make now (empty: current)."""
    record = load_appearance_maps(maps_path).info.get("build")
    if record is None:
        return ["the maps record no build inputs"]
    now = maps_record(list(frontal(kdef_photos(folder, record["people_limit"])).values()), record["people_limit"])
    reasons = [f"{name} changed" for name in sorted(set(now["inputs"]) | set(record["inputs"]))
               if now["inputs"].get(name) != record["inputs"].get(name)]
    if now["photos"] != record["photos"]:
        reasons.append(f"the photos in {folder} changed")
    return reasons


def frontal(photos: dict[tuple[str, str, str], Path]) -> dict[tuple[str, str], Path]:
    """(person, label) -> photo of the frontal views among (person, label, view) -> photo."""
    return {(person, label): path for (person, label, view), path in photos.items() if view == "frontal"}


def build(photos: dict[tuple[str, str], Path], people: int | None) -> AppearanceMaps:
    """The maps learned from (person, label) -> frontal photo."""
    model = load_open_model(OPEN_MODEL_PATH)
    template = model.template.astype(np.float64)
    basis = model.expression_basis.astype(np.float64)
    space = texture_space(template, model.faces, MM_PER_PX)
    keys = sorted(photos)
    landmarks = dict(zip(keys, observe([photos[k] for k in keys])))
    found = {k for k in keys if np.isfinite(landmarks[k]).all()}
    textures = {}
    for key in found:
        with open_source(photos[key]) as source:
            grey = cv2.cvtColor(source.read(0), cv2.COLOR_RGB2GRAY).astype(np.float32)
        textures[key] = warp_to_texture(cv2.GaussianBlur(grey, (0, 0), BLUR_PX), landmarks[key], space)
    pairs = [k for k in keys if k[1] in EXPRESSIONS and k in found and (k[0], "neutral") in found]
    changes = np.stack([log_brightness_change(textures[k], textures[(k[0], "neutral")]) for k in pairs])
    motions = np.stack([expression_motion(landmarks[(k[0], "neutral")].astype(np.float64),
                                          landmarks[k].astype(np.float64), template) for k in pairs])
    weights, explained = fit_weights(motions, basis, Z_WEIGHT)
    log.info("%d expression photos of %d people; their curves explain %.3f of the landmark motion",
             len(pairs), len({k[0] for k in pairs}), explained.mean())

    names = list(model.expression_names)
    mirror = curve_mirror(names)
    lips = UPPER_LIP_OUTER + LOWER_LIP_OUTER[-2:0:-1]
    brows = [upper + lower[::-1] for upper, lower in ((RIGHT_BROW_UPPER, RIGHT_BROW_LOWER), (LEFT_BROW_UPPER, LEFT_BROW_LOWER))]
    features = near_outlines(space, (lips, ids.RIGHT_EYE_LIDS, ids.LEFT_EYE_LIDS, *brows), FEATURE_MARGIN_MM)
    support = shape_support(space, basis, SUPPORT_RADIUS_MM) & ~features
    maps = learn_maps(changes, weights, support, mirror, RIDGE)
    fade = np.stack([edge_fade(s, EDGE_FADE_MM / MM_PER_PX) for s in support])
    fade = np.minimum(fade, fade[mirror][:, :, ::-1])  # outlines rasterise symmetric to a pixel; the pairs exactly
    maps *= fade
    maps[[k for k, name in enumerate(names) if name.startswith(NO_MAP_STEMS)]] = 0.0
    strongest = np.abs(maps).reshape(len(names), -1).max(axis=1)
    log.info("strongest maps (largest |log gain| at weight 1): %s",
             ", ".join(f"{names[k]} {strongest[k]:.2f}" for k in np.argsort(-strongest)[:8]))
    info = {
        "sources": {"photos": KDEF_TERMS + "; frontal views only", "model": "resources/open_face_model.npz"},
        "settings": {"mm_per_px": MM_PER_PX, "support_radius_mm": SUPPORT_RADIUS_MM, "ridge": RIDGE,
                     "feature_margin_mm": FEATURE_MARGIN_MM, "edge_fade_mm": EDGE_FADE_MM, "z_weight": Z_WEIGHT,
                     "no_map": list(NO_MAP_STEMS)},
        "expression_photos": len(pairs),
        "motion_explained": round(float(explained.mean()), 4),
        "build": maps_record([photos[k] for k in keys], people),
    }
    return AppearanceMaps(tuple(names), maps, space.vertex_uv, info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=APPEARANCE_MAPS_PATH)
    parser.add_argument("--calibration", type=Path, default=KDEF, help="KDEF folder with labels.csv")
    parser.add_argument("--people", type=int, help="the first N people only (a quick build)")
    parser.add_argument("--verify", action="store_true",
                        help="only check that the maps at --out record the current build inputs and photos")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.verify:
        reasons = stale_inputs(args.out, args.calibration)
        for reason in reasons:
            log.error("%s is stale: %s; rebuild it with scripts/build_appearance_maps.py", args.out, reason)
        if reasons:
            sys.exit(1)
        log.info("%s records the current build inputs and photos", args.out)
        return
    maps = build(frontal(kdef_photos(args.calibration, args.people)), args.people)
    save_appearance_maps(maps, args.out)
    log.info("wrote %s: %d maps of %d x %d pixels, %.0f kB", args.out, len(maps.names), *maps.maps.shape[1:],
             args.out.stat().st_size / 1024)


if __name__ == "__main__":
    main()
