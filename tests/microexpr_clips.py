"""Synthetic micro-expressions with known ground truth, made from real frames (tests and benchmarks).

A micro-expression is a subtle, short, local deformation: a few Gaussian bumps of displacement
(pixels) placed on landmarks, scaled over time by a raised-cosine profile (0 at the onset, 1 at the
apex halfway, 0 at the offset). Frames are warped so that image content moves by exactly that
field (the inverse warp is solved by fixed-point iteration), and written as a real video file.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


@dataclass(frozen=True)
class Bump:
    """A displacement of ``shift`` (dx, dy pixels, x right, y down) around landmark ``landmark``
    with a Gaussian falloff of ``sigma_iod`` inter-ocular distances."""

    landmark: int
    shift: tuple[float, float]
    sigma_iod: float = 0.1


@dataclass(frozen=True)
class MicroExpression:
    """Bumps that move together; onset_s: start time, duration_s: onset to offset."""

    name: str
    bumps: tuple[Bump, ...]
    onset_s: float
    duration_s: float

    def amplitude(self, t: np.ndarray) -> np.ndarray:
        """0..1 raised cosine: 0 before the onset and after the offset, 1 at the apex."""
        u = (np.asarray(t, np.float64) - self.onset_s) / self.duration_s
        return np.where((u > 0) & (u < 1), np.sin(np.pi * np.clip(u, 0, 1)) ** 2, 0.0)


def displacement_field(shape: tuple[int, int], landmarks: np.ndarray, event: MicroExpression, amplitude: float) -> np.ndarray:
    """H x W x 2 forward displacement (pixels) of the event at ``amplitude`` on a frame whose
    landmarks (478 x >=2 pixels) are given."""
    h, w = shape
    iod = float(np.linalg.norm(landmarks[33, :2] - landmarks[263, :2]))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.zeros((h, w, 2), np.float32)
    for bump in event.bumps:
        cx, cy = landmarks[bump.landmark, :2]
        sigma = bump.sigma_iod * iod
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)).astype(np.float32)
        field[..., 0] += amplitude * bump.shift[0] * g
        field[..., 1] += amplitude * bump.shift[1] * g
    return field


def warp_forward(image: np.ndarray, field: np.ndarray, iterations: int = 4) -> np.ndarray:
    """The image whose content at x moved to x + field(x): out(y) = image(y - u(y)) with
    u(y) = field(y - u(y)) solved by fixed-point iteration."""
    h, w = field.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = field.copy()
    for _ in range(iterations):
        u = np.stack([cv2.remap(field[..., c], xx - u[..., 0], yy - u[..., 1], cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE) for c in range(2)], axis=2)
    return cv2.remap(image, xx - u[..., 0], yy - u[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def resample(frames: list[np.ndarray], source_fps: float, fps: float, duration_s: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames at ``fps`` for ``duration_s`` seconds by repeating the nearest earlier source frame;
    also returns the source index of every output frame."""
    n = int(round(duration_s * fps))
    index = np.minimum((np.arange(n) / fps * source_fps + 1e-9).astype(int), len(frames) - 1)
    return [frames[i] for i in index], index


