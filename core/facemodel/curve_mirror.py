"""The mirror partner of each expression curve: ``...Left`` <-> ``...Right``, itself for a symmetric
curve (jawOpen, browInnerUp, ...), as the open model's mirror pairs are built."""

from __future__ import annotations

import numpy as np

from core.facemodel.open_model_calibration import mirror_name


def curve_mirror(names) -> np.ndarray:
    """E int64: for each of the E curve ``names``, the index of its mirror partner among them."""
    names = list(names)
    return np.array([names.index(mirror_name(n)) for n in names], np.int64)
