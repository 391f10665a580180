"""Micro-expression refiner: fine detail on top of the fit, from optical flow (Sun and Zhang, 2026).

Run it with ``emocap analyze CLIP --out TAKE --refine [--onset FRAME]`` or
``PipelineConfig(refine=RefineConfig(...))``; it runs after fitting and stores
TAKE/microexpr/refined.npz (resumable window by window; a complete result with the same settings
is kept). Read the result with::

    from core.microexpr import reconstruct
    refinement = take.read_refinement()           # Refinement | None (core.take.Take)
    refinement.motion_energy                      # N, pixels: the timeline curve (NaN: not refined)
    refinement.onset                              # N, onset frame each frame is measured from
    refined_fit = refinement.refined_fit(fit)     # FitParams with refined expression, rotation, camera
    refinement.vertex_offsets(row)                # V x 3 metres, head frame
    reconstruct(model, fit, refinement, rows)     # B x V x 3 refined vertices (model space) ...
    reconstruct(model, fit, None, rows)           # ... and unrefined, for the app's toggle

Project refined vertices with ``refinement.camera`` and unrefined ones with ``fit.camera``
(core.fit.camera.project). The summary (``emocap info``) gains ``micro_energy``.

Modules, one job each: config (RefineConfig, LossWeights), flow (DIS optical flow on a face
canvas, mesh-guided tracks), correspondence (mesh regions, pixels of projected triangles,
barycentric flow samples, aggregation to vertices and regions), motion (motion energy, onset),
features (network inputs), dem (dynamic-encoded module with its neural ODE), dgmd (graph network
with motion attention), losses, geometry, refiner (the networks' per-window self-supervised
training), stage (windows, assembly), results (the stored result and its record). Pretraining over many clips:
training/microexpr/pretrain.py.
"""

from core.microexpr.config import LossWeights, RefineConfig
from core.microexpr.results import Refinement, reconstruct

__all__ = ["LossWeights", "RefineConfig", "Refinement", "reconstruct"]
