"""Blinks and lip contacts: found in the observations, reached by the fitted curves.

detect (closed eyes and lips per frame, from the landmarks), enforce (floors under eyeBlink and
mouthClose that reach them, measured on the model's mesh), stage (the analysis stage that stores
the floors in the take; ``Take.read_fit`` applies them).
"""

from core.closures.detect import ClosureConfig, ClosureEvidence, detect_closures
from core.closures.enforce import apply_floor, closure_floor

__all__ = ["ClosureConfig", "ClosureEvidence", "apply_floor", "closure_floor", "detect_closures"]
