"""Load FLAME (2020 ``generic_model.pkl``, 2023 ``flame2023.pkl``, or ``.npz`` conversions) as
:class:`FaceModelData`, without chumpy.

FLAME's pickles come from Python 2 and hold some arrays as chumpy ``Ch`` objects. Unpickling uses a
restricted :class:`pickle.Unpickler` (``encoding="latin1"``) that resolves only NumPy arrays,
scipy.sparse matrices, plain containers and chumpy objects; a chumpy object is replaced by a
stand-in that records its pickled state (``Ch`` keeps its value in ``__dict__['x']``), and a sparse
matrix by one that records ``data``/``indices``/``indptr``/``_shape`` (so scipy's internal module
names do not matter). Anything else in the file (code, other classes) is refused.

File layout (FLAME's names): ``v_template`` V x 3, ``f`` F x 3, ``shapedirs`` V x 3 x K (identity
components first: 300 in FLAME's files, then expression: 100), ``posedirs`` V x 3 x 36,
``J_regressor`` 5 x V (sparse in pickles), ``weights`` V x 5, ``kintree_table`` 2 x 5 (parents,
joint ids; the root's parent is any out-of-range value). A trimmed file with 300 or fewer
components in ``shapedirs`` cannot say where identity ends; it may carry ``num_shape_components``
(EmoCap's optional key), otherwise all its components count as identity.

``posedirs`` becomes FaceModelData's 36 x (V*3) the way smplx does it: ``reshape(-1, 36).T``, so
pose feature k (row-major entries of R_j - I for joints 1..4) drives row k. FLAME's joints are
root, neck, jaw, left eye, right eye: joint 3 is the performer's left eye, at +x in FLAME's frame.
The loader checks that from the regressed joints and swaps 3 and 4 (regressor rows, weight columns,
pose-corrective blocks) for a file that has them the other way round.

Landmarks: FLAME's ``mediapipe_landmark_embedding.npz`` (105 MediaPipe points) when given or found
beside the model file, else all 478 points registered by :mod:`core.facemodel.correspondence`.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import logging
import pickle
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.errors import FaceModelError
from core.facemodel.correspondence import align_canonical
from core.facemodel.types import JOINT_PARENTS, NUM_JOINTS, NUM_POSE_CORRECTIVES, FaceModelData

log = logging.getLogger(__name__)

FLAME_HINT = (
    "FLAME is licensed: download it after registering at https://flame.is.tue.mpg.de "
    "and point EmoCap to generic_model.pkl / flame2023.pkl"
)
MAX_SHAPE = 300
MAX_EXPRESSION = 100
EMBEDDING_FILE_NAME = "mediapipe_landmark_embedding.npz"
REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
NUM_MEDIAPIPE_POINTS = 478


# ---------------------------------------------------------------------------------------------
# Restricted unpickling


class _PickledState:
    """Stands in for a class the loader does not import: keeps what the pickle stored for it."""

    state = None  # set by __setstate__; stays None for an object pickled without state
    args: tuple = ()

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.state = None
        obj.args = args
        return obj

    def __init__(self, *args, **kwargs) -> None:  # protocol 0/1 pickles may call the class
        pass

    def __setstate__(self, state) -> None:
        self.state = state


class _ChumpyStandIn(_PickledState):
    """Whatever chumpy object the file holds; ``Ch`` pickles its ``__dict__``, the value under ``x``."""

    chumpy_name = "chumpy.Ch"


class _SparseStandIn(_PickledState):
    """A scipy.sparse matrix as pickled: its ``__dict__`` (data, indices, indptr, _shape, ...)."""

    sparse_name = "csc_matrix"


_SPARSE_FORMATS = ("csc", "csr", "coo")
_NUMPY_NAMES = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer", "frombuffer"}
_SAFE_GLOBALS = {
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("builtins", "tuple"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("builtins", "str"),
    ("builtins", "int"),
    ("builtins", "float"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
}


class _FlameUnpickler(pickle.Unpickler):
    def __init__(self, file) -> None:
        super().__init__(file, encoding="latin1")
        self._standins: dict[tuple[str, str], type] = {}
        self.saw_chumpy = False

    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            self.saw_chumpy = True
            return self._standin(_ChumpyStandIn, module, name, chumpy_name=f"{module}.{name}")
        if module.startswith("scipy.sparse"):
            if name[:3] in _SPARSE_FORMATS and name.endswith(("_matrix", "_array")):
                return self._standin(_SparseStandIn, module, name, sparse_name=name)
            raise pickle.UnpicklingError(f"unsupported sparse matrix type {module}.{name}")
        if module == "numpy" or module.startswith(("numpy.core", "numpy._core")):
            if name in _NUMPY_NAMES:
                return _numpy_global(module, name)
            raise pickle.UnpicklingError(f"unexpected NumPy object {module}.{name}")
        mapped = _compat_pickle.NAME_MAPPING.get((module, name))
        if mapped is None:
            mapped = (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
        if mapped in _SAFE_GLOBALS:
            return getattr(importlib.import_module(mapped[0]), mapped[1])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (a FLAME file holds only arrays)")

    def _standin(self, base: type, module: str, name: str, **attrs) -> type:
        key = (module, name)
        if key not in self._standins:
            self._standins[key] = type(f"{base.__name__}_{name}", (base,), attrs)
        return self._standins[key]


def _numpy_global(module: str, name: str):
    for candidate in (module, module.replace("numpy._core", "numpy.core"), module.replace("numpy.core", "numpy._core")):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"NumPy has no {module}.{name}")


def _plain(value, key: str):
    """A pickled value as a NumPy array / scipy.sparse matrix / plain Python value."""
    if isinstance(value, _SparseStandIn):
        return _sparse_from_state(value, key)
    if isinstance(value, _ChumpyStandIn):
        state = value.state
        if isinstance(state, tuple) and state and isinstance(state[0], dict):
            state = state[0]
        if isinstance(state, dict) and "x" in state:
            return np.asarray(_plain(state["x"], key))
        raise _BadFile(f"'{key}' is a chumpy {value.chumpy_name} expression, not a stored array")
    return value


def _sparse_from_state(value: _SparseStandIn, key: str):
    state = value.state if isinstance(value.state, dict) else {}
    shape = state.get("_shape", state.get("shape"))
    kind = value.sparse_name[:3]
    try:
        shape = tuple(int(n) for n in shape)
        if kind == "coo":
            if "coords" in state:
                row, col = state["coords"]
            else:
                row, col = state["row"], state["col"]
            return sp.coo_matrix((state["data"], (row, col)), shape=shape)
        cls = sp.csc_matrix if kind == "csc" else sp.csr_matrix
        return cls((state["data"], state["indices"], state["indptr"]), shape=shape)
    except (KeyError, TypeError, ValueError) as err:
        raise _BadFile(f"'{key}' is a sparse matrix that cannot be rebuilt ({err})") from None


class _BadFile(Exception):
    """Internal: what is wrong with the file (turned into a FaceModelError with the path and hint)."""


# ---------------------------------------------------------------------------------------------
# Reading


_IMAGE_MAGIC = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"BM": "a BMP image",
}


def _read_raw(path: Path) -> tuple[dict, str, bool]:
    """The file's key -> value mapping, its format ("pickle"/"npz"), and whether it used chumpy."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}, "npz", False
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
            raise _BadFile(f"a zip archive but not a readable .npz ({_short(err)})") from None
    for magic, what in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            raise _BadFile(f"{what}, not a FLAME model (.pkl or .npz)")
    try:
        with open(path, "rb") as f:
            unpickler = _FlameUnpickler(f)
            raw = unpickler.load()
    except _BadFile:
        raise
    except pickle.UnpicklingError as err:
        if not head.startswith(b"\x80"):
            raise _BadFile("not a FLAME model: neither a pickle nor an .npz file") from None
        raise _BadFile(f"not a FLAME pickle ({_short(err)})") from None
    except Exception as err:  # noqa: BLE001 - any failure to unpickle means "not a FLAME file"
        if not head.startswith(b"\x80"):
            raise _BadFile("not a FLAME model: neither a pickle nor an .npz file") from None
        raise _BadFile(f"a damaged or foreign pickle ({type(err).__name__}: {_short(err)})") from None
    if not isinstance(raw, dict):
        raise _BadFile(f"a pickled {type(raw).__name__}, not FLAME's dictionary of arrays")
    return {str(k): _plain(v, str(k)) for k, v in raw.items()}, "pickle", unpickler.saw_chumpy


