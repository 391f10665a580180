"""What a viewer shows of a take: per-frame images, landmarks and posed meshes, and the clip's
curves, with the user's edits applied. Qt-free, so the app, scripts and tests share it.

``TakeView(take_dir)`` opens a stored take (and its source recording); ``frame(i)`` gives a
:class:`FrameView`; ``curves()`` the timelines; ``set_edits`` changes the edits (non-destructive:
the fit on disk never changes) and the reconstruction's emotion curve follows them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.edit import EditBasis, Edits, apply_edits, load_edits, take_basis
from core.emotion.types import EMOTIONS
from core.errors import InputNotFoundError, TakeError
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES
from core.fit.camera import project
from core.fit.fitter import single_threaded_torch
from core.fit.params import FitParams
from core.render.teeth import TeethRig
from core.take import ObservationArrays, Take
from core.video import FrameSource, open_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameView:
    """One frame as the viewer shows it.

    image: H x W x 3 uint8 RGB. landmarks: 478 x 2 float32 image pixels, or None (no face).
    vertices: V x 3 float32 posed mesh in model space (metres, y up, head rotation applied, no
    translation), or None before fitting or without a face. projected: V x 2 float32 image pixels of
    the same vertices through the fitted camera. colours: V x 3 float32 in [0, 1], the performer's
    pixels under each vertex. teeth: T x 3 float32 vertices of the teeth (TakeView.teeth, the
    same space as ``vertices``), or None with them."""

    index: int
    image: np.ndarray
    landmarks: np.ndarray | None
    vertices: np.ndarray | None
    projected: np.ndarray | None
    colours: np.ndarray | None
    teeth: np.ndarray | None = None


@dataclass(frozen=True)
class Curves:
    """A take's timelines, N frames (NaN where there is no value).

    times: N seconds. has_face: N bool. confidence: N face confidence (0 to 1).
    emotion: {recogniser: N x 8 probabilities over EMOTIONS}.
    primary: the recogniser the summary uses, or None. valence, arousal: N in [-1, 1] or None.
    intensity: N in [0, 1] or None. consistency: N or None (image vs reconstruction, primary).
    reconstruction_emotion: N x 8 predicted from the (edited) expression curves, or None.
    carrier_emotion: N x 8 read on the curves worn by a neutral carrier face (primary recogniser,
    core/emotion/carrier.py), or None; carried: N, its consistency with the performer's emotion,
    or None; carrier: that face, or why the take has none (None: no emotion analysis).
    expression: N x E, with expression_names. micro_energy: N or None (micro-expression motion).
    blendshapes: N x 52 scores in [0, 1] of MediaPipe's blendshape network on the observed landmarks,
    with blendshape_names (ARKit names; core/observe/blendshapes.py), for comparison with the
    expression curves of the same name."""

    times: np.ndarray
    has_face: np.ndarray
    confidence: np.ndarray
    emotion: dict[str, np.ndarray]
    primary: str | None
    valence: np.ndarray | None
    arousal: np.ndarray | None
    intensity: np.ndarray | None
    consistency: np.ndarray | None
    reconstruction_emotion: np.ndarray | None
    carrier_emotion: np.ndarray | None
    carried: np.ndarray | None
    carrier: str | None
    expression: np.ndarray | None
    expression_names: list[str]
    micro_energy: np.ndarray | None
    blendshapes: np.ndarray
    blendshape_names: list[str]


def sample_colours(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Colours (P x 3 float32 in [0, 1]) of ``image`` (H x W x 3 uint8) at P x 2 pixel positions
    (nearest pixel, clamped to the image)."""
    h, w = image.shape[:2]
    x = np.clip(np.rint(points[:, 0]), 0, w - 1).astype(np.int64)
    y = np.clip(np.rint(points[:, 1]), 0, h - 1).astype(np.int64)
    return image[y, x].astype(np.float32) / 255.0


