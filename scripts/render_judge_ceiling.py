"""The judge's ceiling: how often the emotion recognisers read real expression motion, transferred
onto other people's neutral faces and rendered by the reconstruction renderer, as its label.

    python scripts/render_judge_ceiling.py OUT_DIR [--kdef ../shared/expressions/kdef]
        [--carriers ../shared/expressions/neutral__kdef__1.jpg,...] [--people-step 1]
        [--displacements FILE.npz] [--sheet-people kdef-AM10,kdef-AF05]

1. **Real motion** (KDEF, frontal): for each person, MediaPipe's 478 landmarks of their neutral
   photo and of each expression (happy, sad, surprise, fear, anger, disgust); the expression's
   landmarks are aligned to the neutral's by a similarity on stable points (nose bridge, inner and
   outer eye corners, face sides; depth re-centred on them) and the difference is turned into the
   open model's space (metres, x to the performer's left, y up, z toward the viewer) with the
   neutral's similarity to the open model's template (core.facemodel.calibration). Cached as
   ``OUT_DIR/kdef_displacements.npz``, or read from ``--displacements``.
2. **Carriers**: neutral photos of other people, each analysed into a take (``OUT_DIR/carriers``).
   A person's own motion never goes onto their own face.
3. **Transfer**: the carrier's fitted open-model mesh plus the motion as one extra expression
   shape at weight 1 (the model's expression basis gains one column per motion; frame 0 is the
   carrier itself, the reference), rendered by ``ReconstructionRenderer`` without the surface
   shading (``old``, the render before it existed), with it (``new``), and with it and the learned
   expression appearance maps (``maps``, core/render/appearance.py), driven by the curves that
   explain the motion with the open model's shapes (core.facemodel.calibration.fit_weights; the
   geometry stays the real motion).
4. **Judge**: EmoNet and FER on the 256 x 256 renders. Per emotion: the share of (motion,
   carrier) pairs read as the label, and the mean probability of the label.
5. **Prototype poses**: the fidelity note's hand-set ARKit poses at 1.0 and 1.5 on each carrier.

Writes ``OUT_DIR/ceiling.md`` (the tables, ms per render), ``OUT_DIR/ceiling.json``, and contact
sheets, three rows per carrier (the old render, the new, the maps), each the carrier's neutral and then
one tile per emotion: ``sheet_<person>.png`` for that KDEF person's motion and
``sheet_prototypes_<scale>.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fidelity.curves import PROTOTYPES, prototype_vector  # noqa: E402
from core.emotion.recognisers import load_recogniser  # noqa: E402
from core.emotion.types import EMOTIONS, FLOAT32  # noqa: E402
from core.facemodel.calibration import ExpressionLearning, expression_motion, fit_weights  # noqa: E402
from core.facemodel.model import FaceModel  # noqa: E402
from core.facemodel.open_model import load_open_model  # noqa: E402
from core.facemodel.types import FaceModelData  # noqa: E402
from core.fit.params import FitParams  # noqa: E402
from core.observe.observer import FaceObserver  # noqa: E402
from core.pipeline import Pipeline, PipelineConfig  # noqa: E402
from core.render.reconstruction import ReconstructionRenderer  # noqa: E402
from core.take import Take  # noqa: E402
from core.take.observations import ObservationArrays  # noqa: E402
from core.video import open_source  # noqa: E402

log = logging.getLogger("render_judge_ceiling")

EXPRESSIONS = ("happy", "sad", "surprise", "fear", "anger", "disgust")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "expressions"
CARRIERS = tuple(str(SHARED / name) for name in (
    "neutral__kdef__1.jpg", "neutral__kdef__2.jpg", "neutral__pam29__1.jpg", "neutral__ckplus__1.png"))
# KDEF identities of carriers that are KDEF photos (labels.csv), so their own motion is skipped
CARRIER_PERSON = {"neutral__kdef__1.jpg": "kdef-AM24", "neutral__kdef__2.jpg": "kdef-AF23"}
PROTOTYPE_SCALES = (1.0, 1.5)


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def analyse(image: Path, take_dir: Path) -> tuple[FitParams, ObservationArrays, np.ndarray]:
    """One photo analysed into a take (resumed when done): its fit, observations and RGB image."""
    Pipeline(PipelineConfig(device="cpu")).run(image, take_dir)
    take = Take.open(take_dir)
    fit = take.read_fit()
    if fit is None or not fit.has_face[0]:
        raise SystemExit(f"no face fitted in {image}")
    with open_source(image) as source:
        return fit, take.load_observations(), source.read(0)


def kdef_displacements(kdef: Path, work: Path) -> dict[str, np.ndarray]:
    """Frontal KDEF motion from each person's neutral to each expression, model space (see the
    module docstring): {"disp": N x 478 x 3 metres, "person": N, "expr": N}."""
    template = load_open_model().template.astype(np.float64)
    disp, person, expr = [], [], []
    neutrals = sorted(kdef.glob("neutral__*__frontal.jpg"))
    for n, neutral in enumerate(neutrals):
        who = neutral.name.split("__")[1]
        _, observations, _ = analyse(neutral, work / "kdef_neutrals" / who)
        base = observations.landmarks[0].astype(np.float64)
        for e in EXPRESSIONS:
            path = kdef / f"{e}__{who}__frontal.jpg"
            if not path.is_file():
                continue
            with open_source(path) as source, FaceObserver(crop_images=False) as observer:
                observation = observer.observe(0, 0.0, source.read(0))
            if not observation.has_face:
                log.warning("no face in %s", path.name)
                continue
            disp.append(expression_motion(base, observation.landmarks.astype(np.float64), template))
            person.append(who)
            expr.append(e)
        log.info("KDEF %d/%d %s", n + 1, len(neutrals), who)
    return {"disp": np.array(disp), "person": np.array(person), "expr": np.array(expr)}


def _rows(obj, n: int, index_field: str):
    """A one-frame FitParams / ObservationArrays repeated as frames 0..n-1."""
    values = {}
    for f in dataclasses.fields(obj):
        a = getattr(obj, f.name)
        if f.name == "identity":
            values[f.name] = a
        elif f.name == index_field:
            values[f.name] = np.arange(n, dtype=a.dtype)
        else:
            values[f.name] = np.repeat(a[:1], n, axis=0)
    return type(obj)(**values)


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def render_shapes(data: FaceModelData, fit: FitParams, observations: ObservationArrays, image: np.ndarray,
                  shapes: np.ndarray, shading: bool, curves: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """The carrier plus each of K extra shapes (K x V x 3 metres) at weight 1: (K+1) renders (frame
    0 = the carrier alone) and the seconds per render. curves: K x E weights of the model's own
    shapes that drive the learned appearance maps (None: no maps); the geometry stays the carrier
    plus the extra shape (the extra shape less what the curves move is added)."""
    k = len(shapes)
    expression_basis = data.expression_basis.astype(np.float64)
    if curves is not None:
        shapes = shapes - np.einsum("vce,ke->kvc", expression_basis, curves)
    basis = np.concatenate([data.expression_basis, np.transpose(shapes, (1, 2, 0)).astype(np.float32)], axis=2)
    names = tuple(data.expression_names) + tuple(f"transfer{i:04d}" for i in range(k))
    extended = FaceModel(dataclasses.replace(data, expression_basis=basis, expression_names=names))
    extra = np.zeros((k + 1, k), np.float32)
    extra[np.arange(1, k + 1), np.arange(k)] = 1.0
    frames = _rows(fit, k + 1, "frame_index")
    own = frames.expression.copy()
    if curves is not None:
        own[1:] += curves.astype(np.float32)
    frames = dataclasses.replace(frames, expression=np.concatenate([own, extra], axis=1))
    renderer = ReconstructionRenderer(extended, frames, _rows(observations, k + 1, "index"), reference_frame=0,
                                      shading=shading, appearance=curves is not None)
    renderer.set_reference(0, image)
    start = time.perf_counter()
    rgb, _ = renderer.render_crop_batch(list(range(k + 1)))
    return rgb, (time.perf_counter() - start) / (k + 1)


def prototype_shapes(data: FaceModelData) -> tuple[np.ndarray, np.ndarray, list[tuple[str, float]]]:
    """The prototype poses as extra shapes (P x V x 3, the expression basis times the weights; added
    to the carrier's own fitted expression, which is near zero on a neutral photo), their weights
    (P x E) and their (emotion, scale)."""
    basis = data.expression_basis
    shapes, weights, keys = [], [], []
    for emotion in PROTOTYPES:
        for scale in PROTOTYPE_SCALES:
            weights.append(scale * prototype_vector(emotion))
            shapes.append(basis @ weights[-1])
            keys.append((emotion, scale))
    return np.array(shapes), np.array(weights), keys


# --------------------------------------------------------------------------------------------------
# Judging and reporting
# --------------------------------------------------------------------------------------------------


def judge(recognisers: dict, renders: np.ndarray) -> dict[str, np.ndarray]:
    return {name: r.predict(renders).probabilities for name, r in recognisers.items()}


def summary(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, tuple[float, float, int]]:
    """Per emotion: (share read as the label, mean probability of the label, count)."""
    out = {}
    for e in EXPRESSIONS:
        p = probabilities[labels == e]
        k = EMOTIONS.index(e)
        out[e] = (float((p.argmax(axis=1) == k).mean()), float(p[:, k].mean()), len(p))
    return out


def table(rows: dict[str, dict]) -> str:
    head = "| render, recogniser | " + " | ".join(EXPRESSIONS) + " | all |"
    lines = [head, "|" + "---|" * (len(EXPRESSIONS) + 2)]
    for name, s in rows.items():
        hit = np.mean([s[e][0] for e in EXPRESSIONS])
        prob = np.mean([s[e][1] for e in EXPRESSIONS])
        cells = [f"{100 * s[e][0]:.0f}% ({s[e][1]:.2f})" for e in EXPRESSIONS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * hit:.0f}% ({prob:.2f}) |")
    return "\n".join(lines)


def label(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.putText(out, text, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_png(path: Path, rows: list[list[np.ndarray]]) -> None:
    width = max(len(r) for r in rows)
    blank = np.zeros_like(rows[0][0])
    sheet = np.vstack([np.hstack(r + [blank] * (width - len(r))) for r in rows])
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    log.info("wrote %s", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--kdef", type=Path, default=SHARED / "kdef")
    parser.add_argument("--carriers", default=",".join(CARRIERS), help="comma-separated neutral photos")
    parser.add_argument("--displacements", type=Path, help="an .npz made by this script (default: build it)")
    parser.add_argument("--people-step", type=int, default=1, help="every n-th KDEF person only")
    parser.add_argument("--sheet-people", default="kdef-AM10,kdef-AF05", help="whose motion the sheets show")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    cache = args.displacements or args.out / "kdef_displacements.npz"
    if not cache.is_file():
        np.savez(cache, **kdef_displacements(args.kdef, args.out))
    data = dict(np.load(cache))
    people = sorted(set(data["person"]))[:: args.people_step]
    keep = np.isin(data["person"], people)
    disp, person, expr = data["disp"][keep], data["person"][keep], data["expr"][keep]
    log.info("%d motions of %d people", len(disp), len(people))

    data = load_open_model()  # the default model, which the carriers are analysed with
    recognisers = {name: load_recogniser(name, precision=FLOAT32) for name in ("emonet", "fer")}  # the judges as measured before
    sheet_people = args.sheet_people.split(",")
    labels, probs = {"transfer": [], "prototype": []}, {}
    versions = ("old", "new", "maps")
    seconds = {version: [] for version in versions}
    sheets = {p: [] for p in sheet_people}
    prototype_rows: dict[float, list] = {}
    shapes, shape_curves, keys = prototype_shapes(data)
    basis = data.expression_basis.astype(np.float64)
    curves = fit_weights(disp, basis, ExpressionLearning().z_weight)[0]  # the curves that explain each motion
    for path in (Path(p) for p in args.carriers.split(",")):
        fit, observations, image = analyse(path, args.out / "carriers" / path.stem)
        own = np.nonzero(person != CARRIER_PERSON.get(path.name, ""))[0]
        renders = {}
        for version in versions:
            maps = version == "maps"
            rgb, s = render_shapes(data, fit, observations, image, disp[own], shading=version != "old",
                                   curves=curves[own] if maps else None)
            seconds[version].append(s)
            renders[version] = rgb
            for name, p in judge(recognisers, rgb[1:]).items():
                probs.setdefault(("transfer", version, name), []).append(p)
            prgb, _ = render_shapes(data, fit, observations, image, shapes, shading=version != "old",
                                    curves=shape_curves if maps else None)
            renders["prototype_" + version] = prgb
            for name, p in judge(recognisers, prgb[1:]).items():
                probs.setdefault(("prototype", version, name), []).append(p)
        labels["transfer"].append(expr[own])
        labels["prototype"].append(np.array([e for e, _ in keys]))
        for version in versions:
            for who in sheet_people:
                row = [label(renders["old"][0], path.stem)]
                for e in EXPRESSIONS:
                    hit = np.nonzero((person[own] == who) & (expr[own] == e))[0]
                    if len(hit):
                        row.append(label(renders[version][1 + hit[0]], f"{e} {version}"))
                sheets[who].append(row)
            for scale in PROTOTYPE_SCALES:
                row = [label(renders["old"][0], path.stem)]
                row += [label(renders["prototype_" + version][1 + i], f"{e} {scale:g} {version}")
                        for i, (e, at) in enumerate(keys) if at == scale]
                prototype_rows.setdefault(scale, []).append(row)
        log.info("%s: %d transfers, %s ms per render (%s)", path.name, len(own),
                 " / ".join(f"{1000 * seconds[v][-1]:.1f}" for v in versions), " / ".join(versions))

    report, results = ["# The judge's ceiling", ""], {}
    for kind in ("transfer", "prototype"):
        truth = np.concatenate(labels[kind])
        rows = {}
        for version in versions:
            for name in recognisers:
                rows[f"{version}, {name}"] = summary(truth, np.concatenate(probs[(kind, version, name)]))
        results[kind] = rows
        title = (f"KDEF frontal motion of {len(people)} people on {len(args.carriers.split(','))} carriers"
                 if kind == "transfer" else "prototype poses at " + ", ".join(f"{s:g}" for s in PROTOTYPE_SCALES))
        report += [f"## {title}: share read as the label (mean probability of the label)", "", table(rows), ""]
    ms = {v: 1000 * float(np.mean(s)) for v, s in seconds.items()}
    report.append("Rendering (batches, this machine), ms per 256 x 256 render: "
                  + ", ".join(f"{v} {ms[v]:.1f}" for v in versions) + ".")
    (args.out / "ceiling.md").write_text("\n".join(report) + "\n")
    summary_json = {"results": results, "ms_per_render": ms, "people": people}
    (args.out / "ceiling.json").write_text(json.dumps(summary_json, indent=1))
    for who, rows in sheets.items():
        write_png(args.out / f"sheet_{who}.png", rows)
    for scale, rows in prototype_rows.items():
        write_png(args.out / f"sheet_prototypes_{scale:g}.png", rows)
    log.info("\n".join(report))


if __name__ == "__main__":
    main()
