"""The open model calibrated on photographs of people seen both neutral and expressive.

Run by ``scripts/build_open_model.py`` (which reads the photographs and observes them); no I/O here.
Starting from the authored model (core/facemodel/open_model_authoring.py):

1. **Neutral face and identity.** Neutral photos are brought onto the template by a similarity; the
   template becomes the symmetrised mean neutral face, and the identity basis becomes the principal
   components of neutral faces (one unit = one standard deviation of real neutral faces, so the
   fitter's L2 identity prior is a Gaussian prior of neutral faces), followed by the authored smooth
   harmonics at a fraction of their size for what the photos do not cover. An expression cannot
   hide in an identity learned from neutral faces only.
2. **Expression shapes.** The motion of the 478 points from each person's neutral photo to each
   expression photo (core.facemodel.calibration.expression_motion) is factorised into the 52 ARKit
   shapes (core.facemodel.calibration.learn_expressions): shapes whose meaning is geometry (blinks,
   gaze, the jaw's rotations, mouthClose, pucker, funnel, rolls, sideways moves, cheekPuff,
   tongueOut) stay as authored; the others are corrected where the data show motion, near where
   their authored version moves, with exact mirror pairs; each sample's weights are drawn toward
   the learned blendshape network's evidence (its scores minus those of the same person's neutral),
   so the shapes keep Apple's meaning and scale (1.0 = the network's full extreme). Each photo's
   motion is weighed in its own camera's axes (core.facemodel.calibration.image_axis_precision):
   in a half profile the face's sideways motion is mostly MediaPipe's unreliable depth.

A held-out check (people split, no photo of a held-out person in the learning) reports how much of
the real motion the authored and the calibrated shapes explain with weights in [0, 1].
"""

from __future__ import annotations

import logging

import numpy as np

from core.facemodel.calibration import (
    CalibrationData,
    ExpressionLearning,
    fit_weights,
    learn_expressions,
    learn_identity,
    support_masks,
)
from core.facemodel.open_model import (
    ARKIT_NAMES,
    LEFT_BROW_LOWER,
    LEFT_BROW_UPPER,
    LIP_CORNERS,
    LOWER_LIP_INNER,
    RIGHT_BROW_LOWER,
    RIGHT_BROW_UPPER,
    RIGHT_NOSE_WING,
    UPPER_LIP_INNER,
)
from core.facemodel.open_model_authoring import (
    ExpressionAuthor,
    Mesh,
    assemble_open_model,
    build_shape_basis,
    build_template,
    eye_contour,
    mirror_field,
    normalised,
    symmetrise,
    without_rigid_motion,
)
from core.facemodel.types import FaceModelData
from core.observe import landmark_ids as ids

log = logging.getLogger(__name__)

IDENTITY_COMPONENTS = 40
HARMONICS_SCALE = 0.3  # of the authored harmonics' size, after the learned components
# Shapes corrected from the data: those the network sees active in many calibration photos (its
# score 0.2 above the person's neutral in 30 or more of KDEF's photos), and noseSneer, which it
# never reports but which disgust needs (see UNSEEN_STEMS). mouthDimple and mouthPress are rarely
# active (2 and 9 photos; learned, they lost their authored direction) and stay as authored, like
# the geometric shapes; so does cheekSquint, which the network never reports and which, learned
# from smiles, pulled the cheek down with the mouth corner instead of raising it; and so does
# eyeWide (6 photos): its weights sit near zero in almost every photo, so a learned correction
# grows to explain small unrelated motion at tiny weights (it became a 9 mm sideways slide of the
# whole eye region at weight 1, which rendered as dark patches beside the eyes).
LEARNED_STEMS = (
    "browDown", "browInnerUp", "browOuterUp", "eyeSquint", "noseSneer", "mouthSmile", "mouthFrown",
    "mouthStretch", "mouthLowerDown", "mouthUpperUp", "mouthShrugLower", "mouthShrugUpper",
)
_EYES = eye_contour("left") + eye_contour("right") + ids.LEFT_IRIS + ids.RIGHT_IRIS
_BROWS = LEFT_BROW_UPPER + LEFT_BROW_LOWER + RIGHT_BROW_UPPER + RIGHT_BROW_LOWER
_NOSE_MIDLINE = (1, 2, 4, 5, 6, 19, 94, 168, 195, 197)
# The lips' points within 8 mm of the midline, from the upper lip's outer edge to the lower's.
_LIP_CENTRE = (0, 11, 12, 13, 14, 15, 16, 17, 37, 38, 72, 82, 84, 85, 86, 87, 267, 268, 302, 312, 314, 315, 316, 317)
# Points a learned shape (the performer's-left one; its mirror follows) must not move, as in the
# authored shapes: photos show brows raised with eyes opened and squints with brows lowered, but
# the names mean one muscle's motion, and the other curve carries the rest. Likewise KDEF's smiles
# are all open grins, with the lip raiser, the depressor and the jaw: learned freely, mouthUpperUp
# took the corners' outward pull (6 mm at weight 1) and the smile raised the lower lip's centre
# 8 mm, so a closed-mouth smile (little lip raise) lifted the whole mouth instead of curving it. In
# Apple's meaning the smile lifts and widens the corners and the raiser and depressor move the
# lips between them.
PROTECTED = {
    "browDown": _EYES + _NOSE_MIDLINE, "browInnerUp": _EYES + _NOSE_MIDLINE, "browOuterUp": _EYES + _NOSE_MIDLINE,
    "eyeSquint": _BROWS, "eyeWide": _BROWS, "noseSneer": _EYES + _NOSE_MIDLINE + RIGHT_NOSE_WING,
    "mouthSmile": _LIP_CENTRE, "mouthUpperUp": LIP_CORNERS, "mouthLowerDown": LIP_CORNERS,
}
# The network never reports these on the calibration photos, so its silence is not evidence; the
# photo's posed emotion is: such a shape is free only in the expressions that show it (the nose
# wrinkler of disgust and anger) and held at zero in the others. Left free everywhere, noseSneer
# took the cheek raise of smiles, and smiles were then fitted with a sneer.
UNSEEN_STEMS = {"noseSneer": ("disgust", "anger")}
HELD_OUT_SHARE = 0.2
# A one-sided shape's correction stays on its side of the face (beyond this band around the midline
# it moves nothing): photos show both brows lowered together, but browDownLeft is the left brow's.
MIDLINE_BAND_M = 0.012