def _short(err: BaseException) -> str:
    return " ".join(str(err).split())[:160] or type(err).__name__


def _array(raw: dict, key: str, ndim: int, dtype=np.float64) -> np.ndarray:
    value = raw[key]
    if sp.issparse(value):
        try:  # corrupt indices would make toarray write outside its array
            value.check_format(full_check=True)
        except (ValueError, TypeError, IndexError) as err:
            raise _BadFile(f"'{key}' is a damaged sparse matrix ({_short(err)})") from None
        value = value.toarray()
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise _BadFile(f"'{key}' is not a numeric array") from None
    if array.ndim != ndim:
        raise _BadFile(f"'{key}' has shape {array.shape}, expected {ndim} dimensions")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise _BadFile(f"'{key}' contains NaN or infinite values")
    return array


def _model_name(path: Path) -> str:
    for text in (path.name, path.parent.name):
        match = re.search(r"flame[ _\-]?(20\d\d)", text, re.IGNORECASE)
        if match:
            return f"flame{match.group(1)}"
    if path.stem.lower() == "generic_model":
        return "flame2020"
    return "flame"


def _fail(path: Path, problem: str) -> FaceModelError:
    return FaceModelError(f"{path}: {problem}. {FLAME_HINT}")


# ---------------------------------------------------------------------------------------------
# Public API


