"""A small vectorised software rasteriser (NumPy + one OpenCV remap), headless and GPU-free.

Conventions:

- Screen space: x right, y down, in pixels; the centre of pixel (row r, column c) is the point
  (x = c, y = r), the convention of OpenCV's ``warpAffine``/``remap`` (so a render sampled from a
  texture through an affine map agrees with ``cv2.warpAffine`` of that texture). z is depth,
  smaller = nearer the camera; the projection is orthographic (barycentrics are not
  perspective-corrected).
- Coverage: a pixel belongs to a triangle when its centre is inside it; centres exactly on an edge
  follow the top-left rule (Direct3D/OpenGL), so triangles sharing an edge never both draw a pixel
  and a mesh has no cracks and no double-drawn pixels.
- Front faces: the triangle's normal by the right-hand rule on its vertex order points toward the
  camera (negative z). Screen space (x right, y down, z away) is right-handed, so front faces run
  counter-clockwise as seen on screen. A mesh wound outward in a right-handed model space stays
  front-facing under any proper rotation into screen space (core.fit.camera's (x, -y, -z) flip is
  one).
- Z-buffer: per pixel the nearest triangle wins; ties go to the lowest triangle index.

How (all triangles at once, no per-pixel or per-triangle Python loop): for every (triangle, pixel
row) pair the x span allowed by the three edge functions is computed; the pixel centres of these
spans are the candidates, tested exactly against the edge functions (the span only saves work);
one ``np.minimum.at`` over a key packing (depth, triangle index) resolves visibility. Work grows
with the covered area, in chunks, so a few huge triangles cannot exhaust memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_TRIANGLE_BITS = 24  # triangle index in the low bits of the z-buffer key: up to 16.7 M triangles
_TRIANGLE_MASK = (1 << _TRIANGLE_BITS) - 1
_EMPTY = np.iinfo(np.int64).max
_TINY = float(np.nextafter(0.0, 1.0))  # smallest positive float64
_SLACK = 1e-6  # pixels
_CHUNK = 1 << 21  # candidate pixels per chunk (about 150 MB of temporaries at most)


@dataclass(frozen=True)
class Fragments:
    """What is visible in each pixel of an H x W render.

    triangle: H x W int32, index into ``faces`` of the visible triangle, -1 for background.
    barycentric: H x W x 3 float32, weights of the triangle's three vertices at the pixel centre
    (sum 1; 0 on background). depth: H x W float32, interpolated z (inf on background).
    faces: the F x 3 int64 triangles that were rasterised (renderers look vertices up with it).
    """

    triangle: np.ndarray
    barycentric: np.ndarray
    depth: np.ndarray
    faces: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """H x W bool, True where a triangle is visible."""
        return self.triangle >= 0

    @property
    def size(self) -> tuple[int, int]:
        return self.triangle.shape


def rasterize(
    vertices_px: np.ndarray, faces: np.ndarray, size: tuple[int, int], *, cull_backfaces: bool = False
) -> Fragments:
    """Rasterise triangles into an H x W z-buffer.

    vertices_px: V x 3 (x, y pixels; z depth, smaller = nearer). faces: F x 3 vertex indices.
    size: (H, W). cull_backfaces: drop triangles facing away from the camera (see module
    docstring). Degenerate (zero-area) and non-finite triangles draw nothing.
    """
    height, width = int(size[0]), int(size[1])
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) > _TRIANGLE_MASK:
        raise ValueError(f"at most {_TRIANGLE_MASK} triangles, got {len(faces)}")
    verts = np.asarray(vertices_px, dtype=np.float64)
    state = _Buffers(height, width)
    if len(faces) and height > 0 and width > 0:
        tri = verts[faces]  # F x 3 x 3
        edges, keep = _edge_setup(tri, cull_backfaces)
        y = np.where(keep[:, None], tri[..., 1], 0.0)
        y0 = np.ceil(y.min(axis=1)).clip(0, height).astype(np.int64)
        y1 = np.floor(y.max(axis=1)).clip(-1, height - 1).astype(np.int64)
        keep &= y1 >= y0
        ids = np.nonzero(keep)[0]
        rows = y1[ids] - y0[ids] + 1
        x = tri[ids, :, 0]
        columns = (np.floor(x.max(axis=1)).clip(-1, width - 1) - np.ceil(x.min(axis=1)).clip(0, width) + 1).clip(1)
        for part in _chunks(rows * columns.astype(np.int64)):  # bounding-box area: at most that many candidates
            _rasterize_rows(ids[part], rows[part], y0, tri, edges, width, state)
    return Fragments(
        state.triangle.reshape(height, width), np.stack(state.barycentric, axis=-1).reshape(height, width, 3),
        state.depth.reshape(height, width), faces,
    )


class _Buffers:
    def __init__(self, height: int, width: int) -> None:
        n = height * width
        self.keys = np.full(n, _EMPTY, np.int64)
        self.triangle = np.full(n, -1, np.int32)
        self.barycentric = [np.zeros(n, np.float32) for _ in range(3)]
        self.depth = np.full(n, np.inf, np.float32)


def _edge_setup(tri: np.ndarray, cull_backfaces: bool) -> tuple[np.ndarray, np.ndarray]:
    """Edge functions of every triangle, and which triangles can draw.

    For vertex i, E_i(x, y) = (x - ax) * slope + (y - ay) * rise is twice the signed area of the
    sub-triangle opposite i, signed so that the inside is E_i >= 0. Returns F x 3 x 4 arrays
    (ax, ay, slope, rise). Each edge is anchored at the lexicographically smaller of its end points,
    whatever triangle it belongs to, so the two triangles sharing an edge evaluate exactly negated
    values (coverage is watertight) and E is exactly 0 at both end points (pixel centres on a
    vertex follow the top-left rule exactly)."""
    corners = tri[:, :, :2]
    v0, v1, v2 = corners[:, 0], corners[:, 1], corners[:, 2]
    area2 = (v1[:, 0] - v0[:, 0]) * (v2[:, 1] - v0[:, 1]) - (v1[:, 1] - v0[:, 1]) * (v2[:, 0] - v0[:, 0])
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(tri).all(axis=(1, 2)) & (area2 != 0)
    if cull_backfaces:
        keep &= area2 < 0  # front faces: counter-clockwise on screen, negative area in (x, y-down)
    orientation = np.where(area2 < 0, -1.0, 1.0)
    edges = np.empty((len(tri), 3, 4))
    for i, (p, q) in enumerate(((v1, v2), (v2, v0), (v0, v1))):  # edge opposite vertex i runs p -> q
        swap = (p[:, 0] > q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] > q[:, 1]))
        a = np.where(swap[:, None], q, p)
        b = np.where(swap[:, None], p, q)
        sign = np.where(swap, -1.0, 1.0) * orientation
        # E = (q - p) x (pt - p) with pt = (x, y): dx (y - py) - dy (x - px), anchored at a
        edges[:, i, 0] = a[:, 0]
        edges[:, i, 1] = a[:, 1]
        edges[:, i, 2] = -sign * (b[:, 1] - a[:, 1])
        edges[:, i, 3] = sign * (b[:, 0] - a[:, 0])
    return edges, keep


def _chunks(counts: np.ndarray) -> list[slice]:
    """Split triangles into consecutive groups of at most _CHUNK candidates (one triangle alone
    may exceed it)."""
    if len(counts) == 0:
        return []
    ends = np.cumsum(counts)
    parts, start, base = [], 0, 0
    while start < len(counts):
        stop = max(int(np.searchsorted(ends, base + _CHUNK, side="right")), start + 1)
        parts.append(slice(start, stop))
        base = int(ends[stop - 1])
        start = stop
    return parts


def _rasterize_rows(ids, rows, y0, tri, edges, width, state: _Buffers) -> None:
    """Scan-convert triangles ``ids``: per (triangle, pixel row) pair the x span allowed by the
    three edges, then the exact edge test per pixel.
    Everything runs on 1-D arrays (NumPy is slow on short trailing axes)."""
    pair_tri = np.repeat(ids, rows)
    npairs = len(pair_tri)
    py = (y0[pair_tri] + np.arange(npairs) - np.repeat(np.cumsum(rows) - rows, rows)).astype(np.float64)
    xs = [tri[pair_tri, k, 0] for k in range(3)]
    lower = np.minimum(np.minimum(xs[0], xs[1]), xs[2])
    upper = np.maximum(np.maximum(xs[0], xs[1]), xs[2])
    nonempty = np.ones(npairs, bool)
    anchor, slope, row_value, threshold = [], [], [], []
    for i in range(3):
        ax, ay, a, b = (edges[pair_tri, i, k] for k in range(4))
        r = b * (py - ay)  # E_i(x, y) = (x - ax) a + r on this row
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = ax - r / a
        lower = np.where(a > 0, np.maximum(lower, bound), lower)
        upper = np.where(a < 0, np.minimum(upper, bound), upper)
        nonempty &= (a != 0) | (r >= 0)
        # top-left rule: pixels exactly on a top or left edge are inside (E >= 0), others need E > 0;
        # for float64, E > 0 is exactly E >= the smallest subnormal
        top_left = (a > 0) | ((a == 0) & (b > 0))
        anchor.append(ax)
        slope.append(a)
        row_value.append(r)
        threshold.append(np.where(top_left, 0.0, _TINY))
    # the span is widened by a hair against rounding in the division; the exact test decides
    x0 = np.ceil(lower - _SLACK).clip(0, width)
    x1 = np.floor(upper + _SLACK).clip(-1, width - 1)
    count = np.where(nonempty, x1 - x0 + 1, 0).clip(0).astype(np.int64)
    total = int(count.sum())
    if total == 0:
        return
    pair = np.repeat(np.arange(npairs), count)
    px = x0[pair] + (np.arange(total) - np.repeat(np.cumsum(count) - count, count))
    e = [(px - anchor[i][pair]) * slope[i][pair] + row_value[i][pair] for i in range(3)]
    inside = (e[0] >= threshold[0][pair]) & (e[1] >= threshold[1][pair]) & (e[2] >= threshold[2][pair])
    keep = np.nonzero(inside)[0]
    if len(keep) == 0:
        return
    pair, px = pair[keep], px[keep]
    e = [v[keep] for v in e]
    f = pair_tri[pair]
    total_e = e[0] + e[1] + e[2]
    bary = [v / total_e for v in e]
    z = [np.ascontiguousarray(tri[:, k, 2]) for k in range(3)]
    depth = (bary[0] * z[0][f] + bary[1] * z[1][f] + bary[2] * z[2][f]).astype(np.float32)
    pixel = py[pair].astype(np.int64) * width + px.astype(np.int64)
    key = (_ordered_bits(depth) << _TRIANGLE_BITS) | f
    np.minimum.at(state.keys, pixel, key)
    won = np.nonzero(state.keys[pixel] == key)[0]  # one winner per pixel: keys are unique per triangle
    pixel = pixel[won]
    state.triangle[pixel] = f[won]
    for k in range(3):
        state.barycentric[k][pixel] = bary[k][won]
    state.depth[pixel] = depth[won]


def _ordered_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> int64 in [0, 2^32) with the same order (total order; -0.0 < +0.0)."""
    bits = values.view(np.uint32).astype(np.int64)
    return np.where(bits >= 0x80000000, 0xFFFFFFFF - bits, bits | 0x80000000)