class TakeView:
    """A stored take opened for viewing. Not thread-safe: use from one thread at a time."""

    def __init__(self, take_dir: str | Path, source_path: str | Path | None = None) -> None:
        self.take = Take.open(Path(take_dir))
        path = Path(source_path or self.take.manifest.source.path)
        if not path.exists():
            raise InputNotFoundError(f"the recording of {take_dir} is no longer at {path}; locate it to reopen the take")
        self.source: FrameSource = open_source(path, image_fps=self.take.manifest.settings.image_fps)
        self.observations: ObservationArrays = self.take.load_observations()
        self.raw_fit: FitParams | None = self.take.read_fit()
        self.model = None
        self.basis: EditBasis | None = None
        self.teeth: TeethRig | None = None  # the teeth the viewer draws in the mouth (core/render/teeth.py)
        self._param_net = None
        self._emotion = self.take.read_emotion()
        if self.raw_fit is not None:
            self.model = load_face_model(ModelChoice.from_settings(self.take.manifest.fit.settings))
            self.basis = take_basis(self.take, self.model, fit=self.raw_fit, emotion=self._emotion)
            self.teeth = TeethRig.of_neutral(self.model.neutral_face(self.raw_fit.identity))
            if self._emotion is not None:
                self._param_net = self._emotion.param_model(self.model.num_expression)
        self.refinement = self.take.read_refinement() if self.raw_fit is not None else None
        self.show_refined = self.refinement is not None
        self.edits = Edits()
        self.fit = self.raw_fit
        self.set_edits(load_edits(self.take.root))

    # -- edits -------------------------------------------------------------------------------
    def set_edits(self, edits: Edits) -> None:
        """Show the fit with these edits (not stored; see core.edit.save_edits)."""
        self.edits = edits
        if self.raw_fit is not None:
            self.fit = apply_edits(self.base_fit, edits, self.basis)

    @property
    def base_fit(self) -> FitParams | None:
        """The fit the edits apply to: the micro-expression refiner's when it ran and is shown."""
        if self.raw_fit is not None and self.show_refined and self.refinement is not None:
            return self.refinement.refined_fit(self.raw_fit)
        return self.raw_fit

    def set_show_refined(self, on: bool) -> None:
        """Compare the refined reconstruction with the plain fit (no effect without a refinement)."""
        self.show_refined = bool(on) and self.refinement is not None
        self.set_edits(self.edits)

    @property
    def emotions_with_direction(self) -> list[str]:
        """Emotions the per-emotion sliders can scale in this take."""
        return [e for e in EMOTIONS if self.basis is not None and e in self.basis.emotion_directions]

    # -- frames ------------------------------------------------------------------------------
    @property
    def frame_count(self) -> int:
        return len(self.observations)

    @property
    def fps(self) -> float:
        return float(self.take.manifest.video.fps)

    @property
    def faces(self) -> np.ndarray | None:
        """F x 3 int triangles of the mesh, or None before fitting."""
        return None if self.model is None else self.model.faces.cpu().numpy()

    def image(self, index: int) -> np.ndarray:
        return self.source.read(index)

    def frame(self, index: int, image: np.ndarray | None = None) -> FrameView:
        """The frame ``index`` (0 .. frame_count - 1); pass ``image`` when it is already decoded."""
        image = self.source.read(index) if image is None else image
        obs = self.observations
        landmarks = obs.landmarks[index, :, :2].copy() if obs.has_face[index] else None
        vertices = projected = colours = teeth = None
        fit = self.fit
        if fit is not None and index < len(fit) and fit.has_face[index]:
            vertices, projected, teeth = self.posed(index)
            colours = sample_colours(image, projected)
        return FrameView(index, image, landmarks, vertices, projected, colours, teeth)

    def posed(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(V x 3 model-space vertices, V x 2 image pixels, T x 3 model-space teeth vertices) of
        frame ``index``: the edited fit, with the refiner's per-vertex offsets when the refinement
        is shown (the teeth follow the skull and the jaw of the fit). On one torch thread: one
        frame's tensors are tiny, and while an analysis keeps the cores busy (the app's child
        process at a lower priority) torch's second thread made each frame 3.7 ms instead of 0.8."""
        from core.microexpr.geometry import apply_offsets

        rows = np.array([index])
        with torch.no_grad(), single_threaded_torch():
            out = self.model(self.fit.to_face_params(rows))
            refined = self.show_refined and bool(self.refinement.refined[index])
            offsets = torch.as_tensor(self.refinement.vertex_offsets(rows)) if refined else None
            vertices = apply_offsets(out, offsets)
            image = project(vertices, torch.as_tensor(self.fit.camera[rows], dtype=torch.float32))
        return vertices[0].numpy(), image[0, :, :2].numpy(), self.teeth.place(out)[0].astype(np.float32)

    # -- curves ------------------------------------------------------------------------------
    def curves(self) -> Curves:
        obs = self.observations
        stored = self._emotion
        main = None if stored is None else stored.main
        return Curves(
            times=obs.timestamp.astype(np.float64), has_face=obs.has_face.copy(), confidence=obs.confidence.copy(),
            emotion={} if stored is None else {name: t.probabilities for name, t in stored.timelines.items()},
            primary=None if stored is None else stored.primary,
            valence=None if main is None else main.valence, arousal=None if main is None else main.arousal,
            intensity=None if main is None else main.intensity,
            consistency=None if main is None else main.consistency, reconstruction_emotion=self.reconstruction_emotion(),
            carrier_emotion=None if main is None else main.carrier_probabilities,
            carried=None if main is None else main.carried,
            carrier=None if self.take.manifest.emotion is None or self.take.manifest.emotion.summary is None
            else self.take.manifest.emotion.summary.carrier,
            expression=None if self.fit is None else self.fit.expression,
            expression_names=[] if self.take.manifest.fit is None else list(self.take.manifest.fit.expression_names),
            micro_energy=None if self.refinement is None else self.refinement.motion_energy,
            blendshapes=obs.blendshapes, blendshape_names=list(ARKIT_NAMES),
        )

    def reconstruction_emotion(self) -> np.ndarray | None:
        """N x 8 emotion predicted from the edited expression curves (NaN without a face), or None
        when the take has no emotion-from-parameters model."""
        if self._param_net is None or self.fit is None:
            return None
        from core.emotion.from_params import predict_from_params

        out = np.full((len(self.fit), len(EMOTIONS)), np.nan, np.float32)
        rows = self.fit.has_face
        if rows.any():
            out[rows] = predict_from_params(self._param_net, self.fit.expression[rows]).probabilities
        return out

    def close(self) -> None:
        self.source.close()


def open_take_view(take_dir: str | Path, source_path: str | Path | None = None) -> TakeView:
    """Open a take for viewing; TakeError when the folder holds no analysed frames."""
    view = TakeView(take_dir, source_path)
    if view.frame_count == 0:
        view.close()
        raise TakeError(f"{take_dir} holds no analysed frames yet")
    return view
