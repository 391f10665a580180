"""ARKit curves for a FLAME take (``--curves arkit``): the export request of a FLAME fit turned into
the open model's: 52 ARKit weights per frame through the FLAME <-> ARKit map solved from the take's
own FLAME file (core.facemodel.flame_arkit; cached in the user's cache folder, never shipped), on the
open model's mesh with the identity that best matches the performer's FLAME neutral face. Every
format then writes it as it writes an open-model take: the Live Link CSV gets its 52 columns,
FBX / glTF / USD get ARKit shape keys; a retarget map applies after this.

The jaw's rotation becomes jawOpen / jawLeft / jawRight / jawForward (the open model's jaw is a
curve), so the exported jaw joint stays at rest; head, neck and eye rotations are carried over
(turned into the open model's frame)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.errors import ExportError, FlameArkitError
from core.export.base import ExportRequest

CURVES = ("model", "arkit")


def check_curves(curves: str | None) -> str:
    curves = curves or "model"
    if curves not in CURVES:
        raise ExportError(f"--curves must be one of {', '.join(CURVES)}, not '{curves}'")
    return curves


def arkit_request(req: ExportRequest, *, cache_dir=None) -> ExportRequest:
    """The request with ARKit curves in place of FLAME's (an open-model take is returned as it is:
    its curves are ARKit's already). FlameArkitError when the take has no FLAME fit; FaceModelError
    when its FLAME file cannot be read."""
    if req.model == "open":
        return req
    settings = req.model_settings
    if req.model != "flame" or not settings.get("flame_path"):
        raise FlameArkitError(f"{req.take_dir} was fitted with the {req.model} model: ARKit curves are mapped "
                              "from a FLAME fit whose FLAME file is known")
    from core.facemodel.flame import load_flame
    from core.facemodel.flame_arkit import load_or_solve, open_identity_for
    from core.facemodel.loading import ModelChoice
    from core.facemodel.open_model import ARKIT_NAMES, load_open_model

    choice = ModelChoice.from_settings(settings)
    flame_data = load_flame(choice.flame_path, num_shape=choice.num_shape, num_expression=choice.num_expression)
    amap = load_or_solve(choice.flame_path, num_expression=choice.num_expression, flame_data=flame_data,
                         cache_dir=cache_dir)
    fit = req.fit
    if fit.expression.shape[1] != amap.num_expression:
        raise FlameArkitError(f"{req.take_dir} has {fit.expression.shape[1]} FLAME expression curves but its model "
                              f"file gives {amap.num_expression}; was it analysed with another FLAME file?")
    weights = amap.to_arkit(fit.expression, fit.jaw)
    identity = open_identity_for(flame_data, load_open_model(), fit.identity)
    eyes = np.concatenate([amap.rotate(fit.eyes[:, :3]), amap.rotate(fit.eyes[:, 3:])], axis=1)
    arkit_fit = replace(
        fit, identity=identity.astype(np.float32), expression=weights.astype(np.float32),
        jaw=np.where(np.isnan(fit.jaw), np.nan, 0.0).astype(np.float32),
        rotation=amap.rotate(fit.rotation).astype(np.float32), neck=amap.rotate(fit.neck).astype(np.float32),
        eyes=eyes.astype(np.float32))
    return replace(req, fit=arkit_fit, model="open", model_settings=ModelChoice().settings(),
                   expression_names=list(ARKIT_NAMES))