def load_flame(
    path: str | Path,
    *,
    num_shape: int = 100,
    num_expression: int = 50,
    embedding_path: str | Path | None = None,
) -> FaceModelData:
    """Read a FLAME model file (pickle or .npz) into :class:`FaceModelData`.

    num_shape: identity components to keep (1..300), num_expression: expression components
    (1..100). embedding_path: FLAME's ``mediapipe_landmark_embedding.npz``; when None, such a file
    beside ``path`` is used if present, else all 478 MediaPipe points are registered on the
    template. Raises FaceModelError (one line, with where to get FLAME) for a missing, unreadable or
    inconsistent file, or when more components are asked for than the file has.
    """
    started = time.perf_counter()
    path = Path(path)
    if not (isinstance(num_shape, (int, np.integer)) and 1 <= num_shape <= MAX_SHAPE):
        raise FaceModelError(
            f"num_shape must be 1..{MAX_SHAPE} (FLAME has {MAX_SHAPE} identity components), not {num_shape}"
        )
    if not (isinstance(num_expression, (int, np.integer)) and 1 <= num_expression <= MAX_EXPRESSION):
        raise FaceModelError(
            f"num_expression must be 1..{MAX_EXPRESSION} (FLAME has {MAX_EXPRESSION} expression components), "
            f"not {num_expression}"
        )
    if not path.is_file():
        raise _fail(path, "a folder, not a FLAME model file" if path.is_dir() else "FLAME model file not found")
    try:
        raw, file_format, used_chumpy = _read_raw(path)
        arrays, info = _arrays_from_raw(raw, num_shape, num_expression, path)
    except _BadFile as err:
        raise _fail(path, str(err)) from None
    except OSError as err:
        raise _fail(path, f"cannot read the FLAME model file ({_short(err)})") from None

    embedding = Path(embedding_path) if embedding_path is not None else path.parent / EMBEDDING_FILE_NAME
    if embedding_path is not None or embedding.is_file():
        landmark_faces, landmark_bary, landmark_ids = _read_embedding(embedding, len(arrays["faces"]))
        info["landmarks"] = f"embedding {embedding}"
    else:
        try:
            registration = align_canonical(arrays["template"], arrays["faces"])
        except (ValueError, IndexError, np.linalg.LinAlgError) as err:
            raise _fail(path, f"its mesh cannot be registered to the face's landmarks ({_short(err)})") from None
        landmark_faces, landmark_bary = registration.face_index, registration.barycentric
        landmark_ids = np.arange(NUM_MEDIAPIPE_POINTS, dtype=np.int64)
        info.update(
            landmarks="computed",
            correspondence_rms_m=registration.rms,
            correspondence_max_m=float(registration.distance.max()),
            correspondence_scale_m=registration.scale,
        )

    info.update(source=str(path), format=file_format, chumpy=used_chumpy)
    data = FaceModelData(
        name=_model_name(path),
        template=arrays["template"].astype(np.float32),
        faces=arrays["faces"],
        shape_basis=arrays["shape_basis"].astype(np.float32),
        expression_basis=arrays["expression_basis"].astype(np.float32),
        pose_basis=arrays["pose_basis"].astype(np.float32),
        joint_regressor=arrays["joint_regressor"].astype(np.float32),
        skinning_weights=arrays["skinning_weights"].astype(np.float32),
        landmark_faces=np.asarray(landmark_faces, np.int64),
        landmark_barycentric=np.asarray(landmark_bary, np.float32),
        landmark_ids=np.asarray(landmark_ids, np.int64),
        expression_names=tuple(f"exp{i:03d}" for i in range(num_expression)),
        expression_bounds=None,
        info=info,
    )
    try:
        data.validate()
    except ValueError as err:
        raise _fail(path, f"inconsistent model: {err}") from None
    log.info(
        "loaded %s from %s: %d vertices, %d identity + %d expression components, %d landmarks (%s) in %.2f s",
        data.name, path.name, data.num_vertices, num_shape, num_expression, len(data.landmark_ids),
        info["landmarks"].split(" ")[0], time.perf_counter() - started,
    )
    return data


