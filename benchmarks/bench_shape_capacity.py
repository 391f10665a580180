"""How much of real expression motion can a generic set of shapes explain on people it has not seen?

Issue 13 asks that the open model's curves, fitted with a person's own neutral, explain 90 % of the
motion of the 478 landmarks from that neutral to each expression. This bounds what any fit can
reach: KDEF's motions (model space, as scripts/build_open_model.py measures them), people split as
the calibration's held-out check does (every fifth person held out), and on the held-out motions

- the open model's 52 shapes with weights in [0, 1] (what the fitter may use), with and without a
  free rigid motion (the fitter's head pose takes that part);
- as many principal components of the other people's motions, unbounded, as references of what a
  basis of that size learned from the same data explains;
- how much of the 52 shapes' residual is the same for everyone (the mean residual per expression:
  what better generic shapes could still take) and how much differs from person to person (what
  only a performer's own shapes can take; issue 14).

    python benchmarks/bench_shape_capacity.py
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import lsq_linear

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.facemodel.calibration import fit_weights  # noqa: E402
from core.facemodel.loading import ModelChoice, load_face_model  # noqa: E402
from core.facemodel.open_model_calibration import HELD_OUT_SHARE  # noqa: E402
from scripts.build_open_model import KDEF, kdef_calibration, kdef_photos  # noqa: E402

Z_WEIGHT = 0.25  # depth's weight, as the calibration's (ExpressionLearning.z_weight)
COMPONENTS = (10, 20, 30, 52)


def rigid_fields(template: np.ndarray) -> np.ndarray:
    """V x 3 x 7: translations, small rotations about the three axes and a scale, each about 1 cm."""
    centred = template - template.mean(axis=0)
    fields = [np.tile(axis, (len(template), 1)) for axis in np.eye(3)]
    fields += [np.cross(axis, centred) for axis in np.eye(3)] + [centred]
    return 0.01 * np.stack(fields, axis=2)


def shares(design: np.ndarray, targets: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """1 - |residual|^2 / |target|^2 of each target row, least squares within the bounds."""
    out = []
    for target in targets:
        solution = lsq_linear(design, target, bounds=(lower, upper)).x
        out.append(1.0 - np.sum((design @ solution - target) ** 2) / np.sum(target**2))
    return np.array(out)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    start = time.time()
    model = load_face_model(ModelChoice())
    template = model.template.detach().numpy().astype(np.float64)
    basis = model.expression_basis.detach().numpy().astype(np.float64)  # V x 3 x 52
    data = kdef_calibration(kdef_photos(KDEF))
    motions = data.motions(template)
    labels, people = data.expression_label, data.expression_person
    held_out = set(np.unique(people)[:: int(round(1 / HELD_OUT_SHARE))])
    test = np.array([p in held_out for p in people])
    axis = np.array([1.0, 1.0, np.sqrt(Z_WEIGHT)])
    flat = (motions * axis).reshape(len(motions), -1)
    rigid = (rigid_fields(template) * axis[None, :, None]).reshape(-1, 7)
    arkit = (basis * axis[None, :, None]).reshape(-1, basis.shape[2])

    rows: list[tuple[str, np.ndarray]] = []
    rows.append(("open model, 52 shapes in [0, 1]", fit_weights(motions[test], basis, Z_WEIGHT)[1]))
    free = np.full(7, np.inf)
    rows.append(("  + free rigid motion", shares(np.concatenate([arkit, rigid], 1), flat[test],
                                                  np.r_[np.zeros(52), -free], np.r_[np.ones(52), free])))
    without_rigid = flat - (rigid @ np.linalg.lstsq(rigid, flat.T, rcond=None)[0]).T
    _, _, components = np.linalg.svd(without_rigid[~test], full_matrices=False)
    for count in COMPONENTS:
        design = np.concatenate([components[:count].T, rigid], 1)
        unbounded = np.full(count + 7, np.inf)
        rows.append((f"{count} principal components + rigid", shares(design, flat[test], -unbounded, unbounded)))

    expressions = sorted(set(labels))
    print(f"\nheld-out people: {len(held_out)} ({int(test.sum())} expression photos); "
          f"trained on {len(np.unique(people)) - len(held_out)} people")
    print(f"{'basis':38s} {'all':>6s} " + " ".join(f"{e:>8s}" for e in expressions))
    for name, values in rows:
        print(f"{name:38s} {values.mean():6.3f} "
              + " ".join(f"{values[labels[test] == e].mean():8.3f}" for e in expressions))

    weights, _ = fit_weights(motions[test], basis, Z_WEIGHT)
    residual = motions[test] - np.einsum("vce,ne->nvc", basis, weights)
    print("\nresidual of the 52 shapes: the part shared by everyone showing the expression (its mean) "
          "and the part that differs per person")
    print(f"{'expression':10s} {'residual mm^2/pt':>17s} {'shared':>8s} {'per person':>11s}")
    for e in expressions:
        r = residual[labels[test] == e] * axis
        total = float((r**2).sum(axis=2).mean())
        shared = float((r.mean(axis=0) ** 2).sum(axis=1).mean())
        print(f"{e:10s} {1e6 * total:17.2f} {shared / total:8.0%} {1 - shared / total:11.0%}")
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
