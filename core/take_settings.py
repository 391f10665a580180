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
    """The ``--neutral`` value a stored fit setting describes."""
    if not isinstance(setting, dict):
        return None
    if "frame" in setting:
        return str(setting["frame"])
    return (setting.get("image") or {}).get("path")


def pipeline_config_of(take: Take) -> PipelineConfig:
    """The PipelineConfig that produced ``take`` (its stages as stored: the fit or encoder, the
    emotion stage, the refinement). The device is the CPU when the take was made on it, else auto."""
    m = take.manifest
    stored = m.settings
    base = PipelineConfig()
    config = dict(
        device="cpu" if stored.get("device", "cpu") == "cpu" else "auto",
        chunk_size=int(stored.get("chunk_size", base.chunk_size)),
        crop_size=int(stored.get("crop_size", base.crop_size)),
        image_fps=float(stored.get("image_fps", base.image_fps)),
        model=None,
    )
    fit = (m.fit or {}).get("settings")
    if isinstance(fit, dict):
        config["model"] = ModelChoice.from_settings(fit)
        if fit.get("method") == "encoder":
            config |= {"method": "encoder", "encoder": fit.get("encoder")}
        else:
            config |= {"fit": dataclass_from_dict(FitConfig, fit.get("fit")), "neutral": neutral_of(fit.get("neutral"))}
    emotion = (m.emotion or {}).get("settings")
    if isinstance(emotion, dict):
        config["emotion"] = dataclass_from_dict(EmotionConfig, emotion)
    refine = (m.microexpr or {}).get("settings")
    if isinstance(refine, dict):
        config["refine"] = dataclass_from_dict(RefineConfig, refine)
    return PipelineConfig(**config)
