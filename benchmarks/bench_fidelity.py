"""Fidelity: do the curves (and the mesh they drive) that leave EmoCap carry the performer's emotion?

    python benchmarks/bench_fidelity.py [--work /tmp/emocap-fidelity] [--people 56] [--skip-fixtures]

Over the labelled development set (../shared/expressions, see its README), per label and overall:

- **retargeted emotion**: each still's curves (``emocap analyze`` on the image, default open model)
  drive three neutral carrier faces of other people (their own identity, camera and texture,
  core/render's ReconstructionRenderer); EmoNet and FER judge the renders; the share of
  (image, carrier) pairs read as the image's label;
- **prototype in top 4**: one of the label's FACS prototype curves is among the four strongest;
- **off-prototype >= 0.9**: a curve the label's prototype does not name sits at 0.9 or more;
- **faces found**;

each beside the same numbers for MediaPipe's learned blendshape network on the same images and
carriers (its scores as the curves). Then **real motion explained**: for KDEF people (kdef/), the
identity from the person's own neutral photo (``--neutral``), the expression photo's fitted curves,
and the share of the landmark motion from neutral to expression they explain (weights in [0, 1];
also with MediaPipe's view drift, core/observe/view_bias.py, taken out of the observed motion),
beside the share that even a perfect model would explain, MediaPipe's own landmark noise in both
photos left unexplained (benchmarks/fidelity/landmark_noise.py); the **curve scale**: on the
frontal photos, the fitted weight per unit of the learned network's score rise from the person's
own neutral (1.0: the curves keep the network's, i.e. Apple's, scale); the **open mouth**: on the
frontal photos, the share of the mouth opening brighter than 0.75 x the skin (the teeth), the
photo against its person's neutral photo wearing its curves (benchmarks/fidelity/mouth.py);
and the **view gap**: how far the curves of one expression photographed from 45 degrees are from
those of its frontal photo (mean absolute difference over the 52 curves), with each view's own
neutral and with the frontal neutral for both (one identity for a whole take, as when a performer
turns their head).
Then the fixture clips: landmark residual, jitter against raw MediaPipe and fit speed
(benchmarks/bench_fit.py's measures). Contact sheets (photo crop, its own reconstruction, the
carriers with EmoCap's curves, the carriers with MediaPipe's) go to WORK/sheets/<label>.png.

KDEF stills of the development set are photos of people that the open model's expression shapes
were calibrated on (scripts/build_open_model.py); the table splits them from the other photos.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fidelity import mouth, sheets  # noqa: E402
from benchmarks.fidelity.carriers import CARRIER_FILES, Carrier, carriers_for, judged_labels  # noqa: E402
from benchmarks.fidelity.curves import at_bound, curve_scale, off_prototype, prototype_in_top  # noqa: E402
from benchmarks.fidelity.devset import EMOTION_LABELS, LABELS, Analysed, analyse, kdef_people, stills  # noqa: E402
from benchmarks.fidelity.motion import explained_share, kept_share  # noqa: E402
from core.emotion.recognisers import load_recogniser  # noqa: E402
from core.emotion.types import FLOAT32  # noqa: E402
from core.facemodel.loading import ModelChoice, load_face_model  # noqa: E402
from core.pipeline import PipelineConfig  # noqa: E402

log = logging.getLogger("bench_fidelity")
FIXTURES = ROOT.parent / "shared" / "fixtures"
SOURCES = ("emocap", "mediapipe")


def pct(values) -> str:
    values = list(values)
    return f"{100 * np.mean(values):5.0f}%" if values else "    -"


def analyse_stills(work: Path, config: PipelineConfig) -> list[Analysed]:
    out = []
    for still in stills():
        out.append(analyse(still.path, work / "stills", config, still))
        if not out[-1].found:
            log.warning("no face found in %s", still.path.name)
    return out


def analyse_carrier(still, work: Path, config: PipelineConfig) -> Analysed:
    """A carrier is a neutral photo, analysed as the user would analyse it: named as the neutral."""
    return analyse(still.path, work / "carriers", dataclasses.replace(config, neutral=str(still.path)), still)


def curve_table(analysed: list[Analysed]) -> dict:
    """Per source and label: prototype-in-top-4, off-prototype >= 0.9 and at-bound counts."""
    table: dict = {s: defaultdict(lambda: defaultdict(list)) for s in SOURCES}
    for a in analysed:
        if not a.found:
            continue
        for source, curves in (("emocap", a.curves), ("mediapipe", a.mediapipe)):
            row = table[source][a.still.label]
            if a.still.label != "neutral":
                row["top4"].append(prototype_in_top(curves, a.still.label))
            row["off"].append(bool(off_prototype(curves, a.still.label)))
            row["bound"].append(at_bound(curves))
    return table


def retarget(analysed: list[Analysed], carriers: list[Carrier], judges: dict) -> tuple[dict, dict]:
    """Renders of every found still on its carriers, per source; the judges' readings.
    Returns ({(still name, source): [crops]}, {(judge, source, label): [correct...]})."""
    renders: dict = {}
    for a in analysed:
        if not a.found:
            continue
        chosen = carriers_for(carriers, a.still.identity)
        for source, curves in (("emocap", a.curves), ("mediapipe", a.mediapipe)):
            renders[(a.still.name, source)] = [c.render(curves) for c in chosen]
    readings: dict = defaultdict(list)
    labels = {a.still.name: a.still.label for a in analysed}
    keys = list(renders)
    for judge_name, judge in judges.items():
        flat = [crop for key in keys for crop in renders[key]]
        read = judged_labels(judge, flat)
        k = 0
        for name, source in keys:
            for _ in renders[(name, source)]:
                readings[(judge_name, source, labels[name])].append(read[k] == labels[name])
                readings[(judge_name, source, "reads", name)].append(read[k])
                k += 1
    return renders, readings


def real_motion(config: PipelineConfig, work: Path, people: int) -> dict:
    """Per expression: shares of the real landmark motion the fitted curves explain, identity from
    the person's own neutral photo; frontal and half-profile views."""
    from benchmarks.bench_fit import fitted_landmarks
    from benchmarks.fidelity.landmark_noise import crop_jitter_landmarks, explained_ceiling
    from core.observe.landmarker import CropLandmarker
    from core.observe.view_bias import observed_landmarks, shipped_view_bias
    from core.video import open_source

    model = load_face_model(config.model)
    basis = model.expression_basis.numpy().astype(np.float64)
    drift = shipped_view_bias()
    shares: dict = defaultdict(list)
    landmarker = CropLandmarker()

    def noise_samples(path: Path, analysed: Analysed) -> np.ndarray:
        with open_source(path) as source:
            return crop_jitter_landmarks(source.read(0), analysed.observations.landmarks[0], landmarker)

    for person, photos in list(kdef_people().items())[:people]:
        curves: dict = {}  # (label, view) -> the expression photo's curves
        for view in ("frontal", "half-left", "half-right"):
            neutral_path = photos.get(("neutral", view))
            if neutral_path is None:
                continue
            view_config = dataclasses.replace(config, neutral=str(neutral_path))
            neutral = analyse(neutral_path, work / "kdef", view_config)  # the same identity as the expressions'
            if not neutral.found:
                continue
            neutral_noise = noise_samples(neutral_path, neutral)
            own = Carrier.build(neutral, model).renderer if view == "frontal" else None
            for label in EMOTION_LABELS:
                path = photos.get((label, view))
                if path is None:
                    continue
                expressive = analyse(path, work / "kdef", view_config)
                if not expressive.found:
                    continue
                share = explained_share(
                    neutral.observations.landmarks[0], expressive.observations.landmarks[0],
                    fitted_landmarks(model, neutral.fit)[0], fitted_landmarks(model, expressive.fit)[0],
                    config.fit.z_weight)
                shares[label].append(share)
                # what even a perfect model leaves: MediaPipe's landmark noise in both photos
                shares[(label, "ceiling")].append(explained_ceiling(
                    neutral.observations.landmarks[0], expressive.observations.landmarks[0], neutral_noise,
                    noise_samples(path, expressive), config.fit.z_weight))
                shares[("view", "frontal" if view == "frontal" else "half profile")].append(share)
                if view == "frontal":  # the curves' scale against the network's, change from the own neutral
                    shares[("scale", "fitted")].append(expressive.curves)
                    shares[("scale", "network")].append(np.clip(expressive.mediapipe - neutral.mediapipe, 0.0, 1.0))
                    # the open mouth's bright share, the photo against its own neutral wearing its curves
                    photo, render = mouth.photo_share(expressive), mouth.render_share(own, expressive.curves)
                    if photo is not None and render is not None:
                        shares[("mouth", label)].append((photo, render))
                # the same with MediaPipe's view drift taken out of the observed motion as well
                # (core/observe/view_bias.py): the drift between the two photos' head poses is no
                # motion of the face
                shares[("view", "all, drift out")].append(explained_share(
                    *(observed_landmarks(a.observations, np.array([0]), drift)[0] for a in (neutral, expressive)),
                    fitted_landmarks(model, neutral.fit)[0], fitted_landmarks(model, expressive.fit)[0],
                    config.fit.z_weight))
                curves[(label, view)] = expressive.curves
                alone = analyse(path, work / "kdef-alone", config)  # no neutral: identity from the prior
                if alone.found:
                    shares[(label, "kept")].append(kept_share(basis, expressive.curves, alone.curves, config.fit.z_weight))
                shares[(label, "bound")].append(at_bound(expressive.curves))
        frontal_neutral = photos.get(("neutral", "frontal"))
        for (label, view), values in curves.items():
            if view == "frontal" or (label, "frontal") not in curves:
                continue
            reference = curves[(label, "frontal")]
            shares[("view gap", label)].append(float(np.abs(values - reference).mean()))
            # one identity for every view, as in a take whose neutral frame faces the camera
            across = analyse(photos[(label, view)], work / "kdef-frontal-neutral",
                             dataclasses.replace(config, neutral=str(frontal_neutral)))
            if across.found:
                shares[("view gap, frontal neutral", label)].append(float(np.abs(across.curves - reference).mean()))
    landmarker.close()
    return shares


