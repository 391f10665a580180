"""The carrier face: the curves that leave EmoCap, judged on a neutral face.

The emotion stage judges the reconstruction twice. Its consistency render draws each frame's fit
as the camera saw it (core/render/reconstruction.py), which on a still is textured with the still
itself, so it shows the expression even when the curves do not. The carrier render puts only the
frame's expression curves (and FLAME's jaw joint, which opens FLAME's mouth) on one fixed neutral
face, its own head pose, camera and pixels unchanged: what a recogniser reads there is what the
curves carry onto a rig, as in benchmarks/bench_fidelity.py.

Which neutral face (:func:`carrier_choice`), in order:

1. a neutral photo the user names (``--carrier IMAGE``; another person's face shows best whether
   the curves, not the performer's features, carry the emotion), analysed once with the take's
   face model into ``TAKE/carrier/<digest>/``, a take of its own;
2. the neutral photo the take's identity was fitted on (``--neutral IMAGE``), analysed the same way;
3. for a clip of several frames, the take's own reference frame (a quiet, uncovered face that the
   fast recogniser reads as least expressive, :func:`core.render.reference.choose_uncovered_reference_frame`);
4. none: a single image with no neutral named has no neutral face to carry its curves.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.digest import file_sha256
from core.errors import EmoCapError
from core.fit.params import FitParams
from core.render.reconstruction import ReconstructionRenderer

log = logging.getLogger(__name__)

CARRIER_DIR = "carrier"
PHOTO, FRAME, NONE = "photo", "frame", "none"
NO_NEUTRAL = ("a single image has no neutral face to carry its curves: name a neutral image (--neutral) "
              "or a carrier face (--carrier)")


class CarrierError(EmoCapError):
    """A carrier face that cannot be used (no such file, no face in it)."""


@dataclass(frozen=True)
class CarrierChoice:
    """Where the carrier face comes from, as a take records it. kind: "photo", "frame" or "none";
    path and sha256: the photo's; frame: the take's frame (kind "frame"); reason: why there is
    none (kind "none")."""

    kind: str
    path: str | None = None
    sha256: str | None = None
    frame: int = -1
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> CarrierChoice | None:
        return None if not data else cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def describe(self) -> str:
        """What a summary says: the photo's path, "frame 31 of the take", or why there is none."""
        if self.kind == PHOTO:
            return str(self.path)
        return f"frame {self.frame} of the take" if self.kind == FRAME else self.reason


def carrier_photo(path: str | Path) -> Path:
    """The absolute path of a carrier photo; CarrierError when it is not a readable file."""
    photo = Path(path).expanduser().resolve()
    if not photo.is_file():
        raise CarrierError(f"carrier face {photo} is not a readable file")
    return photo


def neutral_photo(neutral: dict | None) -> str | None:
    """The neutral photo a stored fit's neutral names (core.take.records.FitRecord.neutral), or
    None for a neutral frame or the automatic choice."""
    return ((neutral or {}).get("image") or {}).get("path")


def carrier_choice(carrier: str | None, neutral: str | None, frames: int) -> CarrierChoice:
    """The carrier a take uses (see the module docstring). carrier: the user's photo path or None;
    neutral: the neutral photo the take's identity was fitted on (:func:`neutral_photo`) or None;
    frames: the number of observed frames. A photo that cannot be read raises CarrierError."""
    for path in (carrier, neutral):
        if path is not None:
            photo = carrier_photo(path)
            return CarrierChoice(PHOTO, str(photo), file_sha256(photo))
    if frames > 1:
        return CarrierChoice(FRAME)  # the frame is chosen with the renders' reference frame
    return CarrierChoice(NONE, reason=NO_NEUTRAL)


class CarrierFace:
    """One neutral face that wears other frames' curves. renderer: a ReconstructionRenderer of the
    carrier's fit with its reference image set; frame: the carrier's frame in that fit."""

    def __init__(self, renderer: ReconstructionRenderer, frame: int, choice: CarrierChoice) -> None:
        self.renderer = renderer
        self.frame = int(frame)
        self.choice = choice

    def render(self, fit: FitParams, rows, size: int | None = None) -> np.ndarray:
        """B x S x S x 3 uint8: the expression curves and jaw of ``fit``'s ``rows`` (B) on the carrier
        (S: ``size``, default the renderer's crop size)."""
        rows = np.asarray(rows, np.int64)
        if self.renderer.fit.expression.shape[1] != fit.expression.shape[1]:
            raise CarrierError("the carrier face was fitted with another face model than the take")
        return self.renderer.render_expressions(self.frame, np.nan_to_num(fit.expression[rows]),
                                                np.nan_to_num(fit.jaw[rows]), size)[0]


def photo_carrier(choice: CarrierChoice, take_root: Path, model, model_choice, device: str) -> CarrierFace:
    """The carrier of a photo (``choice.kind == "photo"``), analysed with ``model_choice`` into
    ``take_root/carrier/<sha256 prefix>/`` (resumed when already there); CarrierError when no
    face is found in it."""
    from core.pipeline import Pipeline, PipelineConfig
    from core.take import Take
    from core.video import open_source

    folder = Path(take_root) / CARRIER_DIR / choice.sha256[:16]
    config = PipelineConfig(device=device, model=model_choice, neutral=choice.path)
    Pipeline(config).run(choice.path, folder)
    take = Take.open(folder)
    fit = take.read_fit(complete=True)
    if fit is None or not fit.has_face[0]:
        raise CarrierError(f"no face found in the carrier face {choice.path}")
    observations = take.load_observations()
    renderer = ReconstructionRenderer(model, fit, observations, reference_frame=0)
    with open_source(choice.path) as source:
        renderer.set_reference(0, source.read(0))
    log.info("carrier face: %s", choice.path)
    return CarrierFace(renderer, 0, choice)
