"""Shading of a deforming skin relative to a reference pose of the same skin: a relighting ratio,
and its compression wrinkles (:mod:`core.render.wrinkles`).

The reconstruction render (:mod:`core.render.reconstruction`) textures the fitted mesh with a
reference frame's pixels; those pixels already carry the reference's real shading. Multiplying
them by shade(deformed surface) / shade(reference surface) at the same surface point leaves the
reference frame exactly as it was (factor 1) and shows only what the surface *changed*: a raised
cheek, a bulge between knit brows, a sagging mouth corner catch or lose light.

- **Frame**: the head's (model space with the head joint's rotation undone: x to the performer's
  left, y up, z toward the viewer), so a rigid head turn changes nothing (the texture already has
  the scene's real light, and the render must not invent shading for pose alone).
- **Light**: Lambertian, a key light from straight ahead raised by KEY_ELEVATION_DEG plus AMBIENT,
  shade = ambient + (1 - ambient) max(0, n.l).
- **Normals**: per pixel, interpolated from a Loop subdivision of the mesh
  (:class:`core.render.subdivision.LoopSubdivision`), so the coarse mesh's facets do not show.
- **Only local change**: the ratio is divided by its own average over the surrounding face
  (a Gaussian of LOWPASS_SIGMA_M over the neutral surface, of the ratio clipped to
  1 +- TILT_BAND), so a tilt of a whole region (the tracked motion of a face carries a few
  degrees of it that no expression explains) neither brightens nor darkens it; bumps and creases
  keep their light and shadow, and do not cast a halo on the skin around them. It fades out toward
  the face's outline (no seam against the reference's surround) and brightens by at most
  FACTOR_RANGE[1] (the mesh's lips turn up at the mouth corners more than real ones).
- **Colour**: the reference skin's own shadow colour (:class:`SkinShadowColour`): a darkened
  pixel takes the colour the photo's own skin has at the darker luminance. Shadows on skin are
  redder than its lit parts, and an overexposed photo's red channel hardly falls with the rest: a
  pale KDEF face keeps red at 250 from its brightest skin down to luminance 170 while green and
  blue fall. A single slope per channel (clamped to TINT_RANGE, as before) could not follow that:
  its shadows lost red the photo's do not, and read olive.

Options compared on KDEF motion transferred onto other people's neutral photos, judged by EmoNet
and FER (``scripts/render_judge_ceiling.py``; the mean probability of the true label, paired per
render): this light (elevation 40 degrees, ambient 0.4) against a harder one (50 degrees, ambient
0.2): the harder read slightly better on FER and no better on EmoNet, but it burnt bright
patches onto upper lids; the average over the whole face instead of the local one: clearly worse
(a tilt of the whole face darkened or lit it all); a local average over 12 or 30 mm instead of
20: no better; pushing compressed skin outward (a volume-preserving bulge): worse on smiles;
fading the shading out near the lids and lips: much worse (that is where expressions change
the surface most). Clipping the ratio to 1 +- TILT_BAND before the local average (against no
clipping) changed no reading (real KDEF motion of 19 people on 4 carriers, EmoNet: 43 % both;
prototype poses 69 % against 71 %, one render) and took out the halos: drawn to look at, not to
score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.render.subdivision import LoopSubdivision
from core.render.wrinkles import WRINKLE_ONSET, planar_stretch, principal_stretches, wrinkle_shade, wrinkle_zones

KEY_ELEVATION_DEG = 40.0  # key light above the face's forward axis
AMBIENT = 0.4  # share of the light that comes from everywhere
LOWPASS_SIGMA_M = 0.02  # the local average's Gaussian
EDGE_FADE_M = 0.012  # the shading fades out over this distance from the face's outline
# the local average sees the ratio clipped to 1 +- TILT_BAND: a region tilted by a few degrees
# changes its shade by a few per cent and is taken out, while a bump or a raised brow (10-60 %)
# stays its own and does not leak into the average of the skin around it (unclipped, a brow raise
# darkened the nose and cheeks below by 2-9 %, an olive cast on pale skin)
TILT_BAND = 0.05
MAX_ANCHORS = 600  # vertices the local average is taken over
FACTOR_RANGE = (0.35, 1.15)  # the shading factor is kept in this range
# the shadow colour's slopes (log channel against log luminance) beyond the skin's own range are
# kept in this range: a pale face whose red channel is clipped measured (0.3, 1.4, 2.3) overall,
# and shadows with that slope throughout drew orange rims around its squinting eyes
TINT_RANGE = (0.6, 1.6)
COLOUR_BINS = 8  # quantile bins of the skin's luminance whose median colours shadows follow
SUBDIVIDE_BELOW = 4000  # subdivide meshes with fewer triangles than this (once, or twice)
LUMA = np.array([0.299, 0.587, 0.114])


def key_light(elevation_deg: float = KEY_ELEVATION_DEG) -> np.ndarray:
    """Unit direction toward the key light in the head frame: straight ahead, raised by
    ``elevation_deg`` (y up, z toward the viewer)."""
    e = np.radians(elevation_deg)
    return np.array([0.0, np.sin(e), np.cos(e)])


@dataclass(frozen=True)
class SurfaceFrames:
    """Per-frame data of B deformed surfaces, on the subdivided mesh's V' vertices.

    light: B x V' relighting ratio (local change only). stretch: B x V' x 3 frontal stretch
    tensors (C_xx, C_xy, C_yy). active: B x V' bool, where wrinkles may show."""

    light: np.ndarray
    stretch: np.ndarray
    active: np.ndarray


