"""Training samples from an analysed take and its video (actor-specific distillation, and the
"video clip + take" dataset kind).

What a take gives per face frame (rows where both the observation and the fit have a face):

- the aligned crop, warped from the video frame at the encoder's input size with the stored crop
  transform (the video is found through the take's manifest, ``source.path``);
- MediaPipe's 478 landmarks in crop space (landmark loss targets);
- the fitter's parameters in crop space (core/encoder/crop_space.py) as pseudo ground truth;
- emotion targets: the take's emotion timeline of the chosen recogniser (TAKE/emotion/
  timelines.npz: probabilities, valence and arousal when that recogniser gives them); when the
  take has no timeline for it and the recogniser is ``fer`` (about 1 ms a face), it is run here on
  the 256 px crops instead; otherwise the emotion targets stay unknown;
- one texture: the reference frame (the fitted frame with the least expression, as the
  reconstruction renderer chooses it) and the fitted mesh's vertices in its crop.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from core.encoder.config import EncoderConfig
from core.encoder.crop_space import landmarks_to_crop, pose_to_crop, scaled_transforms
from core.encoder.predict import root_joint
from core.errors import TakeError
from core.facemodel.model import FaceModel
from core.fit.camera import project
from core.fit.params import FitParams
from core.observe.align import warp_crop
from core.render.reconstruction import choose_reference_frame
from core.take import Take
from core.video import open_source
from training.samples import SampleArrays, Texture

log = logging.getLogger(__name__)

RECOGNISER_CROP = 256


def fitted_rows(take: Take, fit: FitParams) -> np.ndarray:
    """Rows (of the observations and the fit, which are aligned) with an observed and fitted face."""
    obs = take.load_observations()
    ok = obs.has_face & fit.has_face & np.isfinite(obs.crop_transform).all(axis=(1, 2))
    return np.nonzero(ok)[0]


def param_targets(fit: FitParams, rows: np.ndarray, transforms: np.ndarray, crop_size: float, model: FaceModel,
                  config: EncoderConfig) -> np.ndarray:
    """N x P crop-space parameter targets of the fit's ``rows`` (encoder flat order)."""
    rotation, camera = pose_to_crop(fit.rotation[rows], fit.camera[rows], root_joint(model, fit.identity),
                                    transforms, crop_size)
    groups = {"identity": np.broadcast_to(fit.identity, (len(rows), config.num_shape)),
              "expression": fit.expression[rows], "rotation": rotation, "neck": fit.neck[rows],
              "jaw": fit.jaw[rows], "eyes": fit.eyes[rows], "camera": camera}
    return np.concatenate([groups[g] for g in config.group_sizes()], axis=1).astype(np.float32)


def crop_vertices(model: FaceModel, fit: FitParams, row: int, transform: np.ndarray, crop_size: float) -> np.ndarray:
    """The fitted mesh of ``row`` in its crop: (V + L) x 2 float32 in crop sides, the V vertices
    then the L landmarks (the render's points, training/render_topology.py)."""
    rotation, camera = pose_to_crop(fit.rotation[[row]], fit.camera[[row]], root_joint(model, fit.identity),
                                    transform[None], crop_size)
    params = fit.to_face_params(np.array([row]))
    params.rotation = torch.as_tensor(rotation)
    with torch.no_grad():
        out = model(params)
        points = project(torch.cat([out.vertices, out.landmarks], dim=1), torch.as_tensor(camera))
    return points[0, :, :2].numpy().astype(np.float32)


