"""Blinks and lip contacts (core/closures/): hit rate against blinks counted by eye, before and after.

    python benchmarks/bench_closures.py [--takes DIR]

Analyses the fixture clips (``../shared/fixtures``) into DIR (default: a temporary folder; a
complete take there is reused) and prints, for every closed-eye frame counted by looking at the
frames (eye crops of every frame in contact sheets; the list is ``COUNTED`` below), whether the
detector found it and eyeBlinkLeft/Right there as fitted (``read_fit(closures=False)``, before)
and as exported (``read_fit()``, after), then the lip contacts: frames whose observed inner lips
touch, and the share of them where the fitted mesh's lips touch too, before and after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.closures.detect import ClosureConfig, detect_closures  # noqa: E402
from core.closures.enforce import mesh_lip_gap  # noqa: E402
from core.facemodel.loading import ModelChoice, load_face_model  # noqa: E402
from core.pipeline import Pipeline, PipelineConfig  # noqa: E402
from core.take import Take  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
FULL = 0.9  # eyeBlink that counts as a closed eye

# Closed-eye frames counted by eye: (label, frames judged closed).
COUNTED = {
    "single_face.mp4": [("blink", [26, 27, 28])],
    "face_noface.mov": [("blink", [26, 27, 28])],
    "WolfgangLanger_Pexels.mp4": [
        ("blink", [153, 154]), ("blink", [202]), ("blink", [248]), ("blink", [288]), ("blink", [386, 387]),
        ("blink", [428, 429]),
        ("held closure (crying)", list(range(16, 96))),
        ("held closure, hand over one eye", list(range(96, 140))),
        ("held closure (looking down)", list(range(440, 472))),
    ],
}


def analysed(clip: str, folder: Path) -> Take:
    """The take of a fixture clip (analysed now unless a complete one is there)."""
    take_dir = folder / Path(clip).stem
    Pipeline(PipelineConfig(device="cpu")).run(FIXTURES / clip, take_dir)
    return Take.open(take_dir)


def report(clip: str, take: Take, model) -> None:
    observations = take.load_observations()
    evidence = detect_closures(observations, ClosureConfig())
    names = list(model.expression_names)
    blink = [names.index("eyeBlinkLeft"), names.index("eyeBlinkRight")]
    before, after = take.read_fit(closures=False), take.read_fit()
    print(f"\n{clip}: detected closed-eye runs {[(a, b - 1) for a, b, _ in evidence.blinks()]}")
    print(f"{'counted':34s} {'frames':>9s} {'found':>6s} {'before L/R (min)':>18s} {'after L/R (min)':>17s}")
    for label, frames in COUNTED[clip]:
        rows = np.array(frames)
        found = evidence.eyes_closed[rows].mean()
        b, a = before.expression[rows][:, blink], after.expression[rows][:, blink]
        span = f"{frames[0]}-{frames[-1]}" if len(frames) > 1 else str(frames[0])
        if len(frames) <= 3:
            show = lambda v: " ".join(f"{x:.2f}/{y:.2f}" for x, y in v)  # noqa: E731
            print(f"{label:34s} {span:>9s} {found:6.0%} {show(b):>18s} {show(a):>17s}")
        else:
            share = lambda v: f"{(v.min(axis=1) >= FULL).mean():.0%} >= {FULL}"  # noqa: E731
            print(f"{label:34s} {span:>9s} {found:6.0%} {share(b):>18s} {share(a):>17s}")
    rows = np.flatnonzero(evidence.lips_closed & before.has_face)
    if len(rows):
        gap_before = mesh_lip_gap(model, before, rows)
        gap_after = mesh_lip_gap(model, after, rows)
        contact = ClosureConfig().lips + 1e-3
        print(f"lip contacts: {len(rows)} frames observed closed; fitted lips touching "
              f"{(gap_before <= contact).mean():.0%} before, {(gap_after <= contact).mean():.0%} after")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=Path, help="folder for the takes (reused when complete)")
    args = parser.parse_args()
    model = load_face_model(ModelChoice())
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.takes or Path(tmp)
        for clip in COUNTED:
            report(clip, analysed(clip, folder), model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
