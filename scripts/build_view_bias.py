"""Rebuild ``resources/landmark_view_bias.npz``: MediaPipe's yaw-dependent landmark drift, and that
of its blendshape network's scores.

Every KDEF photo (``../shared/expressions/kdef``: each person neutral and in six expressions,
frontal and both 45-degree half profiles) is observed as the pipeline observes a frame. The neutral
ones are brought into the observer's canonical frame by their own head pose, and the drift between
one person's views is learned as a function of yaw (core/observe/view_bias.py); the network scores
every photo, and the drift of its scores between the frontal and each half-profile photo of the
same person and expression is learned the same way. Deterministic for the same photos.

    python scripts/build_view_bias.py [--calibration ../shared/expressions/kdef] [--people N]
        [--holdout N] [--out resources/landmark_view_bias.npz]

``--holdout N`` learns from all but the last N people and reports how much of the view-to-view
difference of those N people's neutral faces the field removes, and how far their scores of each
expression are between views before and after the score drift is taken out (the file's info).
KDEF is licensed for non-commercial research; the file records that it was derived from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.digest import file_sha256  # noqa: E402
from core.facemodel.open_model import ARKIT_NAMES  # noqa: E402
from core.facemodel.open_model_authoring import mirror_permutation  # noqa: E402
from core.facemodel.open_model_calibration import mirror_name  # noqa: E402
from core.observe.blendshapes import BlendshapeNetwork  # noqa: E402
from core.observe.headpose import canonical_face  # noqa: E402
from core.observe.view_bias import (  # noqa: E402
    VIEW_BIAS_PATH,
    ViewBias,
    canonical_view,
    learn_score_drift,
    learn_view_bias,
    save_view_bias,
)
from scripts.build_open_model import KDEF, KDEF_TERMS, kdef_photos, observe  # noqa: E402

log = logging.getLogger("build_view_bias")

VIEWS = ("frontal", "half-left", "half-right")
MAX_YAW_DEG = 45.0  # KDEF's half profiles are about 40 degrees; the field is not extrapolated beyond
# The files whose content decides the field (relative to the project root).
BUILD_INPUTS = (
    "scripts/build_view_bias.py",
    "core/observe/view_bias.py",
    "core/observe/headpose.py",
    "core/observe/observer.py",
    "core/observe/landmarker.py",
    "core/observe/blendshapes.py",
    "resources/canonical_face_478.npy",
)
# Curves whose drift is held at zero: gaze (where a photographed person looks is their own, not the
# network's drift) and tongueOut (the network has no such output).
UNDRIFTED = tuple(n for n in ARKIT_NAMES if n.startswith("eyeLook")) + ("tongueOut",)


class Observed:
    """Every photo observed once, by key: its canonical-frame landmarks and view azimuth
    (:func:`canonical_view`) and the network's scores."""

    def __init__(self, photos: dict[tuple[str, str, str], Path]) -> None:
        keys = sorted(photos)
        landmarks = observe([photos[k] for k in keys])
        found = np.isfinite(landmarks).all(axis=(1, 2))
        self.keys = [k for k, ok in zip(keys, found) if ok]
        self.views = {k: canonical_view(points) for k, points in zip(self.keys, landmarks[found])}
        self.scores = dict(zip(self.keys, BlendshapeNetwork().predict(landmarks[found]).astype(np.float64)))


def curve_mirror() -> np.ndarray:
    """E: each ARKit curve's mirror partner (Left <-> Right; itself for a symmetric one)."""
    names = list(ARKIT_NAMES)
    return np.array([names.index(mirror_name(n)) for n in names])


