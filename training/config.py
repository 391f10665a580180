"""Training settings, read from YAML (training/configs/*.yaml) into frozen dataclasses.

Layout of a config file (every key but ``data`` and ``out`` has a default)::

    out: runs/example            # run folder: checkpoint.pt, encoder.pt, log.jsonl, config.yaml
    device: auto                 # auto (a CUDA GPU when present) | cpu | cuda | cuda:N
    threads: 2                   # CPU threads for torch (0: torch's default, one per core)
    seed: 0
    model: {kind: open}          # or {kind: flame, flame_path: ..., num_shape: 100, num_expression: 50}
    encoder: {backbone: mobilenetv2, width: 1.0, input_size: 128}
    data:                        # one entry per dataset; kinds: take, image_folder, affectnet, scan4d
      - {kind: take, path: takes/actor, emotion_recogniser: fer}
    validation: {every: 5, block: 24}   # every 5th block of 24 consecutive samples is held out
    optim: {epochs: 20, batch_size: 32, lr: 0.002, weight_decay: 0.0001}
    losses: {landmarks: 1.0, expression: 1.0, ...}   # see LossWeights
    augment: {shift: 0.03, scale: 0.05, colour: 0.1}

Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from core.errors import EmoCapError

DATA_KINDS = ("take", "image_folder", "affectnet", "scan4d")


class ConfigError(EmoCapError):
    """A training configuration is missing, not YAML, or has a wrong key or value."""


@dataclass(frozen=True)
class DataSpec:
    """One dataset. kind: take | image_folder | affectnet | scan4d (layouts: training/data/).
    path: its folder. emotion_recogniser: for takes, whose emotion timeline is the emotion target
    ("fer" or "emonet"). pseudo_weight: weight of fitter results as pseudo ground truth (takes);
    ground truth (scan4d) has weight 1. max_samples: keep at most this many (evenly spread; 0 = all)."""

    kind: str
    path: str
    emotion_recogniser: str = "fer"
    pseudo_weight: float = 1.0
    max_samples: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """The face model trained for (core.facemodel.loading.ModelChoice); performer: a performer
    profile's path (open model only)."""

    kind: str = "open"
    flame_path: str | None = None
    num_shape: int = 100
    num_expression: int = 50
    performer: str | None = None


@dataclass(frozen=True)
class EncoderSpec:
    backbone: str = "mobilenetv2"
    width: float = 1.0
    input_size: int = 128


@dataclass(frozen=True)
class ValidationSpec:
    """Every ``every``-th block of ``block`` consecutive samples (in time order for clips and
    sequences, file order for folders) is held out; every = 0 holds out nothing."""

    every: int = 5
    block: int = 24


@dataclass(frozen=True)
class OptimSpec:
    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0


@dataclass(frozen=True)
class LossWeights:
    """Weights of the training losses (training/losses/); 0 switches a loss off (and its cost).

    landmarks: 2D (+ weak depth) landmark reprojection. photometric: texture-warp render vs image
    (actor textures only). expression: direct 3D expression supervision (FIELDS) against ground
    truth or the fitter's pseudo ground truth. parameters: the other parameter groups (pose,
    camera, identity) against the same targets. emotion: intensity-aware loss of the emotion
    branch. reconstruction_emotion: intensity-aware loss of a frozen recogniser on the render.
    consistency: emotion consistency (recogniser on render vs on image). identity_reg,
    expression_reg: regularisers. exaggeration, muting: weights of too strong / too weak emotion
    intensity in the intensity-aware losses. z_weight: weight of MediaPipe's depth in the
    landmark loss. recogniser: the frozen recogniser of the render losses ("fer" or "emonet")."""

    landmarks: float = 1.0
    photometric: float = 0.0
    expression: float = 1.0
    parameters: float = 1.0
    emotion: float = 0.5
    reconstruction_emotion: float = 0.0
    consistency: float = 0.0
    identity_reg: float = 1e-4
    expression_reg: float = 1e-4
    exaggeration: float = 1.0
    muting: float = 1.0
    z_weight: float = 0.2
    recogniser: str = "fer"

    def uses_render(self) -> bool:
        return self.photometric > 0 or self.reconstruction_emotion > 0 or self.consistency > 0

    def uses_recogniser(self) -> bool:
        return self.reconstruction_emotion > 0 or self.consistency > 0


@dataclass(frozen=True)
class AugmentSpec:
    """Random per-sample similarity jitter (shift in crop sides, scale as a fraction) and colour
    jitter (brightness and contrast as fractions); targets move with the image."""

    shift: float = 0.03
    scale: float = 0.05
    colour: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    out: str
    data: tuple[DataSpec, ...]
    device: str = "auto"
    threads: int = 2
    seed: int = 0
    model: ModelSpec = ModelSpec()
    encoder: EncoderSpec = EncoderSpec()
    validation: ValidationSpec = ValidationSpec()
    optim: OptimSpec = OptimSpec()
    losses: LossWeights = LossWeights()
    augment: AugmentSpec = AugmentSpec()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["data"] = [dataclasses.asdict(s) for s in self.data]
        return d

    def result_dict(self) -> dict:
        """The settings that change the trained weights (a run resumes only with the same ones)."""
        d = self.to_dict()
        d.pop("device")
        d.pop("threads")
        return d


def _build(cls, values, where: str):
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping, got {values!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(unknown))} in {where}; known: {', '.join(sorted(names))}")
    try:
        return cls(**values)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from err


def config_from_dict(raw: dict, base: Path | None = None) -> TrainConfig:
    """A TrainConfig from a parsed mapping; relative paths are taken from ``base``."""
    if not isinstance(raw, dict):
        raise ConfigError("a training config must be a YAML mapping")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    if "out" not in raw or not raw.get("data"):
        raise ConfigError("a training config needs 'out' (run folder) and 'data' (a list of datasets)")

    def resolve(p: str | None) -> str | None:
        if p is None:
            return None
        path = Path(p).expanduser()
        return str(path if path.is_absolute() or base is None else (base / path).resolve())

    data = []
    for i, entry in enumerate(raw["data"]):
        spec = _build(DataSpec, entry, f"data[{i}]")
        if spec.kind not in DATA_KINDS:
            raise ConfigError(f"data[{i}]: unknown kind '{spec.kind}'; use one of {', '.join(DATA_KINDS)}")
        data.append(dataclasses.replace(spec, path=resolve(spec.path)))
    model = _build(ModelSpec, raw.get("model"), "model")
    model = dataclasses.replace(model, flame_path=resolve(model.flame_path), performer=resolve(model.performer))
    losses = _build(LossWeights, raw.get("losses"), "losses")
    if losses.recogniser not in ("fer", "emonet"):
        raise ConfigError(f"losses.recogniser must be fer or emonet, not {losses.recogniser!r}")
    return TrainConfig(
        out=resolve(str(raw["out"])), data=tuple(data), device=str(raw.get("device", "auto")),
        threads=int(raw.get("threads", 2)), seed=int(raw.get("seed", 0)), model=model,
        encoder=_build(EncoderSpec, raw.get("encoder"), "encoder"),
        validation=_build(ValidationSpec, raw.get("validation"), "validation"),
        optim=_build(OptimSpec, raw.get("optim"), "optim"), losses=losses,
        augment=_build(AugmentSpec, raw.get("augment"), "augment"),
    )


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML training config; ConfigError with a one-line reason when it is unusable."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no training config at {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    return config_from_dict(raw, base=path.parent.resolve())


def config_to_yaml(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)


