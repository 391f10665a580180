"""The options of an analysis as typed values, and the one place they become a PipelineConfig.

``emocap analyze`` (core/cli.py) and ``emocap batch`` (core/batch/) both build their pipeline here,
so that a take analysed in a batch is the take ``analyze`` would have made with the same options.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.emotion.types import AUTO
from core.facemodel.loading import ModelChoice


@dataclass(frozen=True)
class AnalysisOptions:
    """What ``emocap analyze`` is asked for. emotion: measure emotion (with ``recognisers``, a
    comma list or None for the default; EmoNet only with ``accept_emonet``). refine: run the
    micro-expression refiner (``onset``: its neutral onset frame, None: found). carrier: a
    neutral photo whose face wears the curves to judge them (EmotionConfig.carrier).
    emotion_precision: the recognisers' precision (EmotionConfig.precision). The rest are
    PipelineConfig's fields of the same names."""

    device: str = "auto"
    image_fps: float = 30.0
    model: ModelChoice = field(default_factory=ModelChoice)
    emotion: bool = True
    recognisers: str | None = None
    accept_emonet: bool = False
    refine: bool = False
    onset: int | None = None
    method: str = "fit"
    encoder: str | None = None
    neutral: str | None = None
    start_timecode: str | None = None
    carrier: str | None = None
    emotion_precision: str = AUTO


def pipeline_config(options: AnalysisOptions):
    """The PipelineConfig of ``options`` and the notes to add to the summary (a recogniser that
    is not installed). Raises EmoCapError for options that cannot be used (EmoNet named without
    its licence accepted, an unknown recogniser, a carrier face that is not a file)."""
    from core.emotion.carrier import carrier_photo
    from core.emotion.choice import choose_recognisers
    from core.emotion.stage import EmotionConfig
    from core.microexpr.config import RefineConfig
    from core.pipeline import PipelineConfig

    if options.carrier is not None:
        carrier_photo(options.carrier)  # a missing photo fails here, before the analysis starts
    choice = choose_recognisers(options.recognisers, accept_emonet=options.accept_emonet, enabled=options.emotion)
    emotion = EmotionConfig(recognisers=choice.recognisers, carrier=options.carrier,
                            precision=options.emotion_precision) if choice.recognisers else None
    refine = RefineConfig(onset=options.onset) if options.refine else None
    config = PipelineConfig(device=options.device, image_fps=options.image_fps, model=options.model, emotion=emotion,
                            refine=refine, method=options.method, encoder=options.encoder, neutral=options.neutral,
                            start_timecode=options.start_timecode)
    return config, list(choice.notes)