def view_pairs(observed: Observed, people: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(frontal scores, turned scores, frontal yaws, turned yaws) of every photo of ``people`` in a
    half-profile view whose frontal photo of the same expression was observed too."""
    frontal, turned, frontal_yaw, turned_yaw = [], [], [], []
    for person, label, view in observed.keys:
        front = (person, label, "frontal")
        if view == "frontal" or person not in people or front not in observed.scores:
            continue
        frontal.append(observed.scores[front])
        turned.append(observed.scores[(person, label, view)])
        frontal_yaw.append(observed.views[front][1])
        turned_yaw.append(observed.views[(person, label, view)][1])
    return np.array(frontal), np.array(turned), np.array(frontal_yaw), np.array(turned_yaw)


def score_gaps(pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], odd: np.ndarray,
               even: np.ndarray) -> tuple[float, float]:
    """Mean |score difference| between the turned and the frontal photos (over the drifting curves
    with an output), before and after the drift (odd, even) is taken out of both."""
    frontal, turned, frontal_yaw, turned_yaw = pairs
    bias = ViewBias(np.zeros((478, 3)), np.zeros((478, 3)), MAX_YAW_DEG, score_odd=odd, score_even=even)
    curves = np.array([n not in UNDRIFTED for n in ARKIT_NAMES])
    before = np.abs(turned - frontal)[:, curves].mean()
    after = np.abs(bias.correct_scores_at_yaw(turned, turned_yaw) - bias.correct_scores_at_yaw(frontal, frontal_yaw))
    return float(before), float(after[:, curves].mean())


def neutral_views(observed: Observed) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """person -> (K x 478 x 3 canonical-frame landmarks, K yaws in degrees) of their neutral photos
    in which a face was found, frontal first."""
    keys = [(person, "neutral", view) for person in sorted({k[0] for k in observed.keys}) for view in VIEWS
            if (person, "neutral", view) in observed.views]
    by_person: dict[str, tuple[list, list]] = {}
    for key in keys:
        canonical, yaws = by_person.setdefault(key[0], ([], []))
        points_canonical, yaw = observed.views[key]
        canonical.append(points_canonical)
        yaws.append(yaw)
    return {person: (np.stack(c), np.array(y)) for person, (c, y) in by_person.items() if len(c) >= 2}


def removed_share(bias, views: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Mean per-landmark distance (canonical units) between each person's frontal and other views,
    before and after taking the learned drift out."""
    before, after = [], []
    for canonical, yaws in views.values():
        drift = bias.field(yaws)
        for k in range(1, len(canonical)):
            gap = canonical[k] - canonical[0]
            before.append(np.linalg.norm(gap, axis=1).mean())
            after.append(np.linalg.norm(gap - (drift[k] - drift[0]), axis=1).mean())
    return float(np.mean(before)), float(np.mean(after))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=Path, default=KDEF, help="KDEF folder with labels.csv")
    parser.add_argument("--people", type=int, help="only the first N people (a quick build)")
    parser.add_argument("--holdout", type=int, default=14, help="people left out to measure the field on")
    parser.add_argument("--out", type=Path, default=VIEW_BIAS_PATH)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    photos = kdef_photos(args.calibration, args.people)
    observed = Observed(photos)
    views = neutral_views(observed)
    people = sorted(views)
    mirror = mirror_permutation(canonical_face())
    curves, undrifted = curve_mirror(), np.isin(ARKIT_NAMES, UNDRIFTED)
    held = people[len(people) - args.holdout:] if 0 < args.holdout < len(people) else []
    learned_on = [p for p in people if p not in held]
    check = {}
    if held:
        trial = learn_view_bias([views[p][0] for p in learned_on], [views[p][1] for p in learned_on], mirror, MAX_YAW_DEG)
        before, after = removed_share(trial, {p: views[p] for p in held})
        trial_odd, trial_even, _ = learn_score_drift(*view_pairs(observed, learned_on), curves, MAX_YAW_DEG, undrifted)
        scores_before, scores_after = score_gaps(view_pairs(observed, held), trial_odd, trial_even)
        check = {"held_out_people": len(held), "gap_before": before, "gap_after": after,
                 "score_gap_before": scores_before, "score_gap_after": scores_after}
        log.info("held-out people (%d): view-to-view gap %.4f -> %.4f canonical units (%.0f %% removed); "
                 "scores of one expression between views %.4f -> %.4f apart", len(held), before, after,
                 100 * (1 - after / before), scores_before, scores_after)
    info = {
        "source": "scripts/build_view_bias.py",
        "sources": {"photos": KDEF_TERMS + " (the landmark drift from the neutral photos, the score drift from all)"},
        "people": len(people),
        "max_yaw_deg": MAX_YAW_DEG,
        "check": check,
        "score_curves": list(ARKIT_NAMES),
        "inputs": {name: file_sha256(ROOT / name) for name in BUILD_INPUTS},
    }
    bias = learn_view_bias([views[p][0] for p in people], [views[p][1] for p in people], mirror, MAX_YAW_DEG, info)
    score_odd, score_even, score_variance = learn_score_drift(*view_pairs(observed, people), curves, MAX_YAW_DEG, undrifted)
    save_view_bias(dataclasses.replace(bias, score_odd=score_odd, score_even=score_even, score_variance=score_variance),
                   args.out)
    sys.stdout.write(f"wrote {args.out} from {len(people)} people's photos\n")


if __name__ == "__main__":
    main()
