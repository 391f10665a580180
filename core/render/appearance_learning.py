"""Learning :mod:`core.render.appearance` maps from photographs (pure maths, no I/O).

Used by ``scripts/build_appearance_maps.py``. Each photo is warped into the texture space (the
template seen from the front, :func:`texture_space`) by the mesh of its 478 landmarks; the change
of log brightness from a person's neutral photo to their expression photo
(:func:`log_brightness_change`) is then regressed, pixel by pixel, on the expression's curves
(:func:`learn_maps`): change ~= sum_k w_k map_k. Each shape's map may only be non-zero near where
the shape moves the surface (:func:`shape_support`): a knit brow darkens the glabella, not the
chin it often comes with. Every sample is also used mirrored, so the maps keep the shapes' mirror
pairs exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.render.rasterizer import Fragments, interpolate, rasterize, sample_channel

MM = 1000.0


@dataclass(frozen=True)
class TextureSpace:
    """The template seen from the front, ``mm_per_px`` millimetres a pixel. vertex_uv: V x 2
    pixel positions of the vertices (x grows toward the performer's left, as in a photo of them;
    y down; the midline on the grid's vertical centre line, so a left-right flip of a map is its
    mirror image). fragments: the template rasterised into the grid. mask: H x W, the face."""

    vertex_uv: np.ndarray
    fragments: Fragments
    mm_per_px: float

    @property
    def mask(self) -> np.ndarray:
        return self.fragments.mask

    @property
    def size(self) -> tuple[int, int]:
        return self.fragments.size


def texture_space(template: np.ndarray, faces: np.ndarray, mm_per_px: float = 1.0, margin_mm: float = 4.0) -> TextureSpace:
    """The texture space of a symmetric template (V x 3 metres, x to the performer's left, y up,
    midline at x = 0) and its skin triangles (F x 3)."""
    x, y = template[:, 0] * MM, template[:, 1] * MM
    width = 2 * int(np.ceil((np.abs(x).max() + margin_mm) / mm_per_px))
    top = y.max() + margin_mm
    height = int(np.ceil((top - y.min() + margin_mm) / mm_per_px))
    uv = np.stack([x / mm_per_px + width / 2 - 0.5, (top - y) / mm_per_px], axis=1)
    points = np.concatenate([uv, np.zeros((len(uv), 1))], axis=1)
    return TextureSpace(uv.astype(np.float32), rasterize(points, faces, (height, width)), float(mm_per_px))


def warp_to_texture(grey: np.ndarray, landmarks: np.ndarray, space: TextureSpace) -> np.ndarray:
    """A photo's H x W float32 brightness (its pixels, any range) carried into ``space`` by its
    V x 2 landmarks (image pixels, one per template vertex) -> Ht x Wt float32, NaN off the face."""
    coords = interpolate(space.fragments, np.asarray(landmarks, np.float32)[:, :2])
    mask = space.mask
    out = np.full(space.size, np.nan, np.float32)
    out[mask] = sample_channel(grey, coords[mask][:, 0], coords[mask][:, 1])
    return out


def log_brightness_change(expression: np.ndarray, neutral: np.ndarray, floor: float = 8.0) -> np.ndarray:
    """The change of log brightness from a neutral photo's texture to an expression photo's (both
    Ht x Wt, 0..255, NaN off the face), less its median over the face (the two photos' overall
    exposure); 0 off the face. ``floor`` keeps the logarithm of near-black pixels calm."""
    change = np.log(expression + floor) - np.log(neutral + floor)
    face = np.isfinite(change)
    change = change - np.median(change[face])
    return np.where(face, change, 0.0).astype(np.float32)


def shape_support(space: TextureSpace, expression_basis: np.ndarray, radius_mm: float,
                  level: float = 0.1, min_motion_m: float = 5e-4) -> np.ndarray:
    """E x Ht x Wt bool: the pixels within ``radius_mm`` of the vertices each shape (V x 3 x E
    metres) moves by at least ``level`` of its largest motion; nothing for a shape that moves no
    vertex ``min_motion_m`` (metres)."""
    size = np.linalg.norm(expression_basis, axis=1)  # V x E
    height, width = space.size
    support = np.zeros((size.shape[1], height, width), bool)
    radius_px = radius_mm / space.mm_per_px
    for k in range(size.shape[1]):
        largest = size[:, k].max()
        if largest < min_motion_m:
            continue
        seeds = np.ones((height, width), np.uint8)
        for u, v in np.round(space.vertex_uv[size[:, k] >= level * largest]).astype(int):
            if 0 <= v < height and 0 <= u < width:
                seeds[v, u] = 0
        support[k] = cv2.distanceTransform(seeds, cv2.DIST_L2, 5) <= radius_px
    return support & space.mask


def near_outlines(space: TextureSpace, outlines, margin_mm: float) -> np.ndarray:
    """Ht x Wt bool: inside or within ``margin_mm`` of the closed outlines (each a sequence of
    vertex ids), e.g. the lips and the eye openings, whose brightness in a warped photo is mostly
    the features sliding against a mesh too coarse for them (teeth, sclera, lashes)."""
    height, width = space.size
    seeds = np.ones((height, width), np.uint8)
    for outline in outlines:
        polygon = np.round(space.vertex_uv[list(outline)]).astype(np.int32)
        cv2.fillPoly(seeds, [polygon], 0)
    return cv2.distanceTransform(seeds, cv2.DIST_L2, 5) <= margin_mm / space.mm_per_px


def edge_fade(mask: np.ndarray, width_px: float) -> np.ndarray:
    """Ht x Wt float32: 0 at the outline of ``mask`` (and off it), rising smoothly to 1 at
    ``width_px`` inside, so a map never draws the edge of where it may act."""
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    t = np.clip(inside / max(width_px, 1e-6), 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def learn_maps(changes: np.ndarray, weights: np.ndarray, support: np.ndarray, mirror_shapes: np.ndarray,
               ridge: float) -> np.ndarray:
    """Maps (E x Ht x Wt float32) that explain the samples' brightness changes (N x Ht x Wt) from
    their weights (N x E in [0, 1]): per pixel, ridge regression (``ridge`` on every map value)
    over the shapes whose ``support`` (E x Ht x Wt) covers it. Every sample is used mirrored too
    (flipped left to right with each shape's weight given to ``mirror_shapes``' partner, E), and
    each pair's maps are made exact mirror images."""
    changes = np.concatenate([changes, changes[:, :, ::-1]]).astype(np.float64)
    weights = np.concatenate([weights, weights[:, mirror_shapes]]).astype(np.float64)
    e, height, width = support.shape
    gram = weights.T @ weights  # E x E
    right = weights.T @ changes.reshape(len(changes), -1)  # E x P
    allowed = support.reshape(e, -1)
    maps = np.zeros((e, height * width))
    # pixels covered by the same shapes share one system
    patterns, group = np.unique(allowed.T, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        shapes = np.nonzero(pattern)[0]
        if len(shapes) == 0:
            continue
        pixels = np.nonzero(group.reshape(-1) == g)[0]
        system = gram[np.ix_(shapes, shapes)] + ridge * np.eye(len(shapes))
        maps[np.ix_(shapes, pixels)] = np.linalg.solve(system, right[np.ix_(shapes, pixels)])
    maps = maps.reshape(e, height, width)
    return (0.5 * (maps + maps[mirror_shapes][:, :, ::-1])).astype(np.float32)
