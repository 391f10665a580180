"""Learned expression appearance: how much each expression shape darkens or lightens the skin.

A mesh of 478 points moves the texture but cannot fold it: the furrows between knit brows, the
forehead lines of raised inner brows, the deepened nasolabial fold of a sneer, the cheek's shadow
under a smile are finer than the mesh or come from light the reference frame did not have. Game
and film rigs add them with animated wrinkle maps (a painted map per shape, blended by its curve).
EmoCap's maps are learned instead of painted (``scripts/build_appearance_maps.py``,
:mod:`core.render.appearance_learning`): photographs of people seen neutral and expressive, warped
into one texture space, give the change of log brightness of each expression, which is regressed
on the expression's fitted curves.

The texture space is the open model's template seen from the front: ``vertex_uv`` places each of
the model's vertices in the maps' pixels (x grows toward the performer's left, as in a photo of
them; y down; pixel centres at integers). The maps are mirror-symmetric as the shapes are: the map of
``browDownLeft`` is that of ``browDownRight`` flipped left to right.

A frame's skin colour is multiplied by exp(sum_k (w_k - w_ref,k) * map_k) at each of its pixels,
where w are the frame's curves and w_ref the reference frame's (whose own appearance the texture
already carries), so the reference frame renders unchanged. No I/O apart from
:func:`load_appearance_maps` and :func:`save_appearance_maps`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import write_bytes_atomic
from core.errors import EmoCapError
from core.render.rasterizer import sample_channel

APPEARANCE_MAPS_PATH = Path(__file__).resolve().parents[2] / "resources" / "appearance_maps.npz"
LOG_GAIN_RANGE = (-0.9, 0.5)  # darkest exp(-0.9) = 0.41x, brightest exp(0.5) = 1.65x


class AppearanceMapsError(EmoCapError):
    """The appearance maps' file is missing or not one this code can read."""


@dataclass(frozen=True)
class AppearanceMaps:
    """names: E expression shape names. maps: E x H x W float32, the change of natural-log
    brightness each shape causes at weight 1. vertex_uv: V x 2 float32, each model vertex's
    position in the maps (pixels). info: what the maps were built from (sources, terms, build)."""

    names: tuple[str, ...]
    maps: np.ndarray
    vertex_uv: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.maps.ndim != 3 or len(self.maps) != len(self.names):
            raise ValueError(f"expected {len(self.names)} maps of H x W, got {self.maps.shape}")
        if self.vertex_uv.ndim != 2 or self.vertex_uv.shape[1] != 2:
            raise ValueError(f"vertex_uv must be V x 2, got {self.vertex_uv.shape}")

    def fits(self, num_vertices: int, expression_names) -> bool:
        """Whether these maps apply to a model with that many vertices and those expression names
        (the open model and its performer profiles; not FLAME)."""
        return num_vertices == len(self.vertex_uv) and bool(set(self.names) & set(expression_names))

    def columns(self, expression_names) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``expression_names`` that have a map, the rows of ``maps`` they use)."""
        row = {name: k for k, name in enumerate(self.names)}
        used = [(j, row[name]) for j, name in enumerate(expression_names) if name in row]
        return np.array([j for j, _ in used], np.int64), np.array([k for _, k in used], np.int64)

    def combined(self, weight_change: np.ndarray) -> np.ndarray:
        """H x W log gain of E weight changes (in the order of ``names``)."""
        active = np.nonzero(np.abs(weight_change) > 1e-4)[0]
        if len(active) == 0:
            return np.zeros(self.maps.shape[1:], np.float32)
        return np.tensordot(weight_change[active].astype(np.float32), self.maps[active], axes=1)

    def factors(self, weight_change: np.ndarray, corners: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
        """K brightness factors at K surface points (their triangles' vertex ids K x 3 and
        barycentrics K x 3) for E weight changes in the order of ``names``."""
        gain = self.combined(weight_change)
        u = (barycentric * self.vertex_uv[corners, 0]).sum(axis=1)
        v = (barycentric * self.vertex_uv[corners, 1]).sum(axis=1)
        sampled = sample_channel(gain, u, v)
        return np.exp(np.clip(sampled, *LOG_GAIN_RANGE)).astype(np.float32)


def save_appearance_maps(maps: AppearanceMaps, path: Path) -> None:
    """Write ``maps`` to ``path`` (.npz, maps as float16, atomically)."""
    content = io.BytesIO()
    np.savez_compressed(content, names=np.array(maps.names), maps=maps.maps.astype(np.float16),
                        vertex_uv=maps.vertex_uv.astype(np.float32), info=np.array(json.dumps(maps.info, sort_keys=True)))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(Path(path), content.getvalue())


@functools.lru_cache(maxsize=4)
def appearance_maps_digest(path: Path = APPEARANCE_MAPS_PATH) -> str:
    """SHA-256 of the maps' names, values and texture coordinates (not the file's bytes, which a
    rebuild to the same values changes): what a render judged with them depends on. The emotion
    stage's settings record it, so new maps re-judge a take's reconstruction."""
    maps = load_appearance_maps(path)
    digest = hashlib.sha256("\0".join(maps.names).encode())
    for array in (maps.maps.astype(np.float16), maps.vertex_uv.astype(np.float32)):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def load_appearance_maps(path: Path = APPEARANCE_MAPS_PATH) -> AppearanceMaps:
    """The appearance maps stored at ``path`` (default: the shipped ones)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return AppearanceMaps(tuple(str(n) for n in z["names"]), z["maps"].astype(np.float32),
                                  z["vertex_uv"].astype(np.float32), json.loads(str(z["info"])))
    except (OSError, KeyError, ValueError) as error:
        raise AppearanceMapsError(f"cannot read the expression appearance maps {path}: {error}; rebuild them "
                                  "with scripts/build_appearance_maps.py") from error
