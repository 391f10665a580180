"""Non-destructive edits of a take's fitted curves: the app's intensity sliders.

An :class:`Edits` value is an ordered stack of :class:`EditLayer` settings, each over the whole clip
or a frame range. The fitted parameters on disk never change; :func:`apply_edits` makes an edited
copy whenever one is needed (the viewport, the timelines, every export). Edits are stored as
``TAKE/edits.json`` (:func:`save_edits`, :func:`load_edits`).

What each slider does to a frame's parameters (expression ``e``, E components):

- per emotion ``k`` (scale ``s_k``): the part of the expression that carries that emotion is
  ``a_k = p_k max(0, (e - o) . d_k)`` along the emotion's unit direction ``d_k`` in parameter
  space, where ``p_k`` is how much the frame shows ``k`` (the emotion-from-parameters model's
  probability for the unedited frame) and ``d_k`` comes from the take itself (the mean expression
  of its frames weighted by the recogniser's probability of ``k``, minus the neutral face ``o``:
  the same mean for neutral when the take has neutral frames, else the model's rest expression);
  ``e += (s_k - 1) a_k d_k``. Weighting by ``p_k`` keeps each slider to the frames that show its
  emotion: two emotions' mean expressions share components (a fitted smile in sad frames), and
  without it muting sad would also take the smile out of happy frames.
- global intensity, upper face, lower face, jaw, eyes: every component is scaled by
  ``intensity * (lower + (upper - lower) * u_j)``, where ``u_j`` is the share of component ``j``'s
  vertex motion above the nose tip, times ``jaw`` for jaw components and ``eyes`` for eye
  components (by ARKit name for the open model). The jaw joint's rotation scales with intensity,
  lower face and jaw; the eyes' gaze with eyes only.
- smoothing: zero-phase Gaussian smoothing (sigma in frames) of expression, jaw, eyes, head and
  neck rotation, inside runs of frames with a face (never across a gap).

The open model's ARKit weights are clamped to [0, 1] afterwards (what ARKit rigs accept).

Region locks: a layer made while face regions were locked (``locked``: brows, eyes, mouth, jaw;
core.curve_edits) leaves the curves of those regions bit-identical (and the jaw joint's rotation
with ``jaw``, the eyes' gaze with ``eyes``).

Order: the slider layers in their order, then the curve editor's keys (``Edits.curves``, absolute
values per curve and frame, core.curve_edits), then the clamp. ``edits.json`` format 2 holds both
(``layers`` and ``curves``); format 1 files (sliders only, before the curve editor) still load.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from core.atomic import write_json_atomic
from core.curve_edits import CurveEdits, check_regions, locked_mask
from core.emotion.timeline import smooth
from core.emotion.types import EMOTIONS
from core.errors import EditError, TakeError
from core.fit.params import PER_FRAME, FitParams

if TYPE_CHECKING:
    from core.emotion.stored import EmotionTimelines

log = logging.getLogger(__name__)

EDITS_FILE = "edits.json"
EDITS_FORMAT = 2
READABLE_FORMATS = (1, 2)  # 1: slider layers only (before the curve editor)
SLIDER_RANGE = (0.0, 2.0)  # every scale slider: 0 % to 200 %
SCALES = ("intensity", "upper_face", "lower_face", "jaw", "eyes")
MAX_SMOOTHING = 10.0  # frames
NOSE_TIP = 1  # MediaPipe face-mesh landmark index of the nose tip
MIN_EMOTION_WEIGHT = 2.0  # sum of a class's probabilities over the clip needed for a direction
# ... or this share of the frames, for takes shorter than a few frames: a photograph read as 90 %
# happy has a happy direction (its expression from the model's rest)
MIN_EMOTION_SHARE = 0.5


@dataclass(frozen=True)
class EditLayer:
    """One setting of the sliders over frames ``start:stop`` of the take (None: the whole clip).
    Scales are factors (1.0 = unchanged, 0 to 2); smoothing is a Gaussian sigma in frames;
    emotions: (emotion name, scale) pairs. locked: face regions this layer leaves untouched."""

    intensity: float = 1.0
    upper_face: float = 1.0
    lower_face: float = 1.0
    jaw: float = 1.0
    eyes: float = 1.0
    smoothing: float = 0.0
    emotions: tuple[tuple[str, float], ...] = ()
    start: int | None = None
    stop: int | None = None
    locked: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "locked", check_regions(self.locked))
        for name in SCALES:
            value = getattr(self, name)
            if not SLIDER_RANGE[0] <= value <= SLIDER_RANGE[1]:
                raise EditError(f"{name.replace('_', ' ')} {value:g} is outside 0 to {SLIDER_RANGE[1]:g}")
        if not 0 <= self.smoothing <= MAX_SMOOTHING:
            raise EditError(f"smoothing {self.smoothing:g} is outside 0 to {MAX_SMOOTHING:g} frames")
        for name, value in self.emotions:
            if name not in EMOTIONS or name == "neutral":
                raise EditError(f"unknown emotion '{name}': use one of {', '.join(EMOTIONS[1:])}")
            if not SLIDER_RANGE[0] <= value <= SLIDER_RANGE[1]:
                raise EditError(f"{name} intensity {value:g} is outside 0 to {SLIDER_RANGE[1]:g}")
        if self.start is not None and self.stop is not None and self.stop <= self.start:
            raise EditError(f"edit range {self.start}:{self.stop} is empty")

    @property
    def range(self) -> tuple[int | None, int | None]:
        return self.start, self.stop

    def emotion_scale(self, name: str) -> float:
        return dict(self.emotions).get(name, 1.0)

    def with_emotion(self, name: str, scale: float) -> EditLayer:
        scales = dict(self.emotions) | {name: scale}
        return dataclasses.replace(self, emotions=tuple(sorted((k, v) for k, v in scales.items() if v != 1.0)))

    @property
    def is_identity(self) -> bool:
        return (self.intensity == self.upper_face == self.lower_face == self.jaw == self.eyes == 1.0
                and self.smoothing == 0 and all(v == 1.0 for _, v in self.emotions))

    def slider_values(self) -> dict[str, float]:
        """{scale name or emotion: factor, "smoothing": frames}, what the app's sliders show."""
        return {name: getattr(self, name) for name in SCALES} | {"smoothing": self.smoothing} | dict(self.emotions)

    @classmethod
    def from_slider_values(cls, values: dict[str, float], start: int | None = None, stop: int | None = None,
                           locked=()) -> EditLayer:
        """The layer over ``start:stop`` that :meth:`slider_values` describes (emotions: the other keys)."""
        fixed = (*SCALES, "smoothing")
        emotions = tuple(sorted((k, float(v)) for k, v in values.items() if k not in fixed and v != 1.0))
        return cls(**{k: values[k] for k in fixed}, emotions=emotions, start=start, stop=stop, locked=tuple(locked))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"emotions": dict(self.emotions), "locked": list(self.locked)}

    @classmethod
    def from_dict(cls, data: dict) -> EditLayer:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["emotions"] = tuple(sorted((str(k), float(v)) for k, v in dict(known.get("emotions", {})).items()))
        known["locked"] = tuple(str(r) for r in known.get("locked", ()))
        return cls(**known)


