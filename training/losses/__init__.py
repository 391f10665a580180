"""Training losses, each one documented function with a known-answer test (tests/training)."""

from training.losses.emotion import emotion_consistency_loss, emotion_intensity, intensity_aware_emotion_loss
from training.losses.landmarks import landmark_reprojection_loss
from training.losses.photometric import photometric_loss
from training.losses.regularisers import expression_regulariser, identity_consistency, identity_regulariser
from training.losses.supervision import expression_supervision_loss, parameter_supervision_loss

__all__ = [
    "emotion_consistency_loss", "emotion_intensity", "intensity_aware_emotion_loss", "landmark_reprojection_loss",
    "photometric_loss", "expression_regulariser", "identity_consistency", "identity_regulariser",
    "expression_supervision_loss", "parameter_supervision_loss",
]