# ==================================================================================================
# Shading
# ==================================================================================================


def interpolate(fragments: Fragments, attributes: np.ndarray, background: float = 0.0) -> np.ndarray:
    """Per-vertex attributes (V x C, or V) interpolated to every pixel -> H x W x C float32 (H x W
    for 1-D attributes); ``background`` where no triangle is visible."""
    attributes = np.asarray(attributes, dtype=np.float32)
    flat = attributes.ndim == 1
    attr = attributes[:, None] if flat else attributes
    height, width = fragments.size
    out = np.full((height * width, attr.shape[1]), background, np.float32)
    pixel = np.flatnonzero(fragments.triangle >= 0)
    if len(pixel):
        tri = fragments.triangle.reshape(-1)[pixel]
        bary = fragments.barycentric.reshape(-1, 3)[pixel]
        corners = fragments.faces[tri]  # K x 3
        for c in range(attr.shape[1]):
            column = attr[:, c]
            out[pixel, c] = (bary[:, 0] * column[corners[:, 0]] + bary[:, 1] * column[corners[:, 1]]
                             + bary[:, 2] * column[corners[:, 2]])
    out = out.reshape(height, width, -1)
    return out[..., 0] if flat else out


def _background(background, height: int, width: int) -> np.ndarray:
    bg = np.asarray(background)
    if bg.ndim == 3:
        if bg.shape[:2] != (height, width):
            raise ValueError(f"background image is {bg.shape[:2]}, the render is {(height, width)}")
        return bg.astype(np.uint8, copy=False)
    out = np.empty((height, width, 3), np.uint8)
    out[:] = np.broadcast_to(bg.astype(np.float64), (3,)).clip(0, 255).round().astype(np.uint8)
    return out


