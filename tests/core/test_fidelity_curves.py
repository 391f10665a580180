"""benchmarks/fidelity/curves.py: the curve-scale measure of bench_fidelity.py."""

import numpy as np

from benchmarks.fidelity.curves import curve_scale
from core.facemodel.open_model import ARKIT_NAMES


def test_curve_scale_is_the_fitted_weight_per_unit_of_the_network_score():
    rng = np.random.default_rng(0)
    network = rng.uniform(0.0, 0.8, (40, len(ARKIT_NAMES)))
    fitted = 0.5 * network
    left, right = ARKIT_NAMES.index("browDownLeft"), ARKIT_NAMES.index("browDownRight")
    fitted[:, [left, right]] = 1.5 * network[:, [left, right]]
    fitted[network < 0.1] = 0.9  # where the network sees nothing the fit is not judged
    scale = curve_scale(fitted, network)
    assert abs(scale["browDown"][0] - 1.5) < 1e-9
    assert abs(scale["mouthSmile"][0] - 0.5) < 1e-9
    assert scale["browDown"][1] == int((network[:, [left, right]] >= 0.1).sum())
    assert "noseSneer" not in scale  # the network never reports it


def test_curve_scale_leaves_out_curves_the_network_never_raised():
    network = np.zeros((5, len(ARKIT_NAMES)))
    network[:, ARKIT_NAMES.index("jawOpen")] = 0.4
    fitted = np.full_like(network, 0.2)
    assert curve_scale(fitted, network) == {"jawOpen": (0.5, 5)}