def _arrays_from_raw(raw: dict, num_shape: int, num_expression: int, path: Path) -> tuple[dict, dict]:
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise _BadFile(f"not a FLAME model: missing {', '.join(missing)}")

    template = _array(raw, "v_template", 2)
    v = template.shape[0]
    if template.shape[1] != 3 or v < 4:
        raise _BadFile(f"'v_template' has shape {template.shape}, expected (V, 3)")
    faces = _array(raw, "f", 2)
    if not np.array_equal(faces, np.round(faces)):
        raise _BadFile("'f' is not an integer array of triangles")
    faces = faces.astype(np.int64)
    if faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= v:
        raise _BadFile(f"'f' has shape {faces.shape} or indices outside 0..{v - 1}")

    shapedirs = _array(raw, "shapedirs", 3)
    if shapedirs.shape[:2] != (v, 3):
        raise _BadFile(f"'shapedirs' has shape {shapedirs.shape}, expected ({v}, 3, K) for {v} vertices")
    total = shapedirs.shape[2]
    if "num_shape_components" in raw:
        file_shape = int(np.asarray(raw["num_shape_components"]))
        if not 0 <= file_shape <= total:
            raise _BadFile(f"'num_shape_components' is {file_shape} but 'shapedirs' has {total} components")
    else:
        file_shape = MAX_SHAPE if total > MAX_SHAPE else total
    file_expression = total - file_shape
    if num_shape > file_shape:
        raise FaceModelError(f"asked for {num_shape} identity components but {path} has {file_shape}")
    if num_expression > file_expression:
        raise FaceModelError(f"asked for {num_expression} expression components but {path} has {file_expression}")

    posedirs = _array(raw, "posedirs", 3)
    if posedirs.shape != (v, 3, NUM_POSE_CORRECTIVES):
        raise _BadFile(f"'posedirs' has shape {posedirs.shape}, expected ({v}, 3, {NUM_POSE_CORRECTIVES})")
    pose_basis = posedirs.reshape(-1, NUM_POSE_CORRECTIVES).T  # 36 x (V*3), as smplx

    regressor = _array(raw, "J_regressor", 2)
    if regressor.shape != (NUM_JOINTS, v):
        raise _BadFile(f"'J_regressor' has shape {regressor.shape}, expected ({NUM_JOINTS}, {v})")
    weights = _array(raw, "weights", 2)
    if weights.shape != (v, NUM_JOINTS):
        raise _BadFile(f"'weights' has shape {weights.shape}, expected ({v}, {NUM_JOINTS})")
    sums = weights.sum(axis=1)
    if np.abs(sums - 1).max() > 1e-2:
        raise _BadFile(f"'weights' rows sum to {sums.min():.3f}..{sums.max():.3f}, expected 1")
    weights = weights / sums[:, None]

    kintree = None
    if np.asarray(raw["kintree_table"]).dtype.kind in "iuf":
        kintree = _array(raw, "kintree_table", 2, dtype=np.int64)
    if kintree is None or kintree.shape != (2, NUM_JOINTS):
        raise _BadFile(f"'kintree_table' has shape {np.shape(raw['kintree_table'])}, expected (2, {NUM_JOINTS})")
    ids = kintree[1]
    parents = {int(i): int(p) for p, i in zip(kintree[0], ids)}
    expected = dict(enumerate(JOINT_PARENTS))
    got = {i: (p if 0 <= p < NUM_JOINTS else -1) for i, p in parents.items()}
    if sorted(ids.tolist()) != list(range(NUM_JOINTS)) or got != expected:
        listed = [got.get(i) for i in range(NUM_JOINTS)]
        raise _BadFile(f"'kintree_table' parents {listed} are not FLAME's {list(JOINT_PARENTS)}")

    # FLAME: joint 3 is the performer's left eye (+x). Swap 3 and 4 for a file that has them the other way.
    joints = regressor @ template
    swapped = bool(joints[3, 0] < joints[4, 0])
    if swapped:
        log.warning("%s stores the right eye as joint 3; swapping joints 3 and 4 to FLAME's order", path.name)
        regressor = regressor[[0, 1, 2, 4, 3]]
        weights = weights[:, [0, 1, 2, 4, 3]]
        blocks = list(range(18)) + list(range(27, 36)) + list(range(18, 27))  # 9 rows per joint 1..4
        pose_basis = pose_basis[blocks]
        joints = joints[[0, 1, 2, 4, 3]]
    if not joints[2, 1] < (joints[3, 1] + joints[4, 1]) / 2:
        log.warning("%s: the jaw joint is not below the eyes; is the model in FLAME's frame (y up)?", path.name)

    arrays = {
        "template": template,
        "faces": faces,
        "shape_basis": shapedirs[:, :, :num_shape],
        "expression_basis": shapedirs[:, :, file_shape : file_shape + num_expression],
        "pose_basis": pose_basis,
        "joint_regressor": regressor,
        "skinning_weights": weights,
    }
    info = {
        "file_shape_components": file_shape,
        "file_expression_components": file_expression,
        "eye_joints_swapped": swapped,
    }
    return arrays, info


