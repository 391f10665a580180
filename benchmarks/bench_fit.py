"""Quality and speed of fitting both face models, in one table.

    python benchmarks/bench_fit.py

For each fixture video and model (the open model; FLAME on a small synthetic file in FLAME's
format, made by the test code): landmark residual after fitting (percent of the inter-ocular
distance, IOD), share of the non-rigid landmark motion the fit explains, jitter (mean frame-to-frame
acceleration of the fitted landmarks against the raw MediaPipe landmarks, pixels per frame^2), and
fitting speed. The reference in the same run is the same fit without temporal terms. A synthetic
row poses the model with known parameters, adds 0.5 px landmark noise, fits, and reports errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.facemodel import FaceModel  # noqa: E402
from core.facemodel.flame import load_flame  # noqa: E402
from core.facemodel.open_model import load_open_model  # noqa: E402
from core.fit.camera import project  # noqa: E402
from core.fit.fitter import FitConfig, Fitter  # noqa: E402
from core.fit.params import FitParams  # noqa: E402
from core.fit.stage import fit_clip  # noqa: E402
from core.fit.temporal import segments  # noqa: E402
from core.observe import landmark_ids as ids  # noqa: E402
from core.observe.headpose import similarity_align  # noqa: E402
from core.pipeline import Pipeline, PipelineConfig  # noqa: E402
from core.stages import drain  # noqa: E402
from core.take import Take  # noqa: E402
from tests.synthetic_flame import write_synthetic_flame  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
CLIPS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4")


def fitted_landmarks(model: FaceModel, fit: FitParams) -> np.ndarray:
    """N x L x 3 image landmarks of the fit (NaN rows without a face)."""
    out = np.full((len(fit), len(model.landmark_ids), 3), np.nan, np.float32)
    rows = np.nonzero(fit.has_face)[0]
    with torch.no_grad():
        out[rows] = project(model(fit.to_face_params(rows)).landmarks, torch.as_tensor(fit.camera[rows])).numpy()
    return out


def acceleration(points: np.ndarray, has_face: np.ndarray) -> float:
    """Mean |second difference| (2D, px/frame^2) inside runs of frames with a face."""
    values = []
    for a, b in segments(has_face):
        if b - a >= 3:
            values.append(np.linalg.norm(np.diff(points[a:b, :, :2], n=2, axis=0), axis=2).ravel())
    return float(np.concatenate(values).mean()) if values else float("nan")


def explained_share(observed: np.ndarray, fitted: np.ndarray, lm_ids: np.ndarray) -> float:
    """1 - |fit error|^2 / |non-rigid motion|^2, in the head's frame (2D), over frames."""
    rigid = [i for i, lid in enumerate(lm_ids) if lid in set(ids.RIGID)]
    reference = np.median(observed, axis=0)
    err = motion = 0.0
    for obs, fit in zip(observed, fitted):
        r, t, s = similarity_align(obs[rigid].astype(np.float64), reference[rigid])
        aligned_obs = s * obs @ r.T + t
        aligned_fit = s * fit @ r.T + t
        motion += ((aligned_obs - reference)[:, :2] ** 2).sum()
        err += ((aligned_obs - aligned_fit)[:, :2] ** 2).sum()
    return 1.0 - err / motion


def clip_rows(model: FaceModel, label: str, observations) -> list[tuple]:
    rows = []
    lm_ids = model.landmark_ids.numpy()
    has_face = observations.has_face
    observed = observations.landmarks[:, lm_ids]
    raw_jitter = acceleration(observed, has_face)
    for name, config in (("no temporal (reference)", FitConfig(temporal=0.0)), ("fit", FitConfig())):
        start = time.perf_counter()
        fitter = Fitter(model, config)
        fit = drain(fit_clip(fitter, observations, fitter.fit_identity(observations)))
        seconds = time.perf_counter() - start
        fitted = fitted_landmarks(model, fit)
        rows.append((
            label, name, 100 * float(np.nanmean(fit.residual)),
            100 * explained_share(observed[has_face], fitted[has_face], lm_ids),
            acceleration(fitted, has_face), raw_jitter, len(fit) / seconds,
        ))
    return rows