def stem(name: str) -> str:
    return name.removesuffix("Left").removesuffix("Right")


def mirror_name(name: str) -> str:
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return name


def with_iris_following_lids(fields: np.ndarray) -> np.ndarray:
    """N x V x 3 fields whose iris points move with the mean of their eye's lid contour (the iris's
    own motion in a photo is gaze, not identity or expression)."""
    out = fields.copy()
    for side, iris in (("left", ids.LEFT_IRIS), ("right", ids.RIGHT_IRIS)):
        out[:, list(iris)] = out[:, list(eye_contour(side))].mean(axis=1, keepdims=True)
    return out


def calibrate_open_model(canonical: np.ndarray, data: CalibrationData,
                         learning: ExpressionLearning = ExpressionLearning()) -> FaceModelData:
    """The open model calibrated on ``data`` (see the module docstring). Deterministic."""
    template, faces, perm = build_template(canonical)

    residuals = with_iris_following_lids(data.neutral_residuals(template))
    residuals = np.concatenate([residuals, np.stack([mirror_field(r, perm) for r in residuals])])
    mean, components, ratio = learn_identity(residuals, IDENTITY_COMPONENTS)
    mean = with_closed_lips(mean)
    mean_mm = 1000 * np.linalg.norm(mean, axis=1)
    log.info("mean neutral face: %.1f mm RMS from the template (largest %.1f mm); %d identity components "
             "explain %.0f %% of neutral variation", np.sqrt((mean_mm**2).mean()), mean_mm.max(),
             components.shape[2], 100 * ratio.sum())
    mesh = Mesh.build(normalised(symmetrise(template + mean, perm)), faces)
    authored = ExpressionAuthor(mesh, perm).build()
    identity = without_rigid_motion(
        np.concatenate([symmetric_components(components, perm), HARMONICS_SCALE * build_shape_basis(mesh)], axis=2),
        mesh.vertices)

    motions = with_iris_following_lids(data.motions(mesh.vertices))
    precision = data.precisions(mesh.vertices, learning.z_weight)
    evidence = data.evidence()
    trust = evidence_trust(ARKIT_NAMES, data.expression_label)
    learn = _learner(mesh, perm, authored, learning)
    people = np.unique(data.expression_person)
    held_out = set(people[:: int(round(1 / HELD_OUT_SHARE))])
    test = np.array([p in held_out for p in data.expression_person])
    check_shapes, _ = learn(motions[~test], evidence[~test], trust[~test], precision[~test])
    before = fit_weights(motions[test], authored, learning.z_weight, precision[test])[1]
    after = fit_weights(motions[test], check_shapes, learning.z_weight, precision[test])[1]
    log.info("held-out people (%d photos): authored shapes explain %.3f of the motion, calibrated %.3f",
             int(test.sum()), before.mean(), after.mean())
    expressions, weights = learn(motions, evidence, trust, precision)

    size = np.linalg.norm(expressions, axis=1).max(axis=0)
    neutral_scores = np.nan_to_num(data.neutral_scores, nan=0.0)
    info = {
        "mediapipe_neutral": {  # core/fit/evidence.py: the learned network's scores on neutral faces
            "mean": [round(float(v), 4) for v in neutral_scores.mean(axis=0)],
            "spread": [round(float(v), 4) if np.isfinite(data.neutral_scores[:, k]).any() else 1.0
                       for k, v in enumerate(neutral_scores.std(axis=0))],
        },
        "version_note": "calibrated on photographs (scripts/build_open_model.py)",
        "calibration": {
            "sources": data.sources,
            "neutral_photos": int(len(data.neutral_landmarks)),
            "expression_photos": int(len(data.expression_landmarks)),
            "people": int(len(people)),
            "identity_components": int(components.shape[2]),
            "identity_variance_explained": round(float(ratio.sum()), 4),
            "learned_shapes": [n for n in ARKIT_NAMES if stem(n) in LEARNED_STEMS],
            "held_out_people": int(len(held_out)),
            "held_out_explained": {"authored": round(float(before.mean()), 4),
                                   "calibrated": round(float(after.mean()), 4)},
            "max_motion_mm": {n: round(1000 * float(v), 2) for n, v in zip(ARKIT_NAMES, size)},
            "weights_at_bound": round(float((weights >= 0.99).sum(axis=1).mean()), 3),
        },
        "expressions": "the 52 ARKit blendshapes in Apple's order, weights in [0, 1]; authored at full weight, "
                       "the learned ones calibrated on real expression motion (see calibration)",
        "identity": f"{components.shape[2]} principal components of neutral faces (one unit = one standard "
                    f"deviation), then the {3 * 16} authored manifold harmonics at {HARMONICS_SCALE:g} of their size",
        "source": "resources/canonical_face_478.npy, MediaPipe's face-mesh tesselation and the calibration photos",
    }
    return assemble_open_model(mesh, perm, expressions, identity, info)