def interpolate(frames: list[np.ndarray], landmarks: np.ndarray, source_fps: float, fps: float,
                duration_s: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames at ``fps`` for ``duration_s`` seconds by motion-compensated interpolation between
    consecutive source frames (DIS flow both ways, each side warped part of the way, blended by
    the time fraction), so that motion is smooth as in a real high-frame-rate recording; also
    returns the landmarks (N x 478 x 3) interpolated linearly in time."""
    n = int(round(duration_s * fps))
    position = np.arange(n) / fps * source_fps
    lower = np.minimum(position.astype(int), len(frames) - 1)
    upper = np.minimum(lower + 1, len(frames) - 1)
    alpha = np.clip(position - lower, 0.0, 1.0)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    h, w = gray[0].shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    flows: dict[tuple[int, int], np.ndarray] = {}

    def flow(a: int, b: int) -> np.ndarray:
        if (a, b) not in flows:
            flows[(a, b)] = dis.calc(gray[a], gray[b], None)
        return flows[(a, b)]

    out = []
    for a, b, t in zip(lower, upper, alpha):
        if a == b or t < 1e-6:
            out.append(frames[a])
            continue
        # pixel x of the in-between frame came from x - t * flow(a->b) in a and x + (1-t) * flow(b->a) in b
        # (flows sampled at x: the usual approximation for smooth motion)
        fa, fb = flow(a, b), flow(b, a)
        from_a = cv2.remap(frames[a], xx - t * fa[..., 0], yy - t * fa[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        from_b = cv2.remap(frames[b], xx - (1 - t) * fb[..., 0], yy - (1 - t) * fb[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        out.append(cv2.addWeighted(from_a, 1 - t, from_b, t, 0))
    marks = landmarks[lower] * (1 - alpha)[:, None, None] + landmarks[upper] * alpha[:, None, None]
    return out, marks


def write_video(path: Path, frames: list[np.ndarray], fps: int, crf: int = 12) -> Path:
    """H.264 (yuv420p, high quality) at an integer frame rate."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "veryfast", "g": str(fps)})
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


# The three micro-expressions of the benchmark (landmarks: MediaPipe indices; performer's left/right)
LIP_CORNER = MicroExpression("lip corner raised", (Bump(291, (0.8, -2.5), 0.09),), 0.35, 0.2)
INNER_BROWS = MicroExpression("inner brows lowered", (Bump(107, (1.0, 1.5), 0.1), Bump(336, (-1.0, 1.5), 0.1)), 0.3, 0.3)
NOSE_WRINKLE = MicroExpression("nose wrinkle", (Bump(48, (0.0, -1.2), 0.07), Bump(278, (0.0, -1.2), 0.07)), 0.4, 0.12)
EVENTS = (LIP_CORNER, INNER_BROWS, NOSE_WRINKLE)


def synthetic_window(model, frames: int = 30, fps: float = 100.0, expression: str = "mouthSmileLeft",
                     peak: float = 0.3, num_regions: int = 12):
    """A window whose flow tracks and landmarks come from the face model itself moving one
    expression (a raised-cosine from 25 % to 80 % of the window, up to ``peak``) while the "fit"
    keeps it at 0: what the refiner must recover is known exactly. Returns (WindowData, MeshRegions,
    true expression T x E)."""
    import torch

    from core.fit.camera import project
    from core.microexpr.correspondence import front_facing, mesh_regions, sample_set
    from core.microexpr.geometry import face_params, skin_triangles
    from core.microexpr.refiner import WindowData

    e = model.num_expression
    t = np.arange(frames) / fps
    onset_s, duration_s = 0.25 * frames / fps, 0.55 * frames / fps
    u = np.clip((t - onset_s) / duration_s, 0, 1)
    truth = np.zeros((frames, e), np.float32)
    truth[:, model.expression_names.index(expression)] = peak * np.sin(np.pi * u) ** 2
    rotation = np.tile(np.array([[0.05, 0.1, 0.0]], np.float32), (frames, 1))
    zeros3 = np.zeros((frames, 3), np.float32)
    camera = np.tile(np.array([[np.log(100 / 0.09), 160.0, 160.0, 0.0]], np.float32), (frames, 1))
    identity = np.zeros(model.num_shape, np.float32)
    with torch.no_grad():
        params = face_params(torch.as_tensor(identity), torch.as_tensor(truth), torch.as_tensor(rotation),
                             torch.as_tensor(zeros3), torch.as_tensor(zeros3), torch.zeros(frames, 6))
        output = model(params)
        image = project(output.vertices, torch.as_tensor(camera)).numpy()
        landmarks = project(output.landmarks, torch.as_tensor(camera)).numpy()[..., :2]
    faces = model.faces.numpy()
    regions = mesh_regions(model.template.numpy(), faces, num_regions)
    facing = np.nonzero(front_facing(image[:1], faces, 0.2)[0])[0]
    samples = sample_set(faces, regions, np.intersect1d(facing, skin_triangles(model)), 3)
    tracks = samples.points(image[..., :2]).astype(np.float32)
    data = WindowData(
        times=t, onset=0, identity=identity, expression=np.zeros_like(truth), rotation=rotation, neck=zeros3,
        jaw=zeros3, eyes=np.zeros((frames, 6), np.float32), camera=camera, landmarks=landmarks, samples=samples,
        tracks=tracks, confidence=np.ones(tracks.shape[:2], np.float32), iod=100.0,
    )
    return data, regions, truth
