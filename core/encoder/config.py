"""What defines a face encoder: backbone, input size and the face model's parameter groups."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

BACKBONES = ("mobilenetv2", "resnet50")
# Parameter groups the encoder regresses, in output order. Sizes: identity S, expression E, the
# rest fixed (rotation, neck, jaw 3 axis-angle; eyes 6; camera 4, see core/encoder/crop_space.py).
PARAM_GROUPS = ("identity", "expression", "rotation", "neck", "jaw", "eyes", "camera")
FIXED_SIZES = {"rotation": 3, "neck": 3, "jaw": 3, "eyes": 6, "camera": 4}
NUM_EMOTIONS = 8  # core.emotion.EMOTIONS


@dataclass(frozen=True)
class EncoderConfig:
    """backbone: "mobilenetv2" | "resnet50". width: MobileNetV2's width multiplier (ignored by
    ResNet-50). input_size: side of the square aligned face crop the encoder sees, pixels (a
    multiple of 32). model_name, num_shape, num_expression, expression_bounds: the face model the
    parameters belong to (``FaceModel.name``, S, E, (low, high) or None). zero_groups: parameter
    groups the encoder always outputs as zero (the open model keeps neck, jaw and eyes at zero: its
    ARKit curves carry them)."""

    backbone: str = "mobilenetv2"
    width: float = 1.0
    input_size: int = 128
    model_name: str = "open"
    num_shape: int = 48
    num_expression: int = 52
    expression_bounds: tuple[float, float] | None = (0.0, 1.0)
    zero_groups: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone '{self.backbone}': use one of {', '.join(BACKBONES)}")
        if self.input_size % 32 or self.input_size < 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {self.input_size}")
        unknown = set(self.zero_groups) - set(PARAM_GROUPS)
        if unknown:
            raise ValueError(f"unknown parameter groups {sorted(unknown)}")

    def group_sizes(self) -> dict[str, int]:
        """Parameter group -> size, in output order."""
        return {"identity": self.num_shape, "expression": self.num_expression, **FIXED_SIZES}

    @property
    def num_params(self) -> int:
        return sum(self.group_sizes().values())

    def group_slices(self) -> dict[str, slice]:
        """Parameter group -> its slice of the flat parameter vector."""
        out, start = {}, 0
        for name, size in self.group_sizes().items():
            out[name] = slice(start, start + size)
            start += size
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["expression_bounds"] = list(self.expression_bounds) if self.expression_bounds else None
        d["zero_groups"] = list(self.zero_groups)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if known.get("expression_bounds") is not None:
            known["expression_bounds"] = tuple(float(b) for b in known["expression_bounds"])
        known["zero_groups"] = tuple(known.get("zero_groups") or ())
        return cls(**known)

    @classmethod
    def for_model(cls, model, **kwargs) -> EncoderConfig:
        """Head sizes from a FaceModel (open model or FLAME)."""
        bounds = model.expression_bounds
        return cls(model_name=model.name, num_shape=model.num_shape, num_expression=model.num_expression,
                   expression_bounds=tuple(bounds) if bounds is not None else None, **kwargs)