def render_textured(
    fragments: Fragments, uv: np.ndarray, texture: np.ndarray, background=(0, 0, 0)
) -> np.ndarray:
    """Texture-mapped render -> H x W x 3 uint8.

    uv: V x 2 texture coordinates of the vertices, in texture pixels (x right, y down, pixel
    centres at integers, like the screen). texture: Ht x Wt x 3 uint8, sampled bilinearly
    (``cv2.remap``'s arithmetic, edges replicated). background: an RGB colour, a grey level, or an
    H x W x 3 uint8 image shown where no triangle is visible.
    """
    height, width = fragments.size
    out = _background(background, height, width).copy()
    pixel = np.flatnonzero(fragments.triangle >= 0)
    if len(pixel) == 0:
        return out
    uv = np.asarray(uv, np.float64)
    tri = fragments.triangle.reshape(-1)[pixel]
    bary = fragments.barycentric.reshape(-1, 3)[pixel]
    corners = fragments.faces[tri]
    coords = [bary[:, 0] * uv[corners[:, 0], c] + bary[:, 1] * uv[corners[:, 1], c]
              + bary[:, 2] * uv[corners[:, 2], c] for c in range(2)]
    out.reshape(-1, 3)[pixel] = sample_bilinear(texture, coords[0], coords[1])
    return out


