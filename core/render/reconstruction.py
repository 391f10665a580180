"""Render the fitted face of a frame as the camera saw it, textured with the performer's own pixels.

Emotion recognisers judge the *reconstruction* through these renders: the geometry is the fitted
mesh of the frame being rendered (its expression, head pose and camera), the colours come from one
reference frame of the same clip (the performer's neutral face), so what a recogniser sees is the
fitted expression, never the current frame's pixels. No I/O here: the caller reads the reference
image and passes it to :meth:`ReconstructionRenderer.set_reference`::

    renderer = ReconstructionRenderer(model, fit, observations)
    renderer.set_reference(renderer.reference_frame, source.read(renderer.reference_frame))
    rgb, mask = renderer.render_crop(120)  # 256 x 256 x 3 uint8, 256 x 256 bool

What is drawn, in the frame's aligned-crop space (``ObservationArrays.crop_transform``, the crop
recognisers are fed):

- **Skin**: the model's triangles (back faces culled), texture coordinates = the reference frame's
  fitted vertices projected into the reference image (so the reference frame renders as its own
  crop, up to resampling).
- **Eyes**: the mesh has open eye holes. Each is closed by a strip of triangles between the upper
  and lower lid contours, drawn *behind* the skin (a depth offset), so it only shows through the
  lid opening of the rendered frame. The lids slide over the eyeball, so the opening is textured
  with the reference's eye region carried rigidly with the eye corners and shifted so the
  reference iris lands on the fitted iris (the gaze), not squeezed between the lid contours; a
  blink closes the hole, and a narrowing slit darkens as in the shadow of real lids and lashes.
  Where the lids open wider than the reference's (eyes widened in surprise or fear), the opening
  reaches past the reference's own opening onto its lid skin: there it shows the eyeball instead,
  fading in over a pixel or two: the reference's iris colour inside the iris's circle (with a
  pupil and a darker rim) and its sclera's colour outside, never darker than the skin (the whites
  of a narrow eye are in its lids' shadow; those a widened eye uncovers are lit), so a widened eye
  reads as white above the iris, not as a second lid. The outlines of the eye fillings against the
  skin are anti-aliased (a one-pixel staircase drew a jagged dark lid margin).
  (The mesh's own iris fans are left out: they would float in front of the lids.)
- **Mouth**: the mesh has no inner mouth. The inner-lip loop is closed by a strip between the upper
  and lower inner-lip contours, drawn behind the skin: a dark red-brown cavity that turns into the
  tongue's red toward the lower lip. Teeth are the two arched bands of :mod:`core.render.teeth`
  (the upper one moves with the skull, the lower one with the jaw). They are rasterised
  separately and shown only inside the cavity, off-white, darker toward the corners, on the lower
  row and toward the gums, with faint gaps between teeth. Colours follow the reference: levels
  scale with its median skin luminance (teeth 1.3 x, about what real teeth measure in the
  fixtures), the teeth's tint is its sclera's (the clip's white balance). A closed mouth shows none
  of this; parted lips and smiles show the upper teeth; a dropped jaw shows a dark gap between the
  rows (the fit often explains a grin's lowered lower lip by some jawOpen, which then shows as a
  laughing mouth).
- **Background** (outside the mesh): ``background="reference"`` (default) is the reference image
  warped by the least-squares affine map that puts its fitted face outline onto the rendered face
  outline, so hair, ears, neck and scene surround the face as in a real crop and follow head
  motion to first order; ``"grey"`` is flat mid-grey. Looking at both on the fixtures, the
  reference surround is far closer to a real photo: on grey the face is a floating cut-out with a
  hard outline, a cue no recogniser's training face has. It repeats the reference's hair and neck,
  which carry no expression. The face is blended over the background with a 1.5 px feather inside
  its outline, so no hard seam is left.

- **Shading of the deformed surface** (``shading=True``, the default; :mod:`core.render.shading`):
  the texture already carries the reference's real light, so each skin pixel is multiplied by how
  much more or less light the deformed surface catches than the reference surface at the same
  point (a relighting ratio under a fixed key light from above-front plus ambient, in the head's
  frame, with per-pixel normals of a Loop-subdivided mesh), keeping only local change; and where
  the skin is compressed in the zones where faces fold (forehead, between the brows, the nose
  bridge, beside the eyes), thin dark lines are drawn across the compression, as game
  rigs' animated wrinkle maps do. The reference frame, and any rigid head motion, render exactly as
  without shading. A texture moved by a 478-point mesh alone shows no raised cheek, knit brows or
  forehead lines; emotion recognisers read the shaded render better (see
  ``scripts/render_judge_ceiling.py``).

- **Learned expression appearance** (``appearance=True``, the default, on the open model and its
  performer profiles; :mod:`core.render.appearance`): the folds and shadows each curve brings to
  real faces (the fold beside a smiling cheek, a sneer's wrinkled nose, the shadow under lowered
  brows), learned from photographs as one brightness map per shape and applied relative to the
  reference frame's curves, through the same skin-tinted darkening as the shading.

What this render still cannot show: a performer's own folds (the learned maps are an average
face's), wrinkles outside the shading's zones and the maps' reach, and anything occluding the face
(hands: a hand in the reference frame is painted onto every frame, which is why
:func:`core.render.reference.choose_uncovered_reference_frame` avoids such frames).

The reference frame, when not given, is the frame with a fitted face and the least expression
activity (:func:`choose_reference_frame`): the L1 norm of its expression row, plus the jaw joint's
rotation counted in jawOpen units (FLAME opens the mouth with the jaw joint; the open model never
uses it); ties go to the earliest frame. Rows of ``fit_params`` and ``observations`` are addressed
by frame index (``FitParams.frame_index``, ``ObservationArrays.index``).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch

from core.facemodel.model import FaceModel
from core.facemodel.open_model import (
    JAW_OPEN_RAD,
    LEFT_LOWER_LID,
    LEFT_UPPER_LID,
    LOWER_LIP_INNER,
    RIGHT_LOWER_LID,
    RIGHT_UPPER_LID,
    UPPER_LIP_INNER,
)
from core.fit.camera import project
from core.fit.fitter import single_threaded_torch
from core.fit.params import FitParams
from core.observe import landmark_ids as ids
from core.render.appearance import AppearanceMaps, load_appearance_maps
from core.render.rasterizer import Fragments, alpha_mask, rasterize, sample_bilinear, sample_channel
from core.render.shading import SurfaceShader
from core.render.teeth import SKULL_JOINT, TeethRig, teeth_colours
from core.take.observations import ObservationArrays

BACKGROUNDS = ("reference", "grey")
FEATHER_PX = 1.5
OUTLINE_SOFTNESS_PX = 0.6  # Gaussian of the lid margins' anti-aliasing (crop pixels)
GREY = 128

# Contours on MediaPipe's 478 landmarks (every face model reports those as its landmarks).
RIGHT_EYE = ((ids.RIGHT_EYE_OUTER, *RIGHT_UPPER_LID, ids.RIGHT_EYE_INNER),
             (ids.RIGHT_EYE_OUTER, *RIGHT_LOWER_LID, ids.RIGHT_EYE_INNER))
LEFT_EYE = ((ids.LEFT_EYE_OUTER, *LEFT_UPPER_LID, ids.LEFT_EYE_INNER),
            (ids.LEFT_EYE_OUTER, *LEFT_LOWER_LID, ids.LEFT_EYE_INNER))
MOUTH = (UPPER_LIP_INNER, LOWER_LIP_INNER)  # right corner -> left corner, corners shared
MOUTH_WINDING_OPENING_M = 0.005  # how far the lower inner lip is dropped to wind the mouth's filling
FACE_OVAL = ids.FACE_OVAL
# tooth boundaries along the arch from the midline (mm): incisors, canine, premolars
UPPER_TOOTH_EDGES = np.array([0.0, 8.5, 15.0, 22.5, 29.5, 36.5])
LOWER_TOOTH_EDGES = np.array([0.0, 5.3, 11.2, 18.0, 25.0, 32.0])

# colours, as fractions of the reference skin's median luminance
CAVITY_RGB = np.array([0.16, 0.06, 0.06])
TONGUE_RGB = np.array([0.55, 0.26, 0.25])
GUM_RGB = np.array([0.80, 0.42, 0.42])
TEETH_OF_SKIN = 1.3
LUMA = np.array([0.299, 0.587, 0.114])


def expression_activity(fit_params: FitParams) -> tuple[np.ndarray, np.ndarray]:
    """(rows, activity): the rows of ``fit_params`` with a fitted face and each one's expression
    activity: the L1 norm of its expression row plus the jaw joint's rotation in jawOpen units."""
    rows = np.nonzero(fit_params.has_face & np.isfinite(fit_params.expression).all(axis=1))[0]
    if len(rows) == 0:
        raise ValueError("no frame of the clip has a fitted face")
    activity = np.abs(fit_params.expression[rows].astype(np.float64)).sum(axis=1)
    jaw = np.nan_to_num(np.linalg.norm(fit_params.jaw[rows].astype(np.float64), axis=1))
    return rows, activity + jaw / JAW_OPEN_RAD


