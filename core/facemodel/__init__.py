"""Face models: one FLAME-style articulated model, loaded from FLAME files or the built-in open model."""

from core.facemodel.model import FaceModel
from core.facemodel.types import JOINT_NAMES, FaceModelData, FaceModelOutput, FaceParams

__all__ = ["FaceModel", "FaceModelData", "FaceModelOutput", "FaceParams", "JOINT_NAMES"]