def sample_bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of an H x W x C uint8 image at K points (pixel centres at integers, edges
    replicated) -> K x C uint8, with ``cv2.remap``'s fixed-point arithmetic (so renders agree with
    ``cv2.warpAffine``)."""
    n = len(x)
    side = int(np.ceil(np.sqrt(max(n, 1))))
    mx = np.full(side * side, -1.0, np.float32)
    my = np.full(side * side, -1.0, np.float32)
    mx[:n], my[:n] = x, y
    image = np.ascontiguousarray(image)
    sampled = cv2.remap(image, mx.reshape(side, side), my.reshape(side, side), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(side * side, -1)[:n]


def sample_channel(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of an H x W single-channel image (any float range) at K points (pixel
    centres at integers, edges replicated) -> K float32."""
    return sample_bilinear(np.ascontiguousarray(image, np.float32)[..., None], x, y)[:, 0]


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V x 3) of triangles wound by the right-hand rule."""
    v = np.asarray(vertices, np.float64)
    tri = v[faces]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 x area
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def render_shaded(
    fragments: Fragments,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    light_dir=(0.3, -0.4, -1.0),
    *,
    color=(200, 200, 200),
    ambient: float = 0.25,
    background=(0, 0, 0),
) -> np.ndarray:
    """Lambert-shaded render with smooth (per-vertex) normals -> H x W x 3 uint8, for looking at
    geometry.

    vertices: V x 3 screen-space positions (the ones rasterised; z in the same units as x, y so
    normals are right). faces: default ``fragments.faces``. light_dir: direction from the surface
    toward the light, in screen space (x right, y down, z away): the default lights from the
    camera, a little from above and the right. Back-facing normals are shaded as facing the viewer
    (two-sided lighting).
    """
    faces = fragments.faces if faces is None else np.asarray(faces, np.int64)
    if faces is not fragments.faces and not np.array_equal(faces, fragments.faces):
        raise ValueError("faces differ from the rasterised ones")
    height, width = fragments.size
    out = _background(background, height, width).copy()
    mask = fragments.triangle >= 0
    if not mask.any():
        return out
    normals = interpolate(fragments, vertex_normals(vertices, faces))[mask]
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    normals[normals[:, 2] > 0] *= -1  # two-sided: turn normals toward the camera (-z)
    light = np.asarray(light_dir, np.float64)
    light = light / np.linalg.norm(light)
    intensity = ambient + (1.0 - ambient) * np.clip(normals @ light, 0.0, 1.0)
    out[mask] = (intensity[:, None] * np.asarray(color, np.float64)).clip(0, 255).round().astype(np.uint8)
    return out


def alpha_mask(fragments: Fragments, feather_px: float = 0.0) -> np.ndarray:
    """H x W float32 coverage in [0, 1]: 1 on the mesh, 0 on background; with ``feather_px`` > 0
    it falls smoothly to 0 over about that many pixels inside the silhouette (for blending a render
    over a background without a hard seam; nothing outside the mesh becomes opaque)."""
    mask = (fragments.triangle >= 0).astype(np.float32)
    if feather_px <= 0 or not mask.any():
        return mask
    inside = cv2.distanceTransform(
        cv2.copyMakeBorder((mask > 0).astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0),
        cv2.DIST_L2, 3,
    )[1:-1, 1:-1]
    return np.clip(inside / (feather_px + 1.0), 0.0, 1.0).astype(np.float32) * mask
