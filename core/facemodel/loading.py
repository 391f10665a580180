"""Choose and load the face model an analysis uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import FaceModelError
from core.facemodel.model import FaceModel

MODEL_KINDS = ("open", "flame")


@dataclass(frozen=True)
class ModelChoice:
    """kind: "open" (built in, the default) or "flame" (the user's own FLAME file at flame_path,
    with num_shape identity and num_expression expression components)."""

    kind: str = "open"
    flame_path: str | None = None
    num_shape: int = 100
    num_expression: int = 50

    def settings(self) -> dict:
        if self.kind == "open":
            from core.facemodel.open_model import MODEL_VERSION, open_model_digest

            # a rebuilt model refits takes
            return {"model": "open", "open_model_version": MODEL_VERSION, "open_model_sha256": open_model_digest()}
        return {
            "model": "flame", "flame_path": str(Path(self.flame_path).resolve()) if self.flame_path else None,
            "num_shape": self.num_shape, "num_expression": self.num_expression,
        }

    @classmethod
    def from_settings(cls, settings: dict) -> ModelChoice:
        """The choice that :meth:`settings` describes (as stored in a take's fit settings)."""
        kind = settings.get("model", "open")
        if kind == "open":
            return cls()
        return cls(kind=kind, flame_path=settings.get("flame_path"), num_shape=int(settings.get("num_shape", 100)),
                   num_expression=int(settings.get("num_expression", 50)))


def load_face_model(choice: ModelChoice) -> FaceModel:
    """Load the chosen model; FaceModelError with a one-line reason when it cannot be used."""
    if choice.kind == "open":
        from core.facemodel.open_model import load_open_model

        return FaceModel(load_open_model())
    if choice.kind == "flame":
        if not choice.flame_path:
            raise FaceModelError(
                "--model flame needs --flame PATH to your FLAME file (generic_model.pkl or flame2023.pkl); "
                "FLAME is licensed: register and download it at https://flame.is.tue.mpg.de"
            )
        from core.facemodel.flame import load_flame

        return FaceModel(load_flame(choice.flame_path, num_shape=choice.num_shape, num_expression=choice.num_expression))
    raise FaceModelError(f"unknown face model '{choice.kind}': use one of {', '.join(MODEL_KINDS)}")
