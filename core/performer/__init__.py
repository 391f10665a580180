"""Per-performer calibration: a performer's own neutral face and expression shapes, learned once
from a calibration clip or any takes of the person, then used by every later analysis."""