class SurfaceShader:
    """Shading factors of a deforming skin mesh relative to its reference pose.

    faces: F x 3 skin triangles (no hidden parts). neutral_vertices: V x 3 and neutral_landmarks:
    478 x 3 of the identity's neutral face in model space (metres), for the averaging neighbourhoods
    and the wrinkle zones; outline: K x 3 points along the face's outer outline there, where the
    shading fades out (over EDGE_FADE_M) so the face meets the reference's surround without a
    seam. Call :meth:`set_reference` with the reference pose first.
    """

    def __init__(
        self, faces: np.ndarray, neutral_vertices: np.ndarray, neutral_landmarks: np.ndarray, outline: np.ndarray,
    ) -> None:
        self.faces = np.asarray(faces, np.int64)
        levels = 0 if len(self.faces) >= SUBDIVIDE_BELOW else 1 if 4 * len(self.faces) >= SUBDIVIDE_BELOW else 2
        num_vertices = len(neutral_vertices)
        self.subdivision = LoopSubdivision(self.faces, num_vertices, levels)
        self.light = key_light()
        # the local mean: Gaussian weights of anchor vertices (all skin vertices of a coarse mesh,
        # an even spread of MAX_ANCHORS of a fine one such as FLAME's)
        self._anchors = spread_vertices(neutral_vertices, np.unique(self.faces), MAX_ANCHORS)
        distance = np.linalg.norm(neutral_vertices[:, None] - neutral_vertices[self._anchors][None], axis=2)
        weights = np.exp(-0.5 * (distance / LOWPASS_SIGMA_M) ** 2)
        self._lowpass = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)  # V x A
        self._zones = self.subdivision.matrix @ wrinkle_zones(neutral_vertices, neutral_landmarks)
        self._fade = self.subdivision.matrix @ _fade(neutral_vertices, outline, EDGE_FADE_M)  # V'
        self._reference: np.ndarray | None = None

    def set_reference(self, vertices: np.ndarray, skin: np.ndarray) -> None:
        """vertices: V x 3 head-frame vertices of the reference pose (metres); skin: K x 3 RGB of
        the reference image's face (for :class:`SkinShadowColour`)."""
        self._reference = np.asarray(vertices, np.float64)
        self.shadow_colour = SkinShadowColour.of(skin)
        self._reference_shade = self._shade(smooth_normals(self._reference[None], self.subdivision))[0]

    def frames(self, vertices: np.ndarray) -> SurfaceFrames:
        """vertices: B x V x 3 head-frame vertices (metres) -> their :class:`SurfaceFrames`."""
        if self._reference is None:
            raise RuntimeError("call set_reference first")
        vertices = np.asarray(vertices, np.float64)
        ratio = self._shade(smooth_normals(vertices, self.subdivision)) / self._reference_shade  # B x V'
        # the local mean from the anchors (the refined mesh keeps the coarse vertices first), refined
        tilt = np.clip(ratio[:, self._anchors], 1.0 - TILT_BAND, 1.0 + TILT_BAND)
        local = _apply(self.subdivision.matrix, (tilt @ self._lowpass.T)[..., None])[..., 0]
        light = 1.0 + self._fade * (ratio / np.maximum(local, 1e-6) - 1.0)
        stretch = planar_stretch(self._reference, vertices, self.faces)
        # where lines may show: compressed coarse vertices and the refined ones they reach
        low, _, _ = principal_stretches(stretch.reshape(-1, 3))
        compressed = (1.0 - low > WRINKLE_ONSET).reshape(stretch.shape[:2]).astype(np.float64)
        active = (_apply(self.subdivision.matrix, compressed[..., None])[..., 0] > 0) & (self._zones.max(axis=1) > 0)
        return SurfaceFrames(light.astype(np.float32), _apply(self.subdivision.matrix, stretch), active)

    def factors(self, frames: SurfaceFrames, k: int, triangle: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
        """Shading factors (K float32) of frame ``k`` at K surface points: skin triangle indices
        into ``faces`` and their barycentrics (as a rasteriser gives them)."""
        ids, weights = self.subdivision.locate(triangle, barycentric)
        factor = _interpolate(frames.light[k], ids, weights)
        active = frames.active[k]
        near = np.nonzero(active[ids[:, 0]] | active[ids[:, 1]] | active[ids[:, 2]])[0]
        ids, weights, corners = ids[near], weights[near], self.faces[triangle[near]]
        c = _interpolate(frames.stretch[k], ids, weights)
        position = sum(barycentric[near, q, None] * self._reference[corners[:, q], :2] for q in range(3))
        zone = _interpolate(self._zones * self._fade[:, None], ids, weights)
        factor[near] *= wrinkle_shade(c, position, zone)
        return np.clip(factor, *FACTOR_RANGE).astype(np.float32)

    def apply(self, colour: np.ndarray, factors: np.ndarray) -> np.ndarray:
        """K x 3 RGB (0..255 float) shaded by K factors: darker as the reference skin's own
        shadow colour says (:meth:`SkinShadowColour.darkening`), brighter by f but no further than
        the brightest channel allows (saturated skin keeps its hue instead of turning pale)."""
        f = factors[:, None].astype(np.float32)
        dark = np.ones((len(colour), 3), np.float32)
        darker = np.nonzero(factors < 1.0)[0]
        dark[darker] = self.shadow_colour.darkening(colour[darker], factors[darker])
        headroom = np.maximum(255.0 / np.maximum(colour.max(axis=1, keepdims=True), 1.0), 1.0)
        bright = np.minimum(np.maximum(f, 1.0), headroom)
        return colour * dark * bright

    def _shade(self, normals: np.ndarray) -> np.ndarray:
        """... x 3 unit normals -> ... Lambert shade in [AMBIENT, 1]."""
        lit = normals[..., 0] * self.light[0] + normals[..., 1] * self.light[1] + normals[..., 2] * self.light[2]
        return AMBIENT + (1.0 - AMBIENT) * np.clip(lit, 0.0, 1.0)


def _fade(vertices: np.ndarray, points: np.ndarray, distance: float) -> np.ndarray:
    """V weights: 0 at the points, rising smoothly to 1 at ``distance`` (metres) from them."""
    d = np.linalg.norm(vertices[:, None] - np.asarray(points)[None], axis=2).min(axis=1)
    t = np.clip(d / distance, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def spread_vertices(vertices: np.ndarray, candidates: np.ndarray, count: int) -> np.ndarray:
    """``count`` of the candidate vertex indices spread evenly over the surface (farthest-point
    sampling from the first candidate), or all of them when there are no more."""
    candidates = np.asarray(candidates, np.int64)
    if len(candidates) <= count:
        return candidates
    points = vertices[candidates]
    chosen = [0]
    distance = np.linalg.norm(points - points[0], axis=1)
    for _ in range(count - 1):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.sort(candidates[chosen])


@dataclass(frozen=True)
class SkinShadowColour:
    """How each colour channel of a photo's skin follows its luminance: log R, G, B as piecewise
    linear functions of log luminance through the medians of COLOUR_BINS quantile bins of the skin
    pixels (the darkest 15 % and the brightest 3 %, brows, nostrils and highlights, left out),
    never rising as the luminance falls; below the darkest bin each channel goes on with its
    overall slope against luminance (clamped to TINT_RANGE), above the brightest with the slope of
    the two brightest bins (at most TINT_RANGE[1]; a clipped channel's is 0). log_luminance: B + 2
    ascending knots, the first and last EXTRAPOLATE_TO beyond the bins, where the extrapolations
    end; log_channels: (B + 2) x 3 (natural logs of 0..255 values)."""

    log_luminance: np.ndarray
    log_channels: np.ndarray

    EXTRAPOLATE_TO = 20.0  # log luminance beyond the skin's bins: further than any pixel or shadow reaches

    @classmethod
    def of(cls, pixels: np.ndarray) -> SkinShadowColour:
        """From K x 3 RGB skin pixels; every channel following luminance alike (grey shadows)
        without enough pixels or spread."""
        pixels = np.asarray(pixels, np.float64).reshape(-1, 3)
        neutral = cls(np.array([-cls.EXTRAPOLATE_TO, cls.EXTRAPOLATE_TO]),
                      np.repeat([[-cls.EXTRAPOLATE_TO], [cls.EXTRAPOLATE_TO]], 3, axis=1))
        if len(pixels) < 100:
            return neutral
        luminance = pixels @ LUMA
        low, high = np.percentile(luminance, [15, 97])
        keep = (luminance > max(low, 1.0)) & (luminance < high)
        if keep.sum() < 100 or np.log(high / max(low, 1.0)) < 0.05:
            return neutral
        x = np.log(luminance[keep])
        y = np.log(np.maximum(pixels[keep], 1.0))
        centred = x - x.mean()
        slopes = np.clip((centred @ (y - y.mean(axis=0))) / (centred @ centred), *TINT_RANGE)
        edges = np.quantile(x, np.linspace(0.0, 1.0, COLOUR_BINS + 1))
        bins = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, COLOUR_BINS - 1)
        knots = np.array([np.median(x[bins == b]) for b in range(COLOUR_BINS)])
        knots = np.maximum.accumulate(knots + 1e-6 * np.arange(COLOUR_BINS))  # strictly ascending
        channels = np.stack([np.median(y[bins == b], axis=0) for b in range(COLOUR_BINS)])
        channels = np.maximum.accumulate(channels, axis=0)  # no channel brightens as the skin darkens
        top = np.clip((channels[-1] - channels[-2]) / max(knots[-1] - knots[-2], 1e-6), 0.0, TINT_RANGE[1])
        reach = cls.EXTRAPOLATE_TO
        return cls(np.concatenate([[knots[0] - reach], knots, [knots[-1] + reach]]),
                   np.concatenate([channels[:1] - reach * slopes, channels, channels[-1:] + reach * top]))

    def log_colour(self, log_luminance: np.ndarray) -> np.ndarray:
        """K log luminances -> K x 3 log channel values of the skin at them."""
        return np.stack([np.interp(log_luminance, self.log_luminance, self.log_channels[:, c]) for c in range(3)], axis=1)

    def darkening(self, colour: np.ndarray, factors: np.ndarray) -> np.ndarray:
        """K x 3 per-channel factors that darken K x 3 RGB pixels by K luminance factors in (0, 1]:
        each channel changes as the skin's own does between the pixel's luminance and the darker
        one."""
        log_luminance = np.log(np.maximum(np.asarray(colour, np.float64) @ LUMA, 1.0))
        change = self.log_colour(log_luminance + np.log(np.maximum(factors, 1e-3))) - self.log_colour(log_luminance)
        return np.exp(change).astype(np.float32)


def _interpolate(values: np.ndarray, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Values at K points from V' x C (or V') vertex values, K x 3 ids and weights."""
    w = weights if values.ndim == 1 else weights[:, :, None]
    return w[:, 0] * values[ids[:, 0]] + w[:, 1] * values[ids[:, 1]] + w[:, 2] * values[ids[:, 2]]


def _apply(matrix, values: np.ndarray) -> np.ndarray:
    """A V' x V (sparse) matrix applied to B x V x C values -> B x V' x C."""
    batch, count, channels = values.shape
    flat = matrix @ values.transpose(1, 0, 2).reshape(count, batch * channels)
    return flat.reshape(-1, batch, channels).transpose(1, 0, 2)


def smooth_normals(vertices: np.ndarray, subdivision: LoopSubdivision) -> np.ndarray:
    """B x V x 3 coarse vertices (any consistent units) -> B x V' x 3 unit area-weighted vertex
    normals of the subdivided mesh."""
    fine = _apply(subdivision.matrix, np.asarray(vertices, np.float64))  # B x V' x 3
    faces = subdivision.faces
    a, b, c = fine[:, faces[:, 0]], fine[:, faces[:, 1]], fine[:, faces[:, 2]]
    u, v = b - a, c - a
    face_normals = np.stack([u[..., 1] * v[..., 2] - u[..., 2] * v[..., 1],
                             u[..., 2] * v[..., 0] - u[..., 0] * v[..., 2],
                             u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]], axis=-1)  # B x F' x 3, length = 2 area
    normals = _apply(subdivision.incidence, face_normals)
    length = np.sqrt(normals[..., 0] ** 2 + normals[..., 1] ** 2 + normals[..., 2] ** 2)[..., None]
    return normals / np.where(length > 0, length, 1.0)
