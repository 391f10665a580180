"""The settings every recording of a batch shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.analysis_options import AnalysisOptions
from core.errors import ExportError


@dataclass(frozen=True)
class BatchSettings:
    """analysis: the options of ``emocap analyze`` each recording is analysed with (no neutral
    frame and no start timecode: those belong to one recording). exports: the formats written
    next to each take (core/export/registry.py names), as ``OUT/<take>_<format><suffix>``."""

    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    exports: tuple[str, ...] = ()

    def check(self) -> None:
        """Fail at once (EmoCapError) on settings no recording can use: an unknown export format,
        EmoNet without its licence accepted, a performer profile that is not there."""
        from core.analysis_options import pipeline_config
        from core.export.registry import SUFFIXES

        unknown = [f for f in self.exports if f not in SUFFIXES]
        if unknown:
            raise ExportError(f"unknown export format '{unknown[0]}': use one of {', '.join(sorted(SUFFIXES))}")
        pipeline_config(self.analysis)
        if self.analysis.model is not None and self.analysis.model.performer:
            self.analysis.model.settings()  # reads the profile's digest: PerformerProfileError when missing


def parse_exports(text: str | None) -> tuple[str, ...]:
    """``"fbx, arkit_csv"`` -> ("fbx", "arkit_csv"), each once, in order."""
    if not text:
        return ()
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
