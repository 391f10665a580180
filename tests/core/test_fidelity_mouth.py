"""benchmarks/fidelity/mouth.py: the open-mouth measure of bench_fidelity.py."""

import numpy as np

from benchmarks.fidelity.mouth import BRIGHT_OF_SKIN, MIN_PIXELS, bright_share, polygon_mask


def test_bright_share_counts_the_opening_s_pixels_brighter_than_the_skin_fraction():
    image = np.full((40, 40, 3), 100, np.uint8)  # skin at luminance 100
    image[10:20, 10:30] = 20  # a dark mouth cavity...
    image[10:13, 10:30] = 140  # ...with a band of teeth along its top
    opening = polygon_mask(image.shape[:2], np.array([[10, 10], [29, 10], [29, 19], [10, 19]]))
    skin = ~opening
    assert opening.sum() == 200
    assert bright_share(image, opening, skin) == 0.3
    image[13:20, 10:30] = int(BRIGHT_OF_SKIN * 100) - 1  # just under the threshold: still not teeth
    assert bright_share(image, opening, skin) == 0.3


def test_a_closed_mouth_has_no_share():
    image = np.full((40, 40, 3), 100, np.uint8)
    region = np.zeros((40, 40), bool)
    region[0, : MIN_PIXELS - 1] = True
    assert bright_share(image, region, ~region) is None