@dataclass(frozen=True)
class Edits:
    """The ordered stack of slider layers of a take (applied first to last), then the curve
    editor's keys (core.curve_edits)."""

    layers: tuple[EditLayer, ...] = ()
    curves: CurveEdits = CurveEdits()

    @property
    def is_identity(self) -> bool:
        return all(layer.is_identity for layer in self.layers) and self.curves.is_identity

    def with_curves(self, curves: CurveEdits) -> Edits:
        return dataclasses.replace(self, curves=curves)

    def layer_for(self, start: int | None = None, stop: int | None = None) -> EditLayer:
        """The layer over exactly this range, or an unchanged one."""
        for layer in self.layers:
            if layer.range == (start, stop):
                return layer
        return EditLayer(start=start, stop=stop)

    def with_layer(self, layer: EditLayer) -> Edits:
        """Replace the layer over the same range (keeping its place) or add it on top."""
        layers = list(self.layers)
        for i, old in enumerate(layers):
            if old.range == layer.range:
                layers[i] = layer
                break
        else:
            layers.append(layer)
        return Edits(tuple(lay for lay in layers if not lay.is_identity), self.curves)

    def to_dict(self) -> dict:
        return {"format": EDITS_FORMAT, "layers": [layer.to_dict() for layer in self.layers],
                "curves": self.curves.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Edits:
        if data.get("format") not in READABLE_FORMATS:
            raise EditError(f"edits format {data.get('format')} is not one of {', '.join(map(str, READABLE_FORMATS))}")
        return cls(tuple(EditLayer.from_dict(d) for d in data.get("layers", [])),
                   CurveEdits.from_dict(data.get("curves", {})))


@dataclass(frozen=True)
class EditBasis:
    """What the sliders need to know about the face model's expression space (E components).

    upper_share: E, share of each component's vertex motion above the nose tip (0 to 1).
    jaw_components, eye_components: E bool. bounds: clamp range of the weights, or None.
    emotion_origin: E, the take's neutral expression; emotion_directions: {emotion: E unit vector}
    for the emotions the take shows (none without emotion timelines); emotion_presence: N x 8
    (EMOTIONS order), how much each of the take's frames shows each emotion, 0 to 1 (None: every
    frame fully). names: E curve names (ARKit names for the open model), for the curve editor's
    keys and the region locks."""

    upper_share: np.ndarray
    jaw_components: np.ndarray
    eye_components: np.ndarray
    bounds: tuple[float, float] | None
    emotion_origin: np.ndarray
    emotion_directions: dict[str, np.ndarray] = field(default_factory=dict)
    emotion_presence: np.ndarray | None = None
    names: tuple[str, ...] = ()

    @property
    def num_expression(self) -> int:
        return len(self.upper_share)


def model_basis(model) -> EditBasis:
    """The region and group weights of a FaceModel's expression components (no emotion directions)."""
    from core.facemodel.open_model import ARKIT_NAMES

    names = list(model.expression_names)
    with torch.no_grad():
        neutral = model(model.zero_params(1))
    y = neutral.rest_vertices[0, :, 1].cpu().numpy()
    nose_y = float(neutral.landmarks[0, NOSE_TIP, 1])
    upper = 1.0 / (1.0 + np.exp(-(y - nose_y) / 0.005))  # soft 5 mm edge, in metres
    motion = (model.expression_basis.cpu().numpy().reshape(len(y), 3, -1) ** 2).sum(axis=1)  # V x E
    share = (upper[:, None] * motion).sum(0) / np.maximum(motion.sum(0), 1e-20)
    is_arkit = names == list(ARKIT_NAMES)
    return EditBasis(
        upper_share=share.astype(np.float32),
        jaw_components=np.array([n.startswith("jaw") for n in names]) if is_arkit else np.zeros(len(names), bool),
        eye_components=np.array([n.startswith("eye") for n in names]) if is_arkit else np.zeros(len(names), bool),
        bounds=(0.0, 1.0) if is_arkit else None,
        emotion_origin=np.zeros(len(names), np.float32),
        names=tuple(names),
    )


def with_emotion_directions(basis: EditBasis, expression: np.ndarray, probabilities: np.ndarray,
                            presence: np.ndarray | None = None) -> EditBasis:
    """Add the emotion directions of a take: expression N x E of its frames, probabilities N x 8
    from the recogniser (NaN rows are ignored), presence N x 8 per-frame weights of the sliders
    (default: the probabilities; NaN counts as 0)."""
    ok = np.isfinite(expression).all(1) & np.isfinite(probabilities).all(1)
    e, p = expression[ok].astype(np.float64), probabilities[ok].astype(np.float64)
    if not len(e):
        return basis
    needed = min(MIN_EMOTION_WEIGHT, MIN_EMOTION_SHARE * len(e))
    neutral = p[:, 0]
    # Without neutral frames the clip's mean is no neutral face (in a clip that mostly smiles it
    # is a smile, and muting happy would stop there); the model's rest expression is.
    origin = (neutral @ e) / neutral.sum() if neutral.sum() >= needed else np.zeros(e.shape[1])
    directions = {}
    for k, name in enumerate(EMOTIONS[1:], start=1):
        weight = p[:, k]
        if weight.sum() < needed:
            continue
        d = (weight @ e) / weight.sum() - origin
        norm = np.linalg.norm(d)
        if norm > 1e-6:
            directions[name] = (d / norm).astype(np.float32)
    presence = np.nan_to_num(np.asarray(probabilities if presence is None else presence, np.float32), nan=0.0)
    return dataclasses.replace(basis, emotion_origin=origin.astype(np.float32), emotion_directions=directions,
                               emotion_presence=presence)


def apply_edits(fit: FitParams, edits: Edits, basis: EditBasis) -> FitParams:
    """A copy of ``fit`` (N rows) with the edit layers applied in order (see the module docstring).
    Rows are positions in the take (row i = the take's i-th frame); ranges are clipped to N."""
    if edits.is_identity:
        return fit
    arrays = {k: getattr(fit, k).copy() for k in PER_FRAME}
    n = len(fit)
    if basis.emotion_presence is not None and len(basis.emotion_presence) != n:
        raise EditError(f"the edit basis describes {len(basis.emotion_presence)} frames, the fit {n}")
    for layer in edits.layers:
        start = 0 if layer.start is None else max(0, layer.start)
        stop = n if layer.stop is None else min(n, layer.stop)
        if stop > start:
            _apply_layer(arrays, slice(start, stop), layer, basis)
    if not edits.curves.is_identity:
        edits.curves.apply(arrays["expression"], arrays["has_face"], list(basis.names), basis.bounds)
    return FitParams(identity=fit.identity, **arrays)


def _apply_layer(arrays: dict[str, np.ndarray], rows: slice, layer: EditLayer, basis: EditBasis) -> None:
    if layer.locked:  # what the layer may not change, put back bit for bit afterwards
        held = (locked_mask(basis.names, layer.locked) if len(basis.names) == basis.num_expression
                else np.zeros(basis.num_expression, bool))
        kept = {"expression": (np.s_[rows, held], arrays["expression"][rows][:, held].copy())}
        for region, key in (("jaw", "jaw"), ("eyes", "eyes")):
            if region in layer.locked:
                kept[key] = (rows, arrays[key][rows].copy())
        _apply_layer(arrays, rows, dataclasses.replace(layer, locked=()), basis)
        for key, (where, values) in kept.items():
            arrays[key][where] = values
        return
    e = arrays["expression"][rows].astype(np.float64)
    for name, scale in layer.emotions:
        if scale == 1.0:
            continue
        direction = basis.emotion_directions.get(name)
        if direction is None:
            raise EditError(f"this take shows no {name} to scale (run the emotion analysis, or it is absent)")
        amount = np.maximum(0.0, (e - basis.emotion_origin) @ direction)
        if basis.emotion_presence is not None:
            amount = amount * basis.emotion_presence[rows, EMOTIONS.index(name)]
        e = e + (scale - 1.0) * amount[:, None] * direction[None]
    factor = layer.intensity * (layer.lower_face + (layer.upper_face - layer.lower_face) * basis.upper_share)
    factor = np.where(basis.jaw_components, factor * layer.jaw, factor)
    factor = np.where(basis.eye_components, factor * layer.eyes, factor)
    e = e * factor
    if basis.bounds is not None:
        e = np.clip(e, *basis.bounds)
    arrays["expression"][rows] = e
    arrays["jaw"][rows] *= layer.intensity * layer.lower_face * layer.jaw
    arrays["eyes"][rows] *= layer.eyes
    if layer.smoothing > 0:
        faces = arrays["has_face"][rows]
        for key in ("expression", "jaw", "eyes", "rotation", "neck"):
            arrays[key][rows] = smooth(arrays[key][rows], faces, layer.smoothing)
        if basis.bounds is not None:
            arrays["expression"][rows] = np.clip(arrays["expression"][rows], *basis.bounds)


def load_edits(take_root: Path) -> Edits:
    """The edits stored in a take folder (none when there is no edits file)."""
    path = Path(take_root) / EDITS_FILE
    if not path.is_file():
        return Edits()
    try:
        return Edits.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as err:  # damaged: any shape of JSON
        raise TakeError(f"{path} is unreadable: {err}") from err


def save_edits(take_root: Path, edits: Edits) -> None:
    """Store the edits atomically in the take folder."""
    path = Path(take_root) / EDITS_FILE
    try:
        write_json_atomic(path, edits.to_dict())
    except OSError as err:
        raise TakeError(f"cannot write {path}: {err.strerror or err}") from err


def take_basis(take, model, *, fit: FitParams | None = None, emotion: EmotionTimelines | None = None) -> EditBasis:
    """The edit basis of a take: the model's weights plus the emotion directions of its frames
    when the emotion analysis has run (primary recogniser's probabilities), each frame weighted
    by the emotion-from-parameters model's reading of its unedited expression when the take has
    that model (else by the recogniser's probabilities). ``fit`` and ``emotion``: the take's
    fit and emotion timelines when the caller has read them already (None: read here)."""
    from core.emotion.from_params import predict_from_params

    basis = model_basis(model)
    fit = take.read_fit() if fit is None else fit
    emotion = take.read_emotion() if emotion is None else emotion
    if fit is None or emotion is None:
        return basis
    probabilities = emotion.main.probabilities
    if len(probabilities) != len(fit):
        log.warning("emotion timelines of %s do not match its fit; per-emotion sliders are off", take.root)
        return basis
    presence = None
    net = emotion.param_model(fit.expression.shape[1])
    if net is not None:
        presence = predict_from_params(net, np.nan_to_num(fit.expression)).probabilities
        presence[~fit.has_face] = 0.0
    return with_emotion_directions(basis, fit.expression, probabilities, presence)