def synthetic_row(model: FaceModel, label: str, frames: int = 120) -> tuple:
    rng = np.random.default_rng(0)
    t = np.arange(frames) / 30.0
    params = model.zero_params(frames)
    if model.expression_bounds is not None:
        expression = np.zeros((frames, model.num_expression), np.float32)
        for k, index in enumerate(rng.choice(model.num_expression, 8, replace=False)):
            expression[:, index] = 0.45 + 0.4 * np.sin(2 * np.pi * (0.3 + 0.15 * k) * t + k)
    else:
        expression = (rng.normal(size=model.num_expression) * np.sin(2 * np.pi * 0.4 * t)[:, None]).astype(np.float32)
        params.jaw[:, 0] = torch.tensor(0.15 * (1 + np.sin(2 * np.pi * 0.5 * t)), dtype=torch.float32)
    params.expression[:] = torch.tensor(expression)
    params.shape[:] = torch.tensor(rng.normal(scale=0.5, size=model.num_shape), dtype=torch.float32)
    params.rotation[:] = torch.tensor(np.stack([0.1 * np.sin(t), 0.35 * np.sin(0.7 * t), 0.05 * np.cos(t)], 1), dtype=torch.float32)
    camera = torch.tensor(np.stack([np.full(frames, np.log(2200.0)), 320 + 15 * np.sin(t), 200 + 8 * np.cos(t), np.zeros(frames)], 1), dtype=torch.float32)
    from core.take.observations import ObservationArrays

    with torch.no_grad():
        image = project(model(params).landmarks, camera).numpy()
    obs = ObservationArrays.empty(frames)
    obs.index[:] = np.arange(frames)
    obs.has_face[:] = True
    obs.landmarks[:, model.landmark_ids.numpy()] = image + rng.normal(scale=0.5, size=image.shape)
    start = time.perf_counter()
    fitter = Fitter(model)
    fit = drain(fit_clip(fitter, obs, fitter.fit_identity(obs)))
    seconds = time.perf_counter() - start
    with torch.no_grad():
        vertex_mm = 1000 * (model(fit.to_face_params()).vertices - model(params).vertices).norm(dim=2).mean().item()
        jaw_deg = np.degrees(np.abs(fit.jaw - params.jaw.numpy()).mean())
    return (label, float(np.abs(fit.expression - expression).mean()),
            float(np.degrees(np.abs(fit.rotation - params.rotation.numpy()).mean())), jaw_deg, vertex_mm,
            100 * float(np.nanmean(fit.residual)), frames / seconds)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        flame_path = Path(tmp) / "synthetic_flame.pkl"
        write_synthetic_flame(flame_path)
        models = {"open": FaceModel(load_open_model()), "flame (synthetic)": FaceModel(load_flame(flame_path, num_shape=20, num_expression=10))}
        rows = []
        for clip in CLIPS:
            take_dir = Path(tmp) / clip
            Pipeline(PipelineConfig(device="cpu", model=None)).run(FIXTURES / clip, take_dir)
            observations = Take.open(take_dir).load_observations()
            for name, model in models.items():
                rows += clip_rows(model, f"{clip} / {name}", observations)
        synthetic = [synthetic_row(model, name) for name, model in models.items()]

    print(f"\n{'clip / model':42s} {'variant':24s} {'resid %IOD':>10s} {'explained':>9s} {'jitter fit':>10s} {'jitter raw':>10s} {'fit fps':>8s}")
    print("-" * 120)
    for label, variant, resid, explained, jit, raw, fps in rows:
        print(f"{label:42s} {variant:24s} {resid:10.2f} {explained:8.1f}% {jit:10.3f} {raw:10.3f} {fps:8.0f}")
    print("\nsynthetic ground truth (120 frames, 0.5 px landmark noise)")
    print(f"{'model':20s} {'expr MAE':>9s} {'rot err':>8s} {'jaw err':>8s} {'vertex mm':>9s} {'resid %IOD':>10s} {'fit fps':>8s}")
    for label, expr, rot, jaw, mm, resid, fps in synthetic:
        print(f"{label:20s} {expr:9.3f} {rot:7.2f}d {jaw:7.2f}d {mm:9.2f} {resid:10.2f} {fps:8.0f}")
    print("\ntargets: jitter of the fit <= 50 % of raw with the residual at most 10 % above the reference; "
          "open model >= 200 fps, FLAME >= 30 fps")


if __name__ == "__main__":
    main()
