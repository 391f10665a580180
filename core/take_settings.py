"""The pipeline settings a take was made with, read back from its manifest, so that a repair
(``emocap check TAKE --repair``) recomputes each stage exactly as the analysis did."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.emotion.stage import EmotionConfig
from core.facemodel.loading import ModelChoice
from core.fit.fitter import FitConfig
from core.microexpr.config import RefineConfig
from core.pipeline import PipelineConfig
from core.take import Take


def dataclass_from_dict(cls, data: dict[str, Any] | None):
    """An instance of the dataclass ``cls`` from its ``dataclasses.asdict`` form after a JSON round
    trip: unknown keys are ignored, nested dataclasses and tuples restored, missing ones default."""
    default = cls()
    values = {}
    for f in dataclasses.fields(cls):
        if not isinstance(data, dict) or f.name not in data:
            continue
        value, current = data[f.name], getattr(default, f.name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            value = dataclass_from_dict(type(current), value)
        elif isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


def neutral_of(setting: dict | None) -> str | None:
    """The ``--neutral`` value a stored fit's neutral describes (core.take.records.FitRecord.neutral)."""
    if setting is None:
        return None
    if "frame" in setting:
        return str(setting["frame"])
    return (setting.get("image") or {}).get("path")


def pipeline_config_of(take: Take) -> PipelineConfig:
    """The PipelineConfig that produced ``take`` (its stages as stored: the fit or encoder, the
    emotion stage, the refinement). The device is the CPU when the take was made on it, else auto."""
    m = take.manifest
    stored = m.settings
    config = dict(
        device="cpu" if stored.device == "cpu" else "auto",
        chunk_size=stored.chunk_size, crop_size=stored.crop_size, image_fps=stored.image_fps, model=None,
    )
    if m.fit is not None:
        config["model"] = ModelChoice.from_settings(m.fit.settings)
        if m.fit.method == "encoder":
            config |= {"method": "encoder", "encoder": m.fit.settings.get("encoder")}
        else:
            config |= {"fit": dataclass_from_dict(FitConfig, m.fit.settings.get("fit")), "neutral": neutral_of(m.fit.neutral)}
    if m.emotion is not None:
        config["emotion"] = dataclass_from_dict(EmotionConfig, m.emotion.settings)
    if m.microexpr is not None:
        config["refine"] = dataclass_from_dict(RefineConfig, m.microexpr.settings)
    return PipelineConfig(**config)
