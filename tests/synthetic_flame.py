"""A small synthetic face model written in FLAME's exact file layout (test code only; never a real FLAME).

The template is the canonical MediaPipe face (``resources/canonical_face_478.npy``) in FLAME's frame
(metres, y up, z toward the viewer), its 860 triangles subdivided once at the edge midpoints, so
vertices 0..477 are the canonical points (the true MediaPipe landmark positions) and the others are
not landmarks. It is slightly pitched and offset so that registration has something to find.

Keys and layout are FLAME's: ``v_template`` V x 3, ``f`` F x 3 uint32, ``shapedirs`` V x 3 x (S + E)
(identity first, then expression), ``posedirs`` V x 3 x 36, ``J_regressor`` 5 x V scipy.sparse
(csc), ``weights`` V x 5, ``kintree_table`` 2 x 5, plus FLAME's extras ``J``, ``bs_style``,
``bs_type``. Pickles use protocol 2; with ``with_chumpy`` the arrays ``v_template``, ``shapedirs``
and ``J`` are chumpy ``Ch`` objects as in FLAME's own files (a fake ``chumpy.ch`` module exists only
while pickling, so the loader meets real chumpy globals).

Because a trimmed file cannot say where identity ends in ``shapedirs``, these files carry
``num_shape_components`` (EmoCap's optional key) unless ``full_width`` writes the real 300 + 100
layout (identity components beyond ``num_shape`` and expressions beyond ``num_expression`` zero).
``version`` "2020" pickles as Python 2 did (strings and array data as byte strings, readable only
with ``encoding="latin1"``) and writes the root's parent in ``kintree_table`` as 4294967295 (uint32
-1); "2023" pickles as Python 3 does and uses -1, so both conventions are covered.
"""

from __future__ import annotations

import pickle
import struct
import sys
import types
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
CANONICAL_PATH = ROOT / "resources" / "canonical_face_478.npy"
TO_FLAME = np.diag([1.0, -1.0, -1.0])

EYE_DISTANCE_M = 0.095  # outer eye corners; differs from the loader's 0.09 prior on purpose
PITCH_DEG = 6.0  # the face is tilted chin-up by this much about x
OFFSET_M = np.array([0.004, 0.025, 0.085])  # where the point between the eyes sits
# Joint rest positions in canonical units (x toward the performer's left, y down, z away).
EYEBALL_RADIUS_UNITS = 0.13
JOINTS_CANONICAL = {
    "root": (0.0, 0.35, 1.0),  # head centre, behind the face
    "neck": (0.0, 1.25, 1.05),  # below it
    "jaw": (0.0, 0.45, 0.75),  # hinge below the ears
}
LEFT_IRIS = (473, 474, 475, 476, 477)
RIGHT_IRIS = (468, 469, 470, 471, 472)


@dataclass
class SyntheticFlame:
    """What was written and the ground truth behind it (FLAME frame, metres, float64).

    arrays: the FLAME keys as plain NumPy/scipy values. landmarks: 478 x 3 true positions of the
    MediaPipe points on the template. joints: 5 x 3 rest joints in FLAME order (root, neck, jaw,
    left eye, right eye) regardless of ``swap_eyes``. num_shape, num_expression: components that
    carry data; shape_columns, expression_columns: where they sit in ``shapedirs``."""

    path: Path
    arrays: dict
    landmarks: np.ndarray
    joints: np.ndarray
    faces: np.ndarray
    num_shape: int
    num_expression: int
    shape_columns: slice
    expression_columns: slice
    iris_left: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    iris_right: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


@lru_cache(maxsize=1)
def canonical_mesh() -> tuple[np.ndarray, np.ndarray]:
    """The canonical face (478 x 3, canonical frame) and its 860 MediaPipe triangles."""
    from core.facemodel.topology import mediapipe_triangles

    canonical = np.load(CANONICAL_PATH).astype(np.float64)
    triangles = mediapipe_triangles(canonical, head_centre=np.array([0.0, 0.35, 1.0]))
    return canonical, triangles