def with_closed_lips(field: np.ndarray) -> np.ndarray:
    """A V x 3 field in which each pair of inner-lip points (touching in the template's closed
    mouth) moves together, by their mean: the mean neutral face keeps the template's closed lips."""
    out = field.copy()
    for upper, lower in zip(UPPER_LIP_INNER[1:-1], LOWER_LIP_INNER[1:-1]):
        out[[upper, lower]] = field[[upper, lower]].mean(axis=0)
    return out


def symmetric_components(components: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Principal components of a mirror-augmented set, each made exactly symmetric or antisymmetric
    (mirror augmentation makes them so up to numerical noise)."""
    out = components.copy()
    for k in range(components.shape[2]):
        mirrored = mirror_field(components[..., k], perm)
        sign = 1.0 if (mirrored * components[..., k]).sum() >= 0 else -1.0
        out[..., k] = 0.5 * (components[..., k] + sign * mirrored)
    return out


def evidence_trust(names: tuple[str, ...], labels: np.ndarray) -> np.ndarray:
    """M x E: how much each photo's evidence binds each weight in the factorisation: 1 for the
    network's scores; for shapes it never reports (UNSEEN_STEMS), 0 (free) in photos posed as an
    expression that shows the shape and 1 (held at the evidence's zero) in the others."""
    trust = np.ones((len(labels), len(names)))
    for k, name in enumerate(names):
        showing = UNSEEN_STEMS.get(stem(name))
        if showing is not None:
            trust[:, k] = ~np.isin(labels, showing)
    return trust


def shape_support(mesh: Mesh, authored: np.ndarray, radius_m: float) -> np.ndarray:
    """E x V bool: where a correction of each of the 52 shapes may move the surface: near where the
    authored shape (V x 3 x E) moves (``radius_m`` geodesic), never on its PROTECTED points, and
    for a one-sided shape only on its side of the face (and a band around the midline)."""
    support = support_masks(authored, mesh.geodesic, radius_m)
    support[:, ~mesh.surface] = False
    x = mesh.vertices[:, 0]  # toward the performer's left
    for k, name in enumerate(ARKIT_NAMES):
        support[k, list(PROTECTED.get(stem(name), ()))] = False
        if name.endswith("Left"):
            support[k, x < -MIDLINE_BAND_M] = False
        elif name.endswith("Right"):
            support[k, x > MIDLINE_BAND_M] = False
    return support


def _learner(mesh: Mesh, perm: np.ndarray, authored: np.ndarray, learning: ExpressionLearning):
    """A function (motions, evidence, trust, precision) -> (shapes, weights) with everything else
    fixed (core.facemodel.calibration.learn_expressions)."""
    names = list(ARKIT_NAMES)
    mirror_shapes = np.array([names.index(mirror_name(n)) for n in names])
    learnable = np.array([stem(n) in LEARNED_STEMS for n in names])
    support = shape_support(mesh, authored, learning.support_radius_m)
    laplacian = mesh.stiffness.toarray()

    def learn(motions: np.ndarray, evidence: np.ndarray, trust: np.ndarray, precision: np.ndarray):
        return learn_expressions(motions, evidence, authored, perm, mirror_shapes, learnable, support, laplacian,
                                 trust, learning, precision)

    return learn
