"""A performer profile: the performer's own neutral face and 52 expression shapes on the open model.

Stored as one small npz (``PERFORMER.npz``, written atomically) holding:

- ``identity`` (S,): the open model's identity coefficients of the performer;
- ``neutral_offset`` (V x 3, metres, model space): what the identity basis does not reach of the
  performer's neutral face (template + shape_basis . identity + offset = their neutral);
- ``expression_basis`` (V x 3 x E, metres): the performer's versions of the 52 ARKit shapes
  (weights keep Apple's meaning: 1.0 is the shape's full extreme);
- ``neutral_scores`` (E,): the learned blendshape network's scores of their neutral face (the
  baseline of its evidence when fitting them);
- ``view_drift_fields`` (5 x V x 3, optional): how MediaPipe's landmarks of this performer drift
  with their head pose (core/performer/view_drift.py; its ranges of directions in ``meta``),
  taken out of the landmarks when fitting them;
- ``info``: what it was built from, the open model it was built on, and the quality report.

:func:`apply_profile` turns the open model into the performer's model; the fitter then keeps the
identity fixed at the profile's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import write_bytes_atomic
from core.errors import PerformerProfileError
from core.facemodel.types import FaceModelData
from core.performer.view_drift import ViewDrift

PROFILE_FORMAT = 1
PROFILE_SUFFIX = ".npz"


@dataclass(frozen=True)
class PerformerProfile:
    """See the module docstring. ``base_model_sha256``: the open model file's digest
    (core.facemodel.open_model.open_model_digest) the profile was learned on."""

    name: str
    identity: np.ndarray
    neutral_offset: np.ndarray
    expression_basis: np.ndarray
    neutral_scores: np.ndarray
    base_model_sha256: str
    info: dict = field(default_factory=dict)
    view_drift: ViewDrift | None = None

    def validate_for(self, base: FaceModelData) -> None:
        """PerformerProfileError when the arrays do not fit ``base`` (the open model)."""
        v, e, s = base.num_vertices, base.num_expression, base.num_shape
        expected = {"identity": (s,), "neutral_offset": (v, 3), "expression_basis": (v, 3, e), "neutral_scores": (e,)}
        for key, shape in expected.items():
            if getattr(self, key).shape != shape:
                raise PerformerProfileError(
                    f"performer profile '{self.name}' does not fit the open model ({key} is "
                    f"{getattr(self, key).shape}, the model needs {shape}): calibrate the performer again")
        for key in expected:
            if not np.isfinite(getattr(self, key)).all():
                raise PerformerProfileError(f"performer profile '{self.name}' is damaged ({key} has non-finite values)")
        drift = self.view_drift
        if drift is not None and (drift.fields.shape[1:] != (v, 3) or not np.isfinite(drift.fields).all()):
            raise PerformerProfileError(f"performer profile '{self.name}' has a view drift that does not fit the "
                                        f"open model ({drift.fields.shape}): calibrate the performer again")


def apply_profile(base: FaceModelData, profile: PerformerProfile) -> FaceModelData:
    """The open model ``base`` made the performer's: their neutral detail in the template and their
    expression shapes; identity, joints, skinning and landmarks stay the open model's."""
    profile.validate_for(base)
    info = dict(base.info) | {"performer": {"name": profile.name, "built": profile.info.get("built_from", {})}}
    return dataclasses.replace(
        base,
        name=f"{base.name}+{profile.name}",
        template=(base.template + profile.neutral_offset).astype(np.float32),
        expression_basis=profile.expression_basis.astype(np.float32),
        info=info,
    )


def save_profile(profile: PerformerProfile, path: str | Path) -> Path:
    """Write ``profile`` to ``path`` atomically (``.npz`` added when missing); returns the path."""
    path = Path(path)
    if path.suffix != PROFILE_SUFFIX:
        path = path.with_name(path.name + PROFILE_SUFFIX)
    meta = {"format": PROFILE_FORMAT, "name": profile.name, "base_model_sha256": profile.base_model_sha256,
            "info": profile.info}
    drift = {}
    if profile.view_drift is not None:
        meta["view_drift"] = {"azimuth_range_deg": list(profile.view_drift.azimuth_range_deg),
                              "elevation_range_deg": list(profile.view_drift.elevation_range_deg)}
        drift["view_drift_fields"] = profile.view_drift.fields.astype(np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, identity=profile.identity.astype(np.float32), neutral_offset=profile.neutral_offset.astype(np.float32),
        expression_basis=profile.expression_basis.astype(np.float32),
        neutral_scores=profile.neutral_scores.astype(np.float32), meta=np.array(json.dumps(meta, sort_keys=True)),
        **drift)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def load_profile(path: str | Path) -> PerformerProfile:
    """Read a profile written by :func:`save_profile`; PerformerProfileError with a one-line reason
    when it is missing or not a profile."""
    path = Path(path)
    if not path.is_file():
        raise PerformerProfileError(f"performer profile {path} not found (make one with 'emocap calibrate')")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = {key: npz[key].astype(np.float32) for key in
                      ("identity", "neutral_offset", "expression_basis", "neutral_scores")}
            drift = None
            if "view_drift_fields" in npz.files:  # profiles made before it have none
                ranges = meta["view_drift"]
                drift = ViewDrift(npz["view_drift_fields"].astype(np.float64),
                                  tuple(map(float, ranges["azimuth_range_deg"])),
                                  tuple(map(float, ranges["elevation_range_deg"])))
    except Exception as err:  # noqa: BLE001 - any damage to the file means the same to the user
        raise PerformerProfileError(
            f"{path} is not a readable performer profile ({type(err).__name__}: {err})") from err
    if meta.get("format") != PROFILE_FORMAT:
        raise PerformerProfileError(f"{path}: performer profile format {meta.get('format')} is not supported "
                                    f"(this EmoCap reads format {PROFILE_FORMAT})")
    return PerformerProfile(name=str(meta["name"]), base_model_sha256=str(meta["base_model_sha256"]),
                            info=dict(meta.get("info", {})), view_drift=drift, **arrays)


@functools.lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def profile_digest(path: str | Path) -> str:
    """The first 16 hex digits of the profile file's SHA-256 (stored with every fit made with it,
    so a recalibrated profile refits the take). PerformerProfileError when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise PerformerProfileError(f"performer profile {path} not found (make one with 'emocap calibrate')")
    stat = path.stat()
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