def fixture_rows() -> list[tuple]:
    from benchmarks.bench_fit import clip_rows
    from core.facemodel import FaceModel
    from core.facemodel.open_model import load_open_model
    from core.pipeline import Pipeline
    from core.take import Take
    import tempfile

    rows = []
    model = FaceModel(load_open_model())
    with tempfile.TemporaryDirectory() as tmp:
        for clip in ("WolfgangLanger_Pexels.mp4", "single_face.mp4"):
            Pipeline(PipelineConfig(device="cpu", model=None)).run(FIXTURES / clip, Path(tmp) / clip)
            rows += clip_rows(model, clip, Take.open(Path(tmp) / clip).load_observations())
    return rows


def print_tables(analysed, table, readings, shares, fixtures) -> None:
    groups = {"kdef (calibration people)": lambda a: a.still.source == "kdef",
              "other photos": lambda a: a.still.source != "kdef"}
    print("\nfaces found")
    for label in LABELS:
        found = [a.found for a in analysed if a.still.label == label]
        print(f"  {label:9s} {sum(found)}/{len(found)}")
    print(f"  {'all':9s} {sum(a.found for a in analysed)}/{len(analysed)}")

    print("\nretargeted emotion: share of (image, carrier) renders read as the image's label")
    header = "  ".join(f"{j}:{s[:2]:>2s}" for j in ("emonet", "fer") for s in SOURCES)
    print(f"  {'label':9s} {header}")
    for label in LABELS + ("all",):
        cells = []
        for judge in ("emonet", "fer"):
            for source in SOURCES:
                values = [v for lab in (LABELS if label == "all" else (label,))
                          for v in readings.get((judge, source, lab), [])]
                cells.append(f"{pct(values):>9s}")
        print(f"  {label:9s} " + "  ".join(cells))
    for group, member in groups.items():
        names = {a.still.name: a.still.label for a in analysed if member(a) and a.found}
        cells = []
        for judge in ("emonet", "fer"):
            for source in SOURCES:
                values = [r == names[n] for n in names for r in readings.get((judge, source, "reads", n), [])]
                cells.append(f"{pct(values):>9s}")
        print(f"  {group[:9]:9s} " + "  ".join(cells) + f"   ({group})")

    print("\ncurves: prototype in top 4 | off-prototype curve >= 0.9 (share of images) | curves >= 0.99 per image")
    print(f"  {'label':9s} {'top4 em':>8s} {'top4 mp':>8s} {'off em':>7s} {'off mp':>7s} {'bound em':>9s} {'bound mp':>9s}")
    for label in LABELS + ("all",):
        labs = LABELS if label == "all" else (label,)

        def cell(source, key):
            return [v for lab in labs for v in table[source][lab][key]]

        print(f"  {label:9s} {pct(cell('emocap', 'top4')):>8s} {pct(cell('mediapipe', 'top4')):>8s} "
              f"{pct(cell('emocap', 'off')):>7s} {pct(cell('mediapipe', 'off')):>7s} "
              f"{np.mean(cell('emocap', 'bound')):9.2f} {np.mean(cell('mediapipe', 'bound')):9.2f}")

    if shares:
        print("\nreal motion explained (KDEF, identity from the person's own neutral photo, weights in [0, 1])")
        print(f"  {'label':9s} {'n':>4s} {'mean':>6s} {'median':>7s} {'>=0.9':>6s} {'at bound':>9s} {'kept alone':>10s} "
              f"{'noise ceiling':>13s}")
        every, ceilings = [], []
        for label in EMOTION_LABELS:
            values = np.array(shares.get(label, []))
            ceiling = np.array(shares.get((label, "ceiling"), []))
            every += list(values)
            ceilings += list(ceiling)
            if len(values):
                print(f"  {label:9s} {len(values):4d} {values.mean():6.3f} {np.median(values):7.3f} "
                      f"{pct(values >= 0.9):>6s} {np.mean(shares[(label, 'bound')]):9.2f} "
                      f"{np.mean(shares.get((label, 'kept'), [np.nan])):10.3f} {np.nanmean(ceiling):13.3f}")
        every = np.array(every)
        if len(every):
            print(f"  {'all':9s} {len(every):4d} {every.mean():6.3f} {np.median(every):7.3f} {pct(every >= 0.9):>6s} "
                  f"{'':9s} {'':10s} {np.nanmean(ceilings):13.3f}")
        for view, short, what in (
                ("frontal", "frontal", "frontal views"), ("half profile", "half prof", "half profile views"),
                ("all, drift out", "drift out", "all, MediaPipe's view drift taken out of the observed motion too")):
            values = np.array(shares.get(("view", view), []))
            if len(values):
                print(f"  {short:9s} {len(values):4d} {values.mean():6.3f} {np.median(values):7.3f} "
                      f"{pct(values >= 0.9):>6s}   ({what})")
        if shares.get(("scale", "fitted")):
            scale = curve_scale(np.array(shares[("scale", "fitted")]), np.array(shares[("scale", "network")]))
            print("  curve scale: fitted weight per unit of MediaPipe's learned score (its rise from the person's "
                  "neutral >= 0.1; frontal views, Left and Right pooled; 1.0 = the network's scale)")
            print("    " + "  ".join(f"{stem} {ratio:.2f} (n {n})" for stem, (ratio, n) in scale.items()))
        pairs = {label: np.array(shares[("mouth", label)]) for label in EMOTION_LABELS if shares.get(("mouth", label))}
        if pairs:
            print(f"  open mouth: share of the opening brighter than {mouth.BRIGHT_OF_SKIN:g} x the skin's median "
                  "(teeth), the photo against its person's neutral wearing its curves (frontal views)")
            print("    " + "  ".join(f"{label} {v[:, 0].mean():.2f} / {v[:, 1].mean():.2f} (n {len(v)})"
                                   for label, v in pairs.items()))
        for key, neutral in (("view gap", "each with its own view's neutral"),
                             ("view gap, frontal neutral", "both with the frontal neutral's identity")):
            gaps = {label: shares.get((key, label), []) for label in EMOTION_LABELS}
            if any(gaps.values()):
                print(f"  {key}: mean |curve difference| between the half-profile and the frontal photo of one "
                      f"expression ({neutral}; lower = the curves depend less on the view)")
                print("    " + "  ".join(f"{label} {np.mean(v):.4f}" for label, v in gaps.items() if v)
                      + f"  all {np.mean([g for v in gaps.values() for g in v]):.4f}")

    if fixtures:
        print("\nfixtures (targets: residual <= 1.7 %IOD, jitter <= 30 % of raw, open-model fit >= 150 fps)")
        print(f"  {'clip':28s} {'variant':24s} {'resid %IOD':>10s} {'jitter/raw':>10s} {'fit fps':>8s}")
        for label, variant, resid, _explained, jit, raw, fps in fixtures:
            print(f"  {label:28s} {variant:24s} {resid:10.2f} {100 * jit / raw:9.0f}% {fps:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/emocap-fidelity"))
    parser.add_argument("--people", type=int, default=56, help="KDEF people for the real-motion measure (0: skip)")
    parser.add_argument("--skip-fixtures", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(2)
    started = time.perf_counter()
    config = PipelineConfig(device="cpu")
    model = load_face_model(ModelChoice())
    analysed = analyse_stills(args.work, config)
    by_name = {a.still.name: a for a in analysed}
    carriers = [Carrier.build(analyse_carrier(by_name[name].still, args.work, config), model)
                for name in CARRIER_FILES if by_name[name].found]
    # the judges in float32 on every CPU, so that readings compare across machines and with earlier runs
    judges = {"emonet": load_recogniser("emonet", precision=FLOAT32), "fer": load_recogniser("fer", precision=FLOAT32)}
    table = curve_table(analysed)
    renders, readings = retarget(analysed, carriers, judges)
    sheets.write_sheets(args.work / "sheets", analysed, renders, readings, model)
    shares = real_motion(config, args.work, args.people) if args.people else {}
    fixtures = [] if args.skip_fixtures else fixture_rows()
    print_tables(analysed, table, readings, shares, fixtures)
    print("\n'kept alone': share of the expression motion of the curves fitted with the person's own neutral that the "
          "curves of the photo analysed alone (identity from the prior of neutral faces) reproduce")
    print("'noise ceiling': the share a perfect model would explain, MediaPipe's landmark noise in both photos "
          "(their spread over 15 jittered crops, benchmarks/fidelity/landmark_noise.py) left unexplained")
    print(f"\ncontact sheets: {args.work / 'sheets'}   ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
