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
    with num_shape identity and num_expression expression components). performer: with the open
    model, the path of a performer profile (core/performer/profile.py: their neutral face and
    shapes); performer_sha256: the profile's digest a take was fitted with (set when read back from
    a take's settings, so that a changed profile is noticed instead of silently used)."""

    kind: str = "open"
    flame_path: str | None = None
    num_shape: int = 100
    num_expression: int = 50
    performer: str | None = None
    performer_sha256: str | None = None

    def settings(self) -> dict:
        if self.kind == "open":
            from core.facemodel.open_model import MODEL_VERSION, open_model_digest

            # a rebuilt model refits takes
            settings = {"model": "open", "open_model_version": MODEL_VERSION, "open_model_sha256": open_model_digest()}
            if self.performer:
                from core.performer.profile import profile_digest

                path = Path(self.performer).resolve()
                settings |= {"performer": str(path), "performer_sha256": profile_digest(path)}
            return settings
        return {
            "model": "flame", "flame_path": str(Path(self.flame_path).resolve()) if self.flame_path else None,
            "num_shape": self.num_shape, "num_expression": self.num_expression,
        }

    @classmethod
    def from_settings(cls, settings: dict) -> ModelChoice:
        """The choice that :meth:`settings` describes (as stored in a take's fit settings)."""
        kind = settings.get("model", "open")
        if kind == "open":
            return cls(performer=settings.get("performer"), performer_sha256=settings.get("performer_sha256"))
        return cls(kind=kind, flame_path=settings.get("flame_path"), num_shape=int(settings.get("num_shape", 100)),
                   num_expression=int(settings.get("num_expression", 50)))


def load_face_model(choice: ModelChoice) -> FaceModel:
    """Load the chosen model; FaceModelError with a one-line reason when it cannot be used."""
    if choice.kind == "open":
        from core.facemodel.open_model import load_open_model

        if choice.performer:
            return FaceModel(load_performer_model(choice))
        return FaceModel(load_open_model())
    if choice.performer:
        raise FaceModelError("a performer profile (--performer) works with the open model only, not with FLAME")
    if choice.kind == "flame":
        if not choice.flame_path:
            raise FaceModelError(
                "--model flame needs --flame PATH to your FLAME file (generic_model.pkl or flame2023.pkl); "
                "FLAME is licensed: register and download it at https://flame.is.tue.mpg.de"
            )
        from core.facemodel.flame import load_flame

        return FaceModel(load_flame(choice.flame_path, num_shape=choice.num_shape, num_expression=choice.num_expression))
    raise FaceModelError(f"unknown face model '{choice.kind}': use one of {', '.join(MODEL_KINDS)}")


def load_performer_model(choice: ModelChoice):
    """The open model with the performer profile of ``choice`` applied (FaceModelData).
    PerformerProfileError when the profile is missing, damaged, changed since the take was fitted
    (``performer_sha256``) or learned on another build of the open model."""
    from core.errors import PerformerProfileError
    from core.facemodel.open_model import load_open_model, open_model_digest
    from core.performer.profile import apply_profile, load_profile, profile_digest

    if choice.performer_sha256 and profile_digest(choice.performer) != choice.performer_sha256:
        raise PerformerProfileError(
            f"performer profile {choice.performer} changed since this take was fitted with it: analyse the take "
            "again with it, or restore the profile it was fitted with")
    profile = load_profile(choice.performer)
    if profile.base_model_sha256 != open_model_digest():
        raise PerformerProfileError(
            f"performer profile {choice.performer} was learned on another build of the open model "
            f"({profile.base_model_sha256}, this EmoCap has {open_model_digest()}): calibrate the performer again")
    return apply_profile(load_open_model(), profile)


def performer_profile(choice: ModelChoice | None):
    """The PerformerProfile of ``choice`` (None without one)."""
    if choice is None or not choice.performer:
        return None
    from core.performer.profile import load_profile

    return load_profile(choice.performer)