def _read_embedding(path: Path, num_faces: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FLAME's MediaPipe landmark embedding: (face index L, barycentric L x 3, MediaPipe ids L)."""
    problem = None
    if not path.is_file():
        raise FaceModelError(f"{path}: landmark embedding file not found (FLAME's {EMBEDDING_FILE_NAME})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("lmk_face_idx", "lmk_b_coords", "landmark_indices") if k not in npz.files]
            if missing:
                problem = f"missing {', '.join(missing)}"
            else:
                faces = np.asarray(npz["lmk_face_idx"]).astype(np.int64).ravel()
                bary = np.asarray(npz["lmk_b_coords"], np.float64)
                ids = np.asarray(npz["landmark_indices"]).astype(np.int64).ravel()
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        problem = f"not a readable .npz ({_short(err)})"
    if problem is None:
        n = len(faces)
        if bary.shape != (n, 3) or ids.shape != (n,) or n == 0:
            problem = (
                f"lmk_face_idx {faces.shape}, lmk_b_coords {bary.shape}, landmark_indices {ids.shape} do not match"
            )
        elif faces.min() < 0 or faces.max() >= num_faces:
            problem = f"lmk_face_idx outside the model's {num_faces} triangles (embedding for another mesh?)"
        elif ids.min() < 0 or ids.max() >= NUM_MEDIAPIPE_POINTS:
            problem = f"landmark_indices outside MediaPipe's 0..{NUM_MEDIAPIPE_POINTS - 1}"
        elif not np.isfinite(bary).all():
            problem = "lmk_b_coords contains NaN or infinite values"
    if problem is not None:
        raise FaceModelError(f"{path}: not a FLAME landmark embedding: {problem}")
    return faces, bary, ids
