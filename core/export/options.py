"""The export options every format honours: a retarget map and key reduction, checked and attached
to an :class:`core.export.base.ExportRequest` (see core.export.retarget, core.export.keyreduce)."""

from __future__ import annotations

import math
from dataclasses import replace

from core.errors import ExportError, KeyReductionError
from core.export.base import ExportRequest
from core.export.keyreduce import KEYED_FORMATS, KeyReduction


def reduction_for(fmt: str, reduce) -> KeyReduction:
    """``reduce`` (a KeyReduction or a tolerance) checked for format ``fmt``."""
    if not isinstance(reduce, KeyReduction):
        try:
            reduce = KeyReduction(float(reduce))
        except (TypeError, ValueError):
            raise KeyReductionError(f"--reduce needs a number (the largest error in curve units), not '{reduce}'") from None
    for name in ("tolerance", "degrees", "metres", "pixels"):
        value = getattr(reduce, name)
        if not (math.isfinite(value) and value > 0):
            raise KeyReductionError(f"key reduction {name} must be a positive number, not {value!r}")
    if fmt not in KEYED_FORMATS:
        raise KeyReductionError(f"{fmt} has no keys to reduce (it stores every frame); --reduce works with "
                                f"{', '.join(KEYED_FORMATS)}")
    return reduce


SHAPES = ("performer", "generic")
PERFORMER_KEYS = ("performer", "performer_sha256")


def with_options(req: ExportRequest, retarget=None, reduce=None, curves=None, shapes=None) -> ExportRequest:
    """The request with the retarget map applied to its expression curves and the key reduction
    attached. ``retarget``: None, a path or a preset's name, or a RetargetMap. ``curves``: None or
    "model" (the fit's own curves), "arkit" (a FLAME take's curves mapped onto the 52 ARKit
    shapes of the open model, core.export.arkit_from_flame; before the retarget map). ``shapes``:
    for a take fitted with a performer profile, None or "performer" (the mesh and shape keys are
    the performer's) or "generic" (the open model's, for an animator who retargets the curves to
    their own rig)."""
    from core.export.arkit_from_flame import arkit_request, check_curves

    if shapes not in (None, *SHAPES):
        raise ExportError(f"unknown shapes '{shapes}': use {' or '.join(SHAPES)}")
    if shapes == "generic":
        req = replace(req, model_settings={k: v for k, v in req.model_settings.items() if k not in PERFORMER_KEYS})
    if check_curves(curves) == "arkit":
        req = arkit_request(req)
    if retarget is not None:
        from core.export.retarget import RetargetMap, load_map

        rmap = retarget if isinstance(retarget, RetargetMap) else load_map(retarget)
        bound = rmap.bind(req.expression_names)
        req = replace(req, fit=replace(req.fit, expression=bound.curves(req.fit.expression)),
                      expression_names=list(bound.targets), retarget=bound)
    if reduce is not None:
        req = replace(req, reduction=reduction_for(req.format, reduce))
    return req