def subdivide(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One midpoint subdivision: (vertices, triangles, edges); vertex len(vertices)+i is the
    midpoint of edges[i]. Original vertices keep their indices; winding is kept."""
    pairs = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    edges, inverse = np.unique(pairs, axis=0, return_inverse=True)
    inverse = inverse.reshape(3, -1).T + len(vertices)  # per triangle: mid(ab), mid(bc), mid(ca)
    new_vertices = np.concatenate([vertices, vertices[edges].mean(axis=1)])
    a, b, c = triangles.T
    ab, bc, ca = inverse.T
    new_triangles = np.concatenate(
        [np.stack(t, axis=1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))]
    )
    return new_vertices, new_triangles, edges


def _to_flame(points_canonical: np.ndarray) -> np.ndarray:
    angle = np.radians(PITCH_DEG)
    pitch = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    return (EYE_DISTANCE_M * points_canonical @ TO_FLAME.T) @ pitch.T + OFFSET_M


def _affine_regressor(vertices: np.ndarray, joint: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Minimum-norm weights w over ``candidates`` with sum(w) = 1 and w @ vertices = joint."""
    system = np.vstack([vertices[candidates].T, np.ones(len(candidates))])  # 4 x K
    weights, *_ = np.linalg.lstsq(system, np.append(joint, 1.0), rcond=None)
    assert np.allclose(system @ weights, np.append(joint, 1.0), atol=1e-12)
    return weights


def _smooth_fields(rng: np.random.Generator, positions: np.ndarray, count: int, amplitude_m: float) -> np.ndarray:
    """V x 3 x count low-frequency displacement fields (sums of a few sinusoids of the position)."""
    centred = (positions - positions.mean(0)) / np.ptp(positions, axis=0).max()
    out = np.zeros((len(positions), 3, count))
    for k in range(count):
        for _ in range(3):
            freq = rng.normal(size=3) * 2.0
            phase = rng.uniform(0, 2 * np.pi, size=3)
            direction = rng.normal(size=3)
            out[:, :, k] += np.sin(centred @ freq[:, None] * np.pi + phase) * direction
        out[:, :, k] *= amplitude_m / np.abs(out[:, :, k]).max() / (1 + 0.1 * k)
    return out


@lru_cache(maxsize=8)
def _build(num_shape: int, num_expression: int, full_width: bool, seed: int) -> dict:
    canonical, triangles = canonical_mesh()
    vertices_c, faces, edges = subdivide(canonical, triangles)
    template = _to_flame(vertices_c)
    num_vertices = len(template)
    y = vertices_c[:, 1]  # canonical: y down

    # Joints (FLAME order: root, neck, jaw, left eye, right eye), canonical units -> FLAME.
    joints_c = np.array(
        [
            JOINTS_CANONICAL["root"],
            JOINTS_CANONICAL["neck"],
            JOINTS_CANONICAL["jaw"],
            canonical[LEFT_IRIS[0]] + (0, 0, EYEBALL_RADIUS_UNITS),
            canonical[RIGHT_IRIS[0]] + (0, 0, EYEBALL_RADIUS_UNITS),
        ]
    )
    joints = _to_flame(joints_c)

    # Skinning: irises on their eyes; below the lips on the jaw with a smooth falloff; the sides of
    # the face toward the ears partly on the neck; everything else on the root.
    original_iris = {"left": set(LEFT_IRIS), "right": set(RIGHT_IRIS)}
    iris = {}
    for side, ids in original_iris.items():
        mids = [478 + i for i, (p, q) in enumerate(edges) if p in ids and q in ids]
        iris[side] = np.array(sorted(ids) + mids, np.int64)
    mouth_line = (canonical[13, 1] + canonical[14, 1]) / 2  # between the inner lips
    jaw = _smoothstep((y - (mouth_line - 0.03)) / 0.16)
    neck = 0.5 * _smoothstep((vertices_c[:, 2] - 0.2) / 0.4)
    weights = np.zeros((num_vertices, 5))
    weights[:, 1] = neck
    weights[:, 2] = (1 - neck) * jaw
    weights[:, 0] = (1 - neck) * (1 - jaw)
    for column, side in ((3, "left"), (4, "right")):
        weights[iris[side]] = 0.0
        weights[iris[side], column] = 1.0

    # A sparse regressor that reproduces the joints from the template: for each joint an affine
    # combination of its 10 nearest original vertices plus 2 far ones (for depth).
    rows, cols, vals = [], [], []
    originals = np.arange(478)
    for j, joint in enumerate(joints):
        order = np.argsort(np.linalg.norm(template[originals] - joint, axis=1))
        candidates = np.concatenate([order[:10], order[-2:]])
        w = _affine_regressor(template, joint, candidates)
        rows += [j] * len(candidates)
        cols += list(candidates)
        vals += list(w)
    regressor = sp.csc_matrix((vals, (rows, cols)), shape=(5, num_vertices))

    rng = np.random.default_rng(seed)
    shape_fields = _smooth_fields(rng, template, num_shape, 0.004)
    lower_face = 0.3 + 0.7 * _smoothstep((y - 0.2) / 0.6)
    expression_fields = _smooth_fields(rng, template, num_expression, 0.003) * lower_face[:, None, None]
    if full_width:
        shapedirs = np.zeros((num_vertices, 3, 400))
        shapedirs[:, :, :num_shape] = shape_fields
        shapedirs[:, :, 300 : 300 + num_expression] = expression_fields
        shape_columns, expression_columns = slice(0, num_shape), slice(300, 300 + num_expression)
    else:
        shapedirs = np.concatenate([shape_fields, expression_fields], axis=2)
        shape_columns = slice(0, num_shape)
        expression_columns = slice(num_shape, num_shape + num_expression)
    posedirs = rng.normal(scale=2e-4, size=(num_vertices, 3, 36))

    return {
        "template": template,
        "faces": faces,
        "joints": joints,
        "weights": weights,
        "regressor": regressor,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "shape_columns": shape_columns,
        "expression_columns": expression_columns,
        "iris": iris,
    }


class _FakeCh:
    """Pickles like chumpy's ``Ch``: class ``chumpy.ch.Ch``, state = its ``__dict__`` with the value
    under ``x`` plus chumpy's bookkeeping fields."""

    def __init__(self, value: np.ndarray) -> None:
        self.x = np.asarray(value, np.float64)
        self._dirty_vars = set()
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = False
        self._make_sparse = False


def _fake_chumpy_modules() -> dict[str, types.ModuleType]:
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")
    cls = type("Ch", (_FakeCh,), {"__module__": "chumpy.ch", "__qualname__": "Ch"})
    ch.Ch = cls
    chumpy.ch = ch
    chumpy.Ch = cls
    return {"chumpy": chumpy, "chumpy.ch": ch}


class _Python2StylePickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: ASCII text and raw bytes (array data) as byte strings
    (SHORT_BINSTRING / BINSTRING), which only ``encoding="latin1"`` reads back correctly."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _binstring(self, data: bytes) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    def save_bytes(self, obj: bytes) -> None:
        self._binstring(obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        if not obj.isascii():
            return pickle._Pickler.save_str(self, obj)
        self._binstring(obj.encode("ascii"))
        self.memoize(obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def _dump(obj, path: Path, python2: bool) -> None:
    with open(path, "wb") as f:
        if python2:
            _Python2StylePickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=2)


def _dump_with_chumpy(obj_factory, path: Path, python2: bool) -> None:
    """Pickle (protocol 2) what ``obj_factory(Ch)`` returns while a fake chumpy is importable."""
    fakes = _fake_chumpy_modules()
    saved = {name: sys.modules.get(name) for name in fakes}
    sys.modules.update(fakes)
    try:
        _dump(obj_factory(fakes["chumpy.ch"].Ch), path, python2)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def write_synthetic_flame(
    path: str | Path,
    *,
    num_shape: int = 20,
    num_expression: int = 10,
    version: str = "2020",
    with_chumpy: bool = True,
    full_width: bool = False,
    swap_eyes: bool = False,
    seed: int = 0,
) -> SyntheticFlame:
    """Write a synthetic FLAME-layout model to ``path`` (``.npz`` -> NumPy archive with a dense
    regressor, anything else -> pickle). ``swap_eyes`` stores the right eye as joint 3 (not FLAME's
    order), to test that the loader puts the left eye first. Returns the ground truth."""
    if version not in ("2020", "2023"):
        raise ValueError(f"version must be '2020' or '2023', not {version!r}")
    path = Path(path)
    built = _build(num_shape, num_expression, full_width, seed)
    weights = built["weights"].copy()
    regressor = built["regressor"].copy()
    posedirs = built["posedirs"].copy()
    joints = built["joints"].copy()
    if swap_eyes:
        weights[:, [3, 4]] = weights[:, [4, 3]]
        regressor = sp.csc_matrix(regressor.toarray()[[0, 1, 2, 4, 3]])
        joints = joints[[0, 1, 2, 4, 3]]
        # pose correctives are blocks of 9 per joint 1..4: swap the blocks of joints 3 and 4
        posedirs = posedirs[:, :, list(range(18)) + list(range(27, 36)) + list(range(18, 27))]
    root_parent = 4294967295 if version == "2020" else -1
    kintree = np.array([[root_parent, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    arrays = {
        "v_template": built["template"],
        "f": built["faces"].astype(np.uint32),
        "shapedirs": built["shapedirs"],
        "posedirs": posedirs,
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": kintree,
        "J": joints,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    if not full_width:
        arrays["num_shape_components"] = num_shape

    if path.suffix.lower() == ".npz":
        dense = {k: (v.toarray() if sp.issparse(v) else np.asarray(v)) for k, v in arrays.items()}
        np.savez(path, **dense)
    elif with_chumpy:
        chumpy_keys = {"v_template", "shapedirs", "J"}
        _dump_with_chumpy(
            lambda Ch: {k: (Ch(v) if k in chumpy_keys else v) for k, v in arrays.items()}, path, version == "2020"
        )
    else:
        _dump(arrays, path, version == "2020")

    return SyntheticFlame(
        path=path,
        arrays=arrays,
        landmarks=built["template"][:478].copy(),
        joints=built["joints"].copy(),
        faces=built["faces"].copy(),
        num_shape=num_shape,
        num_expression=num_expression,
        shape_columns=built["shape_columns"],
        expression_columns=built["expression_columns"],
        iris_left=built["iris"]["left"],
        iris_right=built["iris"]["right"],
    )


def embedding_ids() -> np.ndarray:
    """105 MediaPipe ids for the synthetic embedding file (spread over the mesh, both irises' centres)."""
    ids = np.unique(np.round(np.linspace(0, 467, 103)).astype(np.int64))
    return np.concatenate([ids, [468, 473]])[:105]


def write_synthetic_embedding(path: str | Path, model: SyntheticFlame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write a ``mediapipe_landmark_embedding.npz``-style file (``lmk_face_idx`` (105,),
    ``lmk_b_coords`` (105, 3), ``landmark_indices`` (105,)) for the synthetic model: each MediaPipe
    point is embedded as the corner of a triangle that uses its vertex (barycentric 1 there), so the
    embedded landmarks are the true positions. Returns (face_idx, b_coords, ids)."""
    ids = embedding_ids()
    assert len(ids) == 105
    faces = model.faces
    face_idx = np.empty(len(ids), np.int64)
    bary = np.zeros((len(ids), 3))
    for i, vertex in enumerate(ids):
        f, corner = np.argwhere(faces == vertex)[0]
        face_idx[i] = f
        bary[i, corner] = 1.0
    np.savez(path, lmk_face_idx=face_idx, lmk_b_coords=bary, landmark_indices=ids)
    return face_idx, bary, ids


def synthetic_face_model_data(num_shape: int = 20, num_expression: int = 10, seed: int = 0):
    """The synthetic model as FaceModelData directly (no file, no loader), with the exact embedding
    of all 478 MediaPipe points (each as the corner of a triangle using its vertex)."""
    from core.facemodel.types import FaceModelData

    built = _build(num_shape, num_expression, False, seed)
    faces = built["faces"]
    ids = np.arange(478)
    face_idx = np.empty(478, np.int64)
    bary = np.zeros((478, 3))
    for vertex in ids:
        f, corner = np.argwhere(faces == vertex)[0]
        face_idx[vertex] = f
        bary[vertex, corner] = 1.0
    v = len(built["template"])
    return FaceModelData(
        name="synthetic",
        template=built["template"].astype(np.float32),
        faces=faces.astype(np.int64),
        shape_basis=built["shapedirs"][:, :, built["shape_columns"]].astype(np.float32),
        expression_basis=built["shapedirs"][:, :, built["expression_columns"]].astype(np.float32),
        pose_basis=built["posedirs"].reshape(-1, 36).T.astype(np.float32).reshape(36, v * 3),
        joint_regressor=built["regressor"].toarray().astype(np.float32),
        skinning_weights=built["weights"].astype(np.float32),
        landmark_faces=face_idx,
        landmark_barycentric=bary.astype(np.float32),
        landmark_ids=ids.astype(np.int64),
        expression_names=tuple(f"exp{i:03d}" for i in range(num_expression)),
        info={"iris_left": built["iris"]["left"], "iris_right": built["iris"]["right"]},
    )