def choose_reference_frame(fit_params: FitParams) -> int:
    """The frame (index) with a fitted face and the least expression activity
    (:func:`expression_activity`; the open model opens the mouth with the jawOpen blendshape, FLAME
    with the jaw joint: 25 degrees = 1). Ties: earliest frame."""
    rows, activity = expression_activity(fit_params)
    return int(fit_params.frame_index[rows[int(np.argmin(activity))]])


def strip_triangles(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Triangles closing the hole between two contours of equal length that share their end points
    (quads between consecutive pairs, each split in two; degenerate ones draw nothing)."""
    tris = []
    for i in range(len(upper) - 1):
        tris.append((upper[i], lower[i], upper[i + 1]))
        tris.append((upper[i + 1], lower[i], lower[i + 1]))
    return np.array(tris, np.int64)


@dataclasses.dataclass(frozen=True)
class _Frames:
    """Crop-space geometry of a batch of frames (everything :meth:`_draw` needs)."""

    size: int  # side of the rendered crops, pixels
    points: np.ndarray  # B x P x 3 crop pixels: mesh vertices, then landmark copies
    teeth: np.ndarray  # B x T x 3 crop pixels
    background: np.ndarray  # B x 2 x 3 affine: reference image -> this frame's crop
    eyes: np.ndarray  # B x 2 (right, left) x 2 x 3 affines: crop -> reference image, eye openings
    eye_shade: np.ndarray  # B x 2 brightness factors of the eye openings
    eye_opening: np.ndarray  # B x 2 lid opening relative to the reference's (1: as open)
    head: np.ndarray | None  # B x V x 3 vertices in the head frame, metres (shading on, reference set)
    appearance: np.ndarray | None  # B x E' weight changes from the reference, in the appearance maps' order


class ReconstructionRenderer:
    """Renders fitted frames into their aligned crops, textured from a reference frame.

    model: the FaceModel the take was fitted with. fit_params, observations: the take's fit and
    observations (rows addressed by frame index). reference_frame: the frame whose pixels texture
    the face (default: :func:`choose_reference_frame`). crop_size: side of the aligned crop the
    observations' crop transforms were made for (256 in EmoCap). background: "reference" or "grey"
    (see the module docstring). teeth: draw teeth in the open mouth. shading: shade the deformed
    skin and draw its compression wrinkles (see the module docstring). appearance: the learned
    expression appearance maps (True: the shipped ones; None or False: none); maps that do not fit
    the model (FLAME) are not used.
    """

    def __init__(
        self,
        model: FaceModel,
        fit_params: FitParams,
        observations: ObservationArrays,
        reference_frame: int | None = None,
        crop_size: int = 256,
        *,
        background: str = "reference",
        teeth: bool = True,
        shading: bool = True,
        appearance: AppearanceMaps | None | bool = True,
    ) -> None:
        if background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, not {background!r}")
        self.model = model
        self.fit = fit_params
        self.observations = observations
        self.crop_size = int(crop_size)
        self.background = background
        self.teeth = teeth
        self.shading = shading
        if appearance is True:
            appearance = load_appearance_maps()
        fits = isinstance(appearance, AppearanceMaps) and appearance.fits(model.num_vertices, model.expression_names)
        self.appearance = appearance if fits else None
        if self.appearance is not None:
            self._appearance_columns = self.appearance.columns(model.expression_names)
        self._fit_rows = {int(f): r for r, f in enumerate(fit_params.frame_index)}
        self._obs_rows = {int(f): r for r, f in enumerate(observations.index)}
        self.reference_frame = choose_reference_frame(fit_params) if reference_frame is None else int(reference_frame)
        self._check_frame(self.reference_frame)
        self._reference_image: np.ndarray | None = None
        neutral = model.neutral_face(fit_params.identity)
        self._build_topology(neutral.landmarks[0].double().numpy())
        self._teeth = TeethRig.of_neutral(neutral)
        self._shader = None
        if shading:
            skin = self._faces[: self.layers["skin"][1]]
            landmarks = neutral.landmarks[0].double().numpy()
            self._shader = SurfaceShader(skin, neutral.vertices[0].double().numpy(), landmarks,
                                         landmarks[list(FACE_OVAL)])

    # ---------------------------------------------------------------------------------------------
    # Public API
    # ---------------------------------------------------------------------------------------------

    def set_reference(self, index: int, image: np.ndarray) -> None:
        """Use frame ``index`` (its H x W x 3 uint8 RGB video image) as the texture source."""
        index = int(index)
        self._check_frame(index)
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"reference image must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
        out, camera = self._model_output([index])
        vertices, landmarks = self._to_image(out, camera)
        if self._shader is not None:
            skin = _polygon_pixels(image, landmarks[0, list(FACE_OVAL), :2])
            self._shader.set_reference(self._head_vertices(out)[0], skin)
        self.reference_frame = index
        self._reference_image = np.ascontiguousarray(image)
        self._reference_landmarks = landmarks[0]
        self._uv = np.concatenate([vertices[0, :, :2], landmarks[0, :, :2]]).astype(np.float32)
        self._reference_expression = self.fit.expression[self._fit_rows[index]].astype(np.float32)
        self._colours(image)

    def render_crop(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index`` rendered into its aligned crop: (crop_size x crop_size x 3 uint8 RGB,
        crop_size x crop_size bool mask of the pixels the face covers)."""
        rgb, mask = self.render_crop_batch([index])
        return rgb[0], mask[0]

    def render_crop_batch(self, indices, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Several frames at once (one model evaluation): (N x S x S x 3 uint8, N x S x S bool).
        size: S, the side of the rendered crops in pixels (default ``crop_size``): the same aligned
        crop drawn with fewer or more pixels, for a recogniser that needs fewer (rendering cost
        grows with the pixels drawn)."""
        indices = [int(i) for i in np.atleast_1d(np.asarray(indices))]
        return self._render(indices, None, size)

    def render_expressions(self, index: int, expression: np.ndarray, jaw: np.ndarray | None = None,
                           size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index``'s face (its identity, head pose, gaze joints and camera) wearing other
        expressions, as when retargeting curves onto a carrier face: expression B x E weights
        (B x 3 jaw joint rotations in radians with them, FLAME's jaw; None: the frame's own jaw)
        -> (B x S x S x 3 uint8, B x S x S bool); size: S, as in :meth:`render_crop_batch`."""
        expression = np.atleast_2d(np.asarray(expression, np.float32))
        if expression.shape[1] != self.fit.expression.shape[1]:
            raise ValueError(f"expected {self.fit.expression.shape[1]} expression weights, got {expression.shape[1]}")
        overrides = {"expression": expression}
        if jaw is not None:
            overrides["jaw"] = np.asarray(jaw, np.float32).reshape(len(expression), 3)
        return self._render([int(index)] * len(expression), overrides, size)

    def _render(self, indices: list[int], overrides: dict[str, np.ndarray] | None,
                size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        for index in dict.fromkeys(indices):
            self._check_frame(index)
        if self._reference_image is None:
            raise RuntimeError("call set_reference(index, image) first (the reference frame's image)")
        size = self.crop_size if size is None else int(size)
        if size < 1:
            raise ValueError(f"render size must be a positive number of pixels, not {size}")
        rgb = np.empty((len(indices), size, size, 3), np.uint8)
        mask = np.empty((len(indices), size, size), bool)
        if indices:
            frames = self._geometry(indices, overrides, size)
            for k in range(len(indices)):
                rgb[k], mask[k] = self._draw(frames, k)
        return rgb, mask

    def fragments(self, index: int, expression: np.ndarray | None = None) -> tuple[Fragments, np.ndarray]:
        """The rasterised crop of frame ``index`` and the crop-space points it was rasterised from
        (the mesh vertices, then copies of the 478 landmarks that the eye and mouth fillings use,
        pushed back in depth), for inspection and other shaders. Triangle ids index
        ``fragments.faces``; :attr:`layers` says which ids are skin, eye or mouth fillings.
        expression: E weights the face wears instead of its own, as in :meth:`render_expressions`."""
        index = int(index)
        self._check_frame(index)
        overrides = None if expression is None else {"expression": np.asarray(expression, np.float32).reshape(1, -1)}
        frames = self._geometry([index], overrides)
        return self._rasterize(frames.points[0], frames.size), frames.points[0]

    # ---------------------------------------------------------------------------------------------
    # Set-up
    # ---------------------------------------------------------------------------------------------

    def _check_frame(self, index: int) -> None:
        row = self._fit_rows.get(index)
        if row is None or not self.fit.has_face[row]:
            raise ValueError(f"frame {index} has no fitted face")
        obs = self._obs_rows.get(index)
        if obs is None or not np.isfinite(self.observations.crop_transform[obs]).all():
            raise ValueError(f"frame {index} has no observed face (no crop transform)")

    def _build_topology(self, neutral_landmarks: np.ndarray) -> None:
        faces = self.model.faces.cpu().numpy().astype(np.int64)
        v = self.model.num_vertices
        # The iris triangles of the mesh (the open model closes each iris with a fan) would float in
        # front of the lids; the eyeball is drawn by the eye layer instead.
        iris_vertices = self._landmark_vertices(ids.RIGHT_IRIS + ids.LEFT_IRIS)
        surface = faces[~np.isin(faces, iris_vertices).any(axis=1)]
        right, left = (strip_triangles(np.array(u), np.array(lo)) for u, lo in (RIGHT_EYE, LEFT_EYE))
        mouth = strip_triangles(np.array(MOUTH[0]), np.array(MOUTH[1]))
        # wind the filling triangles to face the camera for the neutral face (model space: y up,
        # z toward the viewer), so back-face culling drops them where the lids or lips cross over.
        # A neutral mouth is closed: its inner lips touch and the strip between them has no
        # direction of its own, so the mouth is wound as it is once open.
        right, left = (_facing_viewer(t, neutral_landmarks) for t in (right, left))
        opened = neutral_landmarks.copy()
        opened[list(MOUTH[1][1:-1]), 1] -= MOUTH_WINDING_OPENING_M
        mouth = _facing_viewer(mouth, opened)
        self._faces = np.concatenate([surface, right + v, left + v, mouth + v])
        bounds = np.cumsum([0, len(surface), len(right), len(left), len(mouth)])
        #: triangle index ranges [start, stop) of the layers in :meth:`fragments`' triangle ids
        self.layers = {name: (int(bounds[k]), int(bounds[k + 1]))
                       for k, name in enumerate(("skin", "right_eye", "left_eye", "mouth"))}
        # depth offsets (in units of the face's depth extent) that keep the fillings behind the skin
        self._layer_offset = np.zeros(v + ids.NUM_LANDMARKS)
        self._layer_offset[v + np.unique(np.concatenate(RIGHT_EYE + LEFT_EYE + MOUTH))] = 3.0
        # position across the mouth opening: 0 on the upper inner lip, 1 on the lower (corners 0.5)
        self._cavity_t = np.zeros(v + ids.NUM_LANDMARKS)
        self._cavity_t[v + np.array(MOUTH[1])] = 1.0
        self._cavity_t[v + np.array([MOUTH[0][0], MOUTH[0][-1]])] = 0.5

    def _landmark_vertices(self, landmarks) -> np.ndarray:
        """Mesh vertices that the given landmarks sit on (weight > 0.5)."""
        faces = self.model.faces.cpu().numpy()
        tri = faces[self.model.landmark_faces.cpu().numpy()[list(landmarks)]]
        bary = self.model.landmark_barycentric.cpu().numpy()[list(landmarks)]
        return tri[np.arange(len(tri)), bary.argmax(axis=1)][bary.max(axis=1) > 0.5]

    def _colours(self, image: np.ndarray) -> None:
        """Mouth colours matched to the reference: everything scales with the median skin luminance
        inside the face outline (teeth at TEETH_OF_SKIN times it, about what real teeth measure in
        the fixtures); the teeth's tint is the sclera's (the brighter part of the reference's eye
        openings outside the irises, which carries the clip's white balance), softened, or a
        trace of the skin's when the reference's eyes are closed."""
        lm = self._reference_landmarks[:, :2]
        skin = _polygon_pixels(image, lm[list(FACE_OVAL)])
        level = float(np.median(skin @ LUMA)) if len(skin) else 150.0
        sclera = []
        self._eyeballs = []
        for (upper, lower), iris in ((RIGHT_EYE, ids.RIGHT_IRIS), (LEFT_EYE, ids.LEFT_IRIS)):
            outline = lm[list(upper) + list(lower[::-1])]
            centre = lm[iris[0]]
            radius = np.linalg.norm(lm[list(iris[1:])] - centre, axis=1).mean()
            pixels, coords = _polygon_pixels(image, outline, with_coords=True)
            distance = np.linalg.norm(coords - centre, axis=1)
            sclera.append(pixels[distance > radius * 1.1])
            self._eyeballs.append(_Eyeball.of(outline, centre, radius, pixels, distance, level))
        sclera = np.concatenate(sclera)
        if len(sclera) >= 12:
            luminance = sclera @ LUMA
            white = sclera[luminance >= np.percentile(luminance, 60)].mean(axis=0)
            tint = 1.0 + 0.7 * (white / max(float(white @ LUMA), 1.0) - 1.0)
        elif len(skin):
            mean = skin.mean(axis=0)
            tint = 1.0 + 0.3 * (mean / max(float(mean @ LUMA), 1.0) - 1.0)
        else:
            tint = np.ones(3)
        self._teeth_rgb = np.clip(tint * min(TEETH_OF_SKIN * level, 235.0), 0, 255)
        self._gum_rgb = np.clip(GUM_RGB * level, 0, 255)
        self._cavity_rgb = np.clip(CAVITY_RGB * level, 0, 255)
        self._tongue_rgb = np.clip(TONGUE_RGB * level, 0, 255)

    # ---------------------------------------------------------------------------------------------
    # Geometry
    # ---------------------------------------------------------------------------------------------

    def _model_output(self, indices, overrides: dict[str, np.ndarray] | None = None):
        """The model's output for the fit rows of ``indices``; ``overrides``: FaceParams fields
        (B x ... arrays) that replace the fit's."""
        rows = np.array([self._fit_rows[i] for i in indices])
        params = self.fit.to_face_params(rows)
        if overrides:
            params = dataclasses.replace(params, **{k: torch.as_tensor(v, dtype=torch.float32) for k, v in overrides.items()})
        with torch.no_grad(), single_threaded_torch():  # small tensors: threads cost more than they gain
            out = self.model(params)
        camera = torch.as_tensor(self.fit.camera[rows], dtype=torch.float32)
        return out, camera

    @staticmethod
    def _to_image(out, camera) -> tuple[np.ndarray, np.ndarray]:
        """Fitted vertices and landmarks in image pixels: B x V x 3, B x 478 x 3 (float64)."""
        with torch.no_grad():
            vertices = project(out.vertices, camera).double().numpy()
            landmarks = project(out.landmarks, camera).double().numpy()
        return vertices, landmarks

    @staticmethod
    def _head_vertices(out) -> np.ndarray:
        """B x V x 3 vertices in the head frame (the skull joint's rotation undone), metres."""
        rot = out.joint_rotations[:, SKULL_JOINT].double().numpy()
        return np.einsum("bji,bvj->bvi", rot, out.vertices.double().numpy())  # R^T v

    def _geometry(self, indices, overrides: dict[str, np.ndarray] | None = None, size: int | None = None) -> _Frames:
        """Crop-space geometry of ``indices`` for crops of side ``size`` pixels (default crop_size)."""
        size = self.crop_size if size is None else size
        out, camera = self._model_output(indices, overrides)
        vertices, landmarks = self._to_image(out, camera)
        with torch.no_grad():
            teeth = project(torch.as_tensor(self._teeth.place(out)), camera.double()).numpy()

        rows = [self._obs_rows[i] for i in indices]
        transforms = self.observations.crop_transform[rows].astype(np.float64) * (size / self.crop_size)  # B x 2 x 3
        points = np.concatenate([vertices, landmarks], axis=1)
        span = np.ptp(points[:, : self.model.num_vertices, 2], axis=1) + 1.0
        points[..., 2] += self._layer_offset[None] * span[:, None]
        points = _to_crop(points, transforms)
        teeth = _to_crop(teeth, transforms)
        background = np.zeros((len(indices), 2, 3))
        eyes = np.zeros((len(indices), 2, 2, 3))
        eye_shade = np.ones((len(indices), 2))
        eye_opening = np.ones((len(indices), 2))
        if self._reference_image is not None:
            crop_landmarks = points[:, self.model.num_vertices:, :2]
            outline = self._reference_landmarks[list(FACE_OVAL), :2]
            for k in range(len(indices)):
                background[k] = _affine_fit(outline, crop_landmarks[k, list(FACE_OVAL)])
            for e, (contours, iris) in enumerate(((RIGHT_EYE, ids.RIGHT_IRIS), (LEFT_EYE, ids.LEFT_IRIS))):
                eyes[:, e], eye_shade[:, e], eye_opening[:, e] = self._eye_mapping(crop_landmarks, contours, iris[0])
        head = None if self._shader is None or self._reference_image is None else self._head_vertices(out)
        appearance = None
        if self.appearance is not None and self._reference_image is not None:
            expression = (np.asarray(overrides["expression"], np.float32) if overrides and "expression" in overrides
                          else self.fit.expression[[self._fit_rows[i] for i in indices]])
            used, rows = self._appearance_columns
            appearance = np.zeros((len(indices), len(self.appearance.names)), np.float32)
            appearance[:, rows] = expression[:, used] - self._reference_expression[used]
        return _Frames(size, points, teeth, background, eyes, eye_shade, eye_opening, head, appearance)

    def _eye_mapping(self, crop_landmarks: np.ndarray, contours, iris: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For one eye of B frames: the 2 x 3 affines from crop pixels to reference-image pixels that
        texture its opening, a shade factor for nearly closed lids and the opening relative to the
        reference's (B each).

        The lids slide over the eyeball, so the opening is not textured by the lid contours (that
        would squeeze the reference's whole eye into a closing slit) but by the reference's eye
        region carried rigidly with the eye corners (a similarity) and shifted so that the
        reference iris lands on the fitted iris (gaze). Where the lids close to less than 90 % of
        the reference's opening (relative to the eye's width) the slit darkens smoothly, down to
        40 % brightness at 20 %, as real slits do in the shadow of lids and lashes."""
        (upper, lower), ref = contours, self._reference_landmarks[:, :2]
        outer, inner = upper[0], upper[-1]
        cur = crop_landmarks[..., 0] + 1j * crop_landmarks[..., 1]  # B x 478 complex
        rf = ref[:, 0] + 1j * ref[:, 1]
        scale = (rf[inner] - rf[outer]) / (cur[:, inner] - cur[:, outer])  # rotation and scale
        offset = rf[outer] - scale * cur[:, outer]
        offset += rf[iris] - (scale * cur[:, iris] + offset)  # gaze: irises coincide
        affine = np.stack([np.stack([scale.real, -scale.imag, offset.real], axis=1),
                           np.stack([scale.imag, scale.real, offset.imag], axis=1)], axis=1)

        def opening(z: np.ndarray) -> np.ndarray:
            gap = np.abs(z[..., list(upper[1:-1])] - z[..., list(lower[1:-1])]).mean(axis=-1)
            return gap / np.maximum(np.abs(z[..., inner] - z[..., outer]), 1e-9)

        ratio = opening(cur) / max(float(opening(rf)), 1e-3)
        t = np.clip((ratio - 0.2) / 0.7, 0.0, 1.0)
        shade = 0.4 + 0.6 * t * t * (3 - 2 * t)
        return affine, shade, ratio

    # ---------------------------------------------------------------------------------------------
    # Drawing
    # ---------------------------------------------------------------------------------------------

    def _rasterize(self, points: np.ndarray, size: int) -> Fragments:
        return rasterize(points, self._faces, (size, size), cull_backfaces=True)

    def _draw(self, frames: _Frames, k: int) -> tuple[np.ndarray, np.ndarray]:
        size = frames.size
        frags = self._rasterize(frames.points[k], size)
        mask = frags.mask
        if self.background == "reference":
            rgb = cv2.warpAffine(self._reference_image, frames.background[k], (size, size), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        else:
            rgb = np.full((size, size, 3), GREY, np.uint8)
        pixel = np.flatnonzero(mask)
        if len(pixel) == 0:
            return rgb, mask
        tri = frags.triangle.reshape(-1)[pixel]
        bary = frags.barycentric.reshape(-1, 3)[pixel]
        corners = self._faces[tri]
        uv = [bary[:, 0] * self._uv[corners[:, 0], c] + bary[:, 1] * self._uv[corners[:, 1], c]
              + bary[:, 2] * self._uv[corners[:, 2], c] for c in range(2)]
        shade = np.ones(len(pixel), np.float32)
        for e, name in enumerate(("right_eye", "left_eye")):
            lo, hi = self.layers[name]
            opening = np.nonzero((tri >= lo) & (tri < hi))[0]
            if len(opening):
                ys, xs = np.divmod(pixel[opening], size)
                m = frames.eyes[k, e]
                uv[0][opening] = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
                uv[1][opening] = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
                shade[opening] = frames.eye_shade[k, e]
        colour = sample_bilinear(self._reference_image, uv[0], uv[1]).astype(np.float32)
        for e, name in enumerate(("right_eye", "left_eye")):
            lo, hi = self.layers[name]
            opening = np.nonzero((tri >= lo) & (tri < hi))[0]
            if len(opening) and self._eyeballs[e] is not None:
                self._eyeballs[e].paint(colour, opening, uv[0][opening], uv[1][opening],
                                        widened=frames.eye_opening[k, e] > WIDENED_EYE)
        colour *= shade[:, None]
        if frames.head is not None or frames.appearance is not None:
            skin = np.nonzero(tri < self.layers["skin"][1])[0]
            factors = np.ones(len(skin), np.float32)
            if frames.head is not None:  # one frame at a time: a batch's surfaces at once only thrash caches
                factors = self._shader.factors(self._shader.frames(frames.head[k:k + 1]), 0, tri[skin], bary[skin])
            if frames.appearance is not None:
                factors = factors * self.appearance.factors(frames.appearance[k], self._faces[tri[skin]], bary[skin])
            colour[skin] = (self._shader.apply(colour[skin], factors) if self._shader is not None
                            else colour[skin] * factors[:, None])
        lo, hi = self.layers["mouth"]
        cavity = np.nonzero((tri >= lo) & (tri < hi))[0]
        if len(cavity):
            colour[cavity] = self._mouth_colour(frags, pixel[cavity], frames.teeth[k])
        self._soften_lid_margins(colour, pixel, tri, size)
        flat = rgb.reshape(-1, 3)
        alpha = alpha_mask(frags, FEATHER_PX * size / self.crop_size).reshape(-1)[pixel]
        edge = np.nonzero(alpha < 1.0)[0]
        a = alpha[edge, None]
        colour[edge] = a * colour[edge] + (1.0 - a) * flat[pixel[edge]]
        flat[pixel] = np.clip(colour + 0.5, 0, 255).astype(np.uint8)
        return rgb, mask

    def _soften_lid_margins(self, colour: np.ndarray, pixel: np.ndarray, tri: np.ndarray, size: int) -> None:
        """Anti-alias the lid margins: the eye fillings are a layer behind the skin, so their
        outline against it is a one-pixel staircase (drawn as a jagged dark line along a widened
        eye's lid). ``colour`` (N x 3, the mesh's N ``pixel`` flat indices, ``tri`` their
        triangles) is replaced, on the pixels either side of those outlines, by its Gaussian
        average over the mesh's pixels. The inner lip line is left sharp: softened as well, it
        blurred the teeth's edge, and EmoNet's agreement with the Wolfgang fixture's expressions
        carried onto one of its frames fell from 0.664 to 0.655 (0.670 with neither softened)."""
        feature = np.zeros(size * size, np.uint8)
        for name in ("right_eye", "left_eye"):
            lo, hi = self.layers[name]
            feature[pixel[(tri >= lo) & (tri < hi)]] = 1
        if not feature.any():
            return
        feature = feature.reshape(size, size)
        cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        band = np.nonzero((cv2.dilate(feature, cross) != cv2.erode(feature, cross)).reshape(-1)[pixel])[0]
        if len(band) == 0:
            return
        sigma = OUTLINE_SOFTNESS_PX * size / self.crop_size
        image = np.zeros((size * size, 4), np.float32)
        image[pixel, :3] = colour
        image[pixel, 3] = 1.0
        blurred = cv2.GaussianBlur(image.reshape(size, size, 4), (0, 0), sigma).reshape(-1, 4)[pixel[band]]
        colour[band] = blurred[:, :3] / np.maximum(blurred[:, 3:], 1e-6)

    def _mouth_colour(self, frags: Fragments, pixel: np.ndarray, teeth: np.ndarray) -> np.ndarray:
        """Colours of the mouth-cavity pixels (flat indices): a dark cavity that turns into the
        tongue's red toward the lower lip, and the teeth in front of it."""
        tri = frags.triangle.reshape(-1)[pixel]
        bary = frags.barycentric.reshape(-1, 3)[pixel]
        depth_down = (bary * self._cavity_t[self._faces[tri]]).sum(axis=1)  # 0 upper lip, 1 lower lip
        tongue = np.clip((depth_down - 0.45) / 0.55, 0.0, 1.0)[:, None] ** 1.5
        colour = ((1.0 - tongue) * self._cavity_rgb + tongue * self._tongue_rgb).astype(np.float32)
        if not self.teeth:
            return colour
        # rasterise the teeth only over the cavity's bounding box
        width = frags.size[1]
        ys, xs = np.divmod(pixel, width)
        y0, x0 = ys.min(), xs.min()
        window = (int(ys.max() - y0 + 1), int(xs.max() - x0 + 1))
        local = teeth - np.array([x0, y0, 0.0])
        tf = rasterize(local, self._teeth.faces, window)
        flat = (ys - y0) * window[1] + (xs - x0)
        ttri = tf.triangle.reshape(-1)[flat]
        hit = np.nonzero(ttri >= 0)[0]
        if len(hit) == 0:
            return colour
        tbary = tf.barycentric.reshape(-1, 3)[flat[hit]]
        corners = self._teeth.faces[ttri[hit]]

        def attribute(values: np.ndarray) -> np.ndarray:
            return (tbary * values[corners]).sum(axis=1)

        shade = attribute(self._teeth.shade)
        gum = attribute(self._teeth.gum)
        arc = np.abs(attribute(self._teeth.arc_mm))
        lower = self._teeth.is_lower[corners[:, 0]]
        edges = np.where(lower[:, None], LOWER_TOOTH_EDGES, UPPER_TOOTH_EDGES)
        gap = np.abs(arc[:, None] - edges).min(axis=1)  # mm to the nearest boundary between teeth
        shade = shade * (1.0 - 0.25 * np.clip(1.0 - gap / 0.7, 0.0, 1.0))
        colour[hit] = teeth_colours(shade, gum, self._teeth_rgb, self._gum_rgb, self._cavity_rgb)
        return colour


WIDENED_EYE = 1.1  # lids opened this much wider than the reference's show the eyeball across the lash lines


@dataclasses.dataclass(frozen=True)
class _Eyeball:
    """One eye of the reference image, to show its eyeball where a rendered opening reaches past
    the reference's own (a widened eye). opening: h x w float32 over a box around the eye whose
    top-left corner is the reference pixel ``origin`` (x, y): 1 inside the reference's lid opening,
    falling to 0 over a pixel or two outside it (a soft edge, so the fill does not draw a jagged
    outline, and the reference's own opening keeps all of its pixels), 0 at the box's border;
    within: the same without a band along the lids (the reference's lash lines, which would cross
    a widened eye); centre (x, y), radius: the iris circle in reference pixels; edge: the iris's
    soft rim (reference pixels); iris, sclera: RGB."""

    opening: np.ndarray
    within: np.ndarray
    origin: np.ndarray
    centre: np.ndarray
    radius: float
    edge: float
    iris: np.ndarray
    sclera: np.ndarray

    LASH_BAND = 0.07  # of the eye's width: the reference's lash lines inside its opening
    SOFT_EDGE = 0.03  # of the eye's width: the fill fades into the reference's pixels over this
    # The visible sclera of a narrow or hooded eye is in the shadow of its lids and lashes (a
    # narrow eye's whites measured 0.8 of its skin's brightness); the white a widened eye uncovers
    # is lit, and the sclera reflects more than skin does, so the fill is never darker than the
    # skin's median brightness.
    SCLERA_OF_SKIN = 1.0
    # the iris's shading along its radius (share of the radius -> brightness factor): the pupil,
    # then the iris, then the darker limbal ring at its rim, so that the fill is an eye, not a disc
    IRIS_PROFILE = ((0.0, 0.45), (0.35, 0.45), (0.55, 1.0), (0.8, 1.0), (1.0, 0.7))

    @classmethod
    def of(cls, outline: np.ndarray, centre: np.ndarray, radius: float, pixels: np.ndarray, distance: np.ndarray,
           skin_level: float) -> _Eyeball | None:
        """From the reference's opening ``outline`` (P x 2 pixels) and the K ``pixels`` (K x 3 RGB)
        inside it at ``distance`` (K) from the iris centre, and the skin's median luminance; None
        when the reference's eye shows too little of the iris or the sclera to take their colours
        (closed or nearly closed). The sclera is the brighter whites' colour (its 80th to 97th
        percentile of brightness: the lit white, not the lid's shadow or a catchlight)."""
        iris, white = pixels[distance < 0.8 * radius], pixels[distance > 1.1 * radius]
        if len(iris) < 6 or len(white) < 6:
            return None
        luminance = white @ LUMA
        low, high = np.percentile(luminance, [80, 97])
        sclera = white[(luminance >= low) & (luminance <= high)].mean(axis=0)
        floor = cls.SCLERA_OF_SKIN * skin_level
        sclera = np.clip(sclera * max(1.0, floor / max(float(sclera @ LUMA), 1.0)), 0, 255)
        width = float(np.ptp(outline[:, 0]))
        band = max(1, int(round(cls.LASH_BAND * width)))
        fade = max(1.0, cls.SOFT_EDGE * width)
        margin = int(np.ceil(fade)) + 2
        origin = np.floor(outline.min(axis=0)).astype(int) - margin
        size = np.ceil(outline.max(axis=0)).astype(int) - origin + margin + 1
        hard = np.zeros((size[1], size[0]), np.uint8)
        cv2.fillPoly(hard, [np.round(outline - origin).astype(np.int32)], 1)
        soft = [_fading_out_of(mask, fade) for mask in (hard, cv2.erode(hard, np.ones((2 * band + 1, 1), np.uint8)))]
        return cls(soft[0], soft[1], origin.astype(np.float64), np.asarray(centre, np.float64), float(radius),
                   0.5 * fade, iris.mean(axis=0), sclera)

    def paint(self, colour: np.ndarray, rows: np.ndarray, u: np.ndarray, v: np.ndarray, widened: bool) -> None:
        """Blend the eyeball into ``colour[rows]`` (N x 3 float) where the reference pixels (u, v)
        (N each) lie outside the reference's opening (``widened``: outside its part within the
        lash lines): the iris inside its circle (pupil, iris, limbal ring), the sclera outside."""
        keep = sample_channel(self.within if widened else self.opening, u - self.origin[0], v - self.origin[1])
        beyond = np.nonzero(keep < 0.999)[0]
        if len(beyond) == 0:
            return
        reach = np.hypot(u[beyond] - self.centre[0], v[beyond] - self.centre[1]) / self.radius
        stops, factors = zip(*self.IRIS_PROFILE)
        iris = self.iris * np.interp(reach, stops, factors)[:, None]
        iris_share = np.clip((1.0 - reach) * self.radius / (2 * self.edge) + 0.5, 0.0, 1.0)[:, None]
        eyeball = iris_share * iris + (1.0 - iris_share) * self.sclera
        k = keep[beyond, None]
        colour[rows[beyond]] = k * colour[rows[beyond]] + (1.0 - k) * eyeball


def _fading_out_of(mask: np.ndarray, width: float) -> np.ndarray:
    """H x W float32: 1 on the uint8 ``mask``, falling linearly to 0 at ``width`` pixels outside it."""
    outside = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(1.0 - outside / width, 0.0, 1.0).astype(np.float32)


def _polygon_pixels(image: np.ndarray, outline: np.ndarray, with_coords: bool = False):
    """RGB values (K x 3 float64) of the image pixels inside a polygon (and their x, y)."""
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1)
    ys, xs = np.nonzero(mask)
    pixels = image[ys, xs].astype(np.float64)
    return (pixels, np.stack([xs, ys], axis=1).astype(np.float64)) if with_coords else pixels


def _facing_viewer(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Triangles re-wound counter-clockwise in (x, y) of model space (normal toward +z)."""
    p = points[triangles]
    e1, e2 = p[:, 1, :2] - p[:, 0, :2], p[:, 2, :2] - p[:, 0, :2]
    cross = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    out = triangles.copy()
    out[cross < 0] = out[cross < 0][:, [0, 2, 1]]
    return out


def _to_crop(points: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """B x P x 3 image pixels -> crop pixels by B x 2 x 3 affines (depth scaled like x and y)."""
    out = np.empty_like(points)
    out[..., :2] = np.einsum("bij,bpj->bpi", transforms[:, :, :2], points[..., :2]) + transforms[:, None, :, 2]
    scale = np.sqrt(np.abs(np.linalg.det(transforms[:, :, :2])))
    out[..., 2] = points[..., 2] * scale[:, None]
    return out


def _affine_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2 x 3 affine mapping K x 2 ``source`` onto ``target`` by least squares."""
    design = np.concatenate([source, np.ones((len(source), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution.T
