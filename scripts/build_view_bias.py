"""Rebuild ``resources/landmark_view_bias.npz``: MediaPipe's yaw-dependent landmark drift.

Every KDEF person's neutral photos (frontal and both 45-degree half profiles, in
``../shared/expressions/kdef``) are observed as the pipeline observes a frame; each is brought into
the observer's canonical frame by its own head pose, and the drift between one person's views is
learned as a function of yaw (core/observe/view_bias.py). Deterministic for the same photos.

    python scripts/build_view_bias.py [--calibration ../shared/expressions/kdef] [--people N]
        [--holdout N] [--out resources/landmark_view_bias.npz]

``--holdout N`` learns from all but the last N people and reports how much of the view-to-view
difference of those N people's neutral faces the field removes (the number in the file's info).
KDEF is licensed for non-commercial research; the file records that it was derived from it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.digest import file_sha256  # noqa: E402
from core.facemodel.open_model_authoring import mirror_permutation  # noqa: E402
from core.observe.headpose import canonical_face  # noqa: E402
from core.observe.view_bias import VIEW_BIAS_PATH, canonical_view, learn_view_bias, save_view_bias  # noqa: E402
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
    "resources/canonical_face_478.npy",
)


def neutral_views(photos: dict[tuple[str, str, str], Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """person -> (K x 478 x 3 canonical-frame landmarks, K yaws in degrees) of their neutral photos
    in which a face was found, frontal first."""
    keys = [(person, "neutral", view) for person in sorted({k[0] for k in photos}) for view in VIEWS
            if (person, "neutral", view) in photos]
    landmarks = observe([photos[k] for k in keys])
    by_person: dict[str, tuple[list, list]] = {}
    for key, points in zip(keys, landmarks):
        if not np.isfinite(points).all():
            continue
        canonical, yaws = by_person.setdefault(key[0], ([], []))
        points_canonical, yaw = canonical_view(points)
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
    views = neutral_views(photos)
    people = sorted(views)
    mirror = mirror_permutation(canonical_face())
    held = people[len(people) - args.holdout:] if 0 < args.holdout < len(people) else []
    learned_on = [p for p in people if p not in held]
    check = {}
    if held:
        trial = learn_view_bias([views[p][0] for p in learned_on], [views[p][1] for p in learned_on], mirror, MAX_YAW_DEG)
        before, after = removed_share(trial, {p: views[p] for p in held})
        check = {"held_out_people": len(held), "gap_before": before, "gap_after": after}
        log.info("held-out people (%d): view-to-view gap %.4f -> %.4f canonical units (%.0f %% removed)",
                 len(held), before, after, 100 * (1 - after / before))
    info = {
        "source": "scripts/build_view_bias.py",
        "sources": {"photos": KDEF_TERMS + " (the neutral photos only)"},
        "people": len(people),
        "max_yaw_deg": MAX_YAW_DEG,
        "check": check,
        "inputs": {name: file_sha256(ROOT / name) for name in BUILD_INPUTS},
    }
    bias = learn_view_bias([views[p][0] for p in people], [views[p][1] for p in people], mirror, MAX_YAW_DEG, info)
    save_view_bias(bias, args.out)
    sys.stdout.write(f"wrote {args.out} from {len(people)} people's neutral photos\n")


if __name__ == "__main__":
    main()
