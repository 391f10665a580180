"""Compression wrinkles run the way the muscle of their zone folds the skin: between the brows
upright whatever way the mesh's principal directions turn, on the forehead across its main
compression only."""

import numpy as np

from core.render.wrinkles import WRINKLE_PERIOD_M, ZONE_AXES, wrinkle_shade


def sheared_compression(amount: float, axis: int, shear: float, count: int) -> np.ndarray:
    """K x 3 stretch tensors (C_xx, C_xy, C_yy) compressed by ``amount`` along x (axis 0) or y
    (axis 1), with a shear that turns the principal directions by about 20 degrees."""
    squeezed = (1.0 - amount) ** 2
    c = np.tile([1.0, shear, 1.0], (count, 1))
    c[:, 0 if axis == 0 else 2] = squeezed
    return c


def grid(count: int = 60, size_m: float = 0.02) -> np.ndarray:
    xs, ys = np.meshgrid(np.linspace(0.0, size_m, count), np.linspace(0.0, size_m, count))
    return np.stack([xs.ravel(), ys.ravel()], axis=1), count


def zone_column(index: int, count: int) -> np.ndarray:
    zone = np.zeros((count, len(ZONE_AXES)))
    zone[:, index] = 1.0
    return zone


def test_a_raised_brow_folds_the_forehead_across_its_main_compression_only():
    position, side = grid()
    c = np.tile([(1.0 - 0.12) ** 2, 0.0, (1.0 - 0.2) ** 2], (len(position), 1))  # squeezed most up and down
    shade = wrinkle_shade(c, position, zone_column(0, len(position))).reshape(side, side)
    assert shade.min() < 0.8  # lines are drawn
    along_rows = np.ptp(shade, axis=1).max()  # the same darkness along each row: level lines, no grid
    across_rows = np.ptp(shade, axis=0).min()
    print(f"forehead: variation along a row {along_rows:.3f}, down a column {across_rows:.3f}")
    assert along_rows < 1e-6
    assert across_rows > 0.2
    # the lines repeat every WRINKLE_PERIOD_M up the forehead
    column = shade[:, 0]
    darkest = np.flatnonzero((column[1:-1] < column[:-2]) & (column[1:-1] <= column[2:])) + 1
    spacing = np.diff(position.reshape(side, side, 2)[darkest, 0, 1])
    assert np.allclose(spacing, WRINKLE_PERIOD_M, atol=0.02 / (side - 1) * 1.01)
    # the crow's feet fold across both directions: a grid
    corner = wrinkle_shade(c, position, zone_column(3, len(position))).reshape(side, side)
    assert np.ptp(corner, axis=1).max() > 0.1


def test_knit_brows_draw_upright_lines_between_them_and_no_level_ones_even_where_the_mesh_shears():
    position, side = grid()
    knit = sheared_compression(0.2, axis=0, shear=0.15, count=len(position))
    shade = wrinkle_shade(knit, position, zone_column(1, len(position))).reshape(side, side)
    assert np.ptp(shade, axis=0).max() < 1e-6  # constant down each column: upright lines
    assert np.ptp(shade, axis=1).min() > 0.2
    # the glabella draws nothing for skin compressed up and down only
    lowered = sheared_compression(0.2, axis=1, shear=0.0, count=len(position))
    assert wrinkle_shade(lowered, position, zone_column(1, len(position))).min() == 1.0


def test_skin_outside_every_zone_or_not_compressed_draws_nothing():
    position, _ = grid(10)
    c = sheared_compression(0.2, axis=1, shear=0.15, count=len(position))
    assert (wrinkle_shade(c, position, np.zeros((len(position), len(ZONE_AXES)))) == 1.0).all()
    relaxed = np.tile([1.0, 0.0, 1.0], (len(position), 1))
    assert (wrinkle_shade(relaxed, position, np.ones((len(position), len(ZONE_AXES)))) == 1.0).all()