def load_take_samples(take_dir: str | Path, model: FaceModel, config: EncoderConfig, *, emotion_recogniser: str = "fer",
                      pseudo_weight: float = 1.0, max_samples: int = 0, rows: np.ndarray | None = None) -> SampleArrays:
    """All fitted face frames of a take (or ``rows``, or ``max_samples`` of them evenly spread)
    as training samples at ``config.input_size``. TakeError when the take has no fit, was fitted
    with another model, or its video is gone."""
    take = Take.open(Path(take_dir))
    fit = take.read_fit(complete=True)
    if fit is None:
        raise TakeError(f"{take.root} has no complete fit; run 'emocap analyze' on its video first")
    if (fit.expression.shape[1], len(fit.identity)) != (model.num_expression, model.num_shape):
        raise TakeError(f"{take.root} was fitted with {take.manifest.fit.model} "
                        f"({len(fit.identity)} identity, {fit.expression.shape[1]} expression components), "
                        f"not with {model.name} ({model.num_shape}, {model.num_expression})")
    obs = take.load_observations()
    face_rows = fitted_rows(take, fit)
    if rows is not None:
        face_rows = np.intersect1d(face_rows, rows)
    if max_samples and len(face_rows) > max_samples:
        face_rows = face_rows[np.unique(np.linspace(0, len(face_rows) - 1, max_samples).round().astype(int))]
    if len(face_rows) == 0:
        raise TakeError(f"{take.root} has no fitted face frame to learn from")
    crop_size = float(take.manifest.settings.crop_size)
    size = config.input_size
    transforms = obs.crop_transform[face_rows].astype(np.float64)
    reference_row = int(np.nonzero(fit.frame_index == choose_reference_frame(fit))[0][0])

    stored = take.read_emotion()
    timeline = None if stored is None else stored.timelines.get(emotion_recogniser)
    probabilities = None if timeline is None else timeline.probabilities
    run_fer = probabilities is None and emotion_recogniser == "fer"
    recogniser = None
    if run_fer:
        from core.emotion.recognisers import load_recogniser

        try:
            recogniser = load_recogniser("fer")
        except Exception as err:  # ModelNotInstalledError and friends: train without emotion targets
            log.warning("no emotion targets for %s: %s", take.root, err)
    elif probabilities is None:
        log.warning("%s has no %s emotion timeline; its emotion targets stay unknown", take.root, emotion_recogniser)

    images, emotion, reference_image = _read_crops(take, obs, face_rows, reference_row, transforms, crop_size, size, recogniser)
    data = SampleArrays.empty_targets(images, config.num_params)
    data.landmarks[:] = landmarks_to_crop(obs.landmarks[face_rows], transforms, crop_size)
    data.params[:] = param_targets(fit, face_rows, transforms, crop_size, model, config)
    data.param_weight[:] = pseudo_weight
    if probabilities is not None:
        data.emotion[:] = probabilities[face_rows]
        valence, arousal = timeline.valence, timeline.arousal
        if valence is not None and arousal is not None:
            data.valence_arousal[:] = np.stack([valence[face_rows], arousal[face_rows]], axis=1)
    elif emotion is not None:
        data.emotion[:] = emotion
    data.texture[:] = 0
    data.actor[:] = 0
    data.order[:] = obs.index[face_rows]
    uv = crop_vertices(model, fit, reference_row, obs.crop_transform[reference_row].astype(np.float64), crop_size)
    return replace(data, textures=(Texture(reference_image, uv),))


def _read_crops(take: Take, obs, rows: np.ndarray, reference_row: int, transforms: np.ndarray, crop_size: float,
                size: int, recogniser) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """One sequential pass over the video: crops of ``rows`` at ``size``, the recogniser's
    probabilities on 256 px crops (or None), and the reference frame's crop."""
    path = Path(take.manifest.source.path)
    if not path.exists():
        raise TakeError(f"the video of {take.root} is gone: {path}")
    wanted = {int(obs.index[r]): k for k, r in enumerate(rows)}
    reference_index = int(obs.index[reference_row])
    scaled = scaled_transforms(transforms, crop_size, size)
    images = np.empty((len(rows), size, size, 3), np.uint8)
    big: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    reference = None
    first, last = min(min(wanted), reference_index), max(max(wanted), reference_index)
    with open_source(path, image_fps=take.manifest.settings.image_fps) as source:
        for index, frame in source.iter_frames(first, last + 1):
            if index == reference_index:
                t = scaled_transforms(obs.crop_transform[reference_row][None].astype(np.float64), crop_size, size)[0]
                reference = warp_crop(frame, t, size)
            k = wanted.get(index)
            if k is None:
                continue
            images[k] = warp_crop(frame, scaled[k], size)
            if recogniser is not None:
                t256 = scaled_transforms(transforms[k][None], crop_size, RECOGNISER_CROP)[0]
                big.append(warp_crop(frame, t256, RECOGNISER_CROP))
                if len(big) == 64:
                    probs.append(recogniser.predict(np.stack(big)).probabilities)
                    big.clear()
    if recogniser is not None and big:
        probs.append(recogniser.predict(np.stack(big)).probabilities)
    emotion = np.concatenate(probs) if recogniser is not None else None
    return images, emotion, reference
