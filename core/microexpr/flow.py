"""Dense optical flow on a face canvas, and the tracks of material points on the face it gives.

The flow (OpenCV's DIS, with a light variational refinement so that one-pixel motions survive) is
computed from a reference frame to every frame of a window, warm-started from the previous frame's
flow. It runs on a *canvas*: the face region of the window cropped and scaled so that the
inter-ocular distance spans ``flow_iod_px`` pixels, so its cost does not depend on the video's
resolution. Points are tracked in the Lagrangian sense: a point at p in the reference frame is at
p + flow(p) in frame t, so the motion of the same point between any two frames of the window
(for example from the onset) is a difference of tracked positions, without chaining flows.

Mesh-guided flow: large motion (head turns, speech, a smile forming) defeats a long-range flow on
the low-texture skin of cheeks and jaw. So each frame is first warped back into the reference
frame's geometry along the fitted mesh (:class:`MeshWarp`: every canvas pixel the mesh covers in
the reference follows its triangle, the rest the mesh's affine motion), and the flow measures only
what the fit does not explain, a motion of a few pixels at most; a point's position in frame t is
the mesh warp evaluated where that residual flow moved it.

Units: image pixels (x right, y down) unless a name says canvas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)

PHOTOMETRIC_SIGMA = 8.0  # grey levels: the intensity change at which a track's confidence is 1/e
CONSISTENCY_PX = 0.5  # canvas pixels: the forward-backward disagreement at which it is 1/e


@dataclass(frozen=True)
class FlowCanvas:
    """A similarity from image pixels to canvas pixels: canvas = scale * image + offset.
    size: (height, width) of the canvas."""

    scale: float
    offset: np.ndarray
    size: tuple[int, int]

    def to_canvas(self, points: np.ndarray) -> np.ndarray:
        """... x 2 image pixels -> canvas pixels."""
        return points * self.scale + self.offset

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return (points - self.offset) / self.scale

    def warp(self, gray: np.ndarray) -> np.ndarray:
        """The canvas view of an image (H x W uint8 grey)."""
        matrix = np.array([[self.scale, 0, self.offset[0]], [0, self.scale, self.offset[1]]], np.float64)
        if self.scale < 0.7:  # anti-alias before shrinking
            sigma = 0.5 / self.scale
            gray = cv2.GaussianBlur(gray, (0, 0), sigma)
        return cv2.warpAffine(gray, matrix, (self.size[1], self.size[0]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)


def face_canvas(landmarks: np.ndarray, iod_px: float, flow_iod_px: float, max_side: int, margin: float = 0.15) -> FlowCanvas:
    """The canvas around all ``landmarks`` (N x L x 2 image pixels of the window's frames) with a
    ``margin`` (fraction of the box size) on every side, scaled so that the inter-ocular distance
    ``iod_px`` (image pixels) becomes ``flow_iod_px`` canvas pixels, and the longer side at most
    ``max_side``."""
    points = landmarks.reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    low, high = points.min(axis=0), points.max(axis=0)
    pad = margin * (high - low)
    low, high = low - pad, high + pad
    scale = flow_iod_px / max(iod_px, 1.0)
    scale = min(scale, max_side / max(float((high - low).max()), 1.0))
    size = np.ceil((high - low) * scale).astype(int) + 1
    return FlowCanvas(float(scale), -low * scale, (int(size[1]), int(size[0])))


class DenseFlow:
    """DIS optical flow tuned for small facial motion (medium preset, variational refinement with
    a low smoothness weight), warm-started from the previous result."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._dis.setVariationalRefinementAlpha(2.0)
        self._dis.setVariationalRefinementIterations(10)

    def __call__(self, reference: np.ndarray, frame: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
        """reference, frame: H x W uint8 -> H x W x 2 float32 flow (frame position - reference
        position, canvas pixels). A given ``initial`` flow of the same size seeds DIS's search."""
        flow = np.zeros((*reference.shape, 2), np.float32) if initial is None else initial.copy()
        return self._dis.calc(reference, frame, flow)


def bilinear(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """field: H x W x C, points: N x 2 (x, y pixel centres) -> N x C, clamped at the border."""
    h, w = field.shape[:2]
    x = np.clip(points[:, 0], 0, w - 1.000001)
    y = np.clip(points[:, 1], 0, h - 1.000001)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    f = field.reshape(h, w, -1)
    top = f[y0, x0] * (1 - fx) + f[y0, x0 + 1] * fx
    bottom = f[y0 + 1, x0] * (1 - fx) + f[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


@dataclass(frozen=True)
class MeshWarp:
    """Where each pixel of the reference frame's canvas lies in another frame, by the fitted mesh.

    rows, cols: P canvas pixels the mesh covers in the reference (visible triangle); corners: P x 3
    vertex indices of that triangle, barycentric: P x 3 weights of the pixel centre. size: canvas
    (height, width). reference: V x 2 canvas positions of the vertices in the reference frame."""

    rows: np.ndarray
    cols: np.ndarray
    corners: np.ndarray
    barycentric: np.ndarray
    size: tuple[int, int]
    reference: np.ndarray

    def field(self, vertices: np.ndarray) -> np.ndarray:
        """H x W x 2 float32 canvas positions in a frame whose vertices are at ``vertices`` (V x 2
        canvas pixels): the mesh's barycentric map on covered pixels, elsewhere the least-squares
        affine map of the vertices."""
        h, w = self.size
        ones = np.ones((len(self.reference), 1))
        affine, *_ = np.linalg.lstsq(np.hstack([self.reference, ones]), vertices, rcond=None)  # 3 x 2
        xx = np.arange(w, dtype=np.float64)[None, :, None]
        yy = np.arange(h, dtype=np.float64)[:, None, None]
        out = np.empty((h, w, 2), np.float32)
        out[:] = xx * affine[0] + yy * affine[1] + affine[2]  # broadcast, no H x W coordinate grids
        corner = vertices[self.corners]  # P x 3 x 2
        b = self.barycentric
        out[self.rows, self.cols] = corner[:, 0] * b[:, 0:1] + corner[:, 1] * b[:, 1:2] + corner[:, 2] * b[:, 2:3]
        return out


def mesh_warp(vertices: np.ndarray, faces: np.ndarray, size: tuple[int, int]) -> MeshWarp:
    """The :class:`MeshWarp` of a reference frame whose vertices are at ``vertices`` (V x 3 canvas
    pixels and depth, smaller = nearer) on a canvas of ``size`` (H, W)."""
    from core.microexpr.correspondence import pixel_correspondence

    pixels = pixel_correspondence(vertices, faces, size)
    return MeshWarp(pixels.rows, pixels.cols, np.asarray(faces)[pixels.triangle], pixels.barycentric.astype(np.float64),
                    size, np.asarray(vertices[:, :2], np.float64))


@dataclass(frozen=True)
class Tracks:
    """Points of a reference frame followed through a window of T frames.

    reference: row of the reference frame. positions: T x K x 2 image pixels (the reference row
    holds the starting points). confidence: T x K in [0, 1]: 0 for points that leave the canvas,
    else exp(-(g / PHOTOMETRIC_SIGMA)^2 - (c / CONSISTENCY_PX)^2) with g the grey difference of the
    point's pixel in the reference and where it was tracked to, and c the forward-backward
    disagreement (how far the flow back from that frame misses the starting point)."""

    reference: int
    positions: np.ndarray
    confidence: np.ndarray


@contextmanager
def single_threaded_cv2() -> Iterator[None]:
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def to_gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def track_window(canvas_frames: list[np.ndarray], reference: int, canvas: FlowCanvas, points: np.ndarray,
                 field: Callable[[int], np.ndarray] | None = None,
                 progress: Callable[[int], None] | None = None) -> Tracks:
    """Follow ``points`` (K x 2 image pixels in frame ``reference``) through a window.

    canvas_frames: T grey canvas views (FlowCanvas.warp). field(i): the mesh warp of frame i, the
    H x W x 2 canvas positions of the reference's canvas pixels (MeshWarp.field); every frame is
    resampled through it into the reference's geometry first (None: plain flow). The flow runs
    from the reference to every frame (no chaining, so no drift), outward in both directions, each
    frame warm-started from its neighbour nearer the reference, and is checked by the flow back.
    A point's confidence is exp(-(g / PHOTOMETRIC_SIGMA)^2 - (c / CONSISTENCY_PX)^2), g the grey
    difference between its pixel in the reference and where it lands, c the forward-backward
    disagreement. ``progress`` is called with 1 per frame, from two threads (the two directions
    run side by side)."""
    count = len(canvas_frames)
    start = canvas.to_canvas(np.asarray(points, np.float64))
    h, w = canvas.size
    inside = (start[:, 0] >= 0) & (start[:, 1] >= 0) & (start[:, 0] <= w - 1) & (start[:, 1] <= h - 1)
    positions = np.zeros((count, len(start), 2), np.float32)
    confidence = np.zeros((count, len(start)), np.float32)

    def stabilised(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        gray = canvas_frames[i]
        f = field(i) if field is not None else None
        if f is not None:
            gray = cv2.remap(gray, f[..., 0], f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return gray, cv2.GaussianBlur(gray, (0, 0), 1.0).astype(np.float32)[..., None], f

    def on_canvas(p: np.ndarray) -> np.ndarray:
        return (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] <= w - 1) & (p[:, 1] <= h - 1)

    def follow(order: range) -> None:
        """Track through the frames of ``order``, outward from the reference, each warm-started
        from the one before it."""
        flow_fn, back_fn = DenseFlow(), DenseFlow()
        flow = back = None
        for i in order:
            gray, blur, f = stabilised(i)
            flow = flow_fn(ref_gray, gray, flow)
            back = back_fn(gray, ref_gray, back)
            moved = start + bilinear(flow, start)
            disagreement = np.linalg.norm(moved + bilinear(back, moved) - start, axis=1)
            grey = bilinear(blur, moved)[:, 0] - ref_values
            conf = np.exp(-((grey / PHOTOMETRIC_SIGMA) ** 2) - (disagreement / CONSISTENCY_PX) ** 2)
            positions[i] = canvas.to_image(bilinear(f, moved) if f is not None else moved)
            confidence[i] = conf * inside * on_canvas(moved)
            if progress is not None:
                progress(1)

    with single_threaded_cv2():
        ref_gray, ref_blur, ref_field = stabilised(reference)
        ref_values = bilinear(ref_blur, start)[:, 0]
        positions[reference] = canvas.to_image(bilinear(ref_field, start) if ref_field is not None else start)
        confidence[reference] = inside
        if progress is not None:
            progress(1)
        # The two directions do not depend on each other: the later frames on a thread of their
        # own (DIS releases the GIL), the earlier ones here. Each direction has its own DIS
        # objects, so the tracks are those of one thread, bit for bit. An error here (a cancel)
        # leaves the pool only once the other thread has stopped too.
        with ThreadPoolExecutor(1, thread_name_prefix="flow") as pool:
            later = pool.submit(follow, range(reference + 1, count))
            follow(range(reference - 1, -1, -1))
            later.result()
    return Tracks(reference, positions, confidence)
