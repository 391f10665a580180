"""Rebuild ``resources/open_face_model.npz``, EmoCap's own open face model, from the canonical face.

Deterministic: the same ``resources/canonical_face_478.npy`` and MediaPipe tesselation give the same
arrays (and the same file bytes). See ``core/facemodel/open_model.py`` for what the model contains.

    python scripts/build_open_model.py [--canonical resources/canonical_face_478.npy]
        [--out resources/open_face_model.npz]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.facemodel.open_model import OPEN_MODEL_PATH, build_open_model, save_open_model  # noqa: E402
from core.observe.headpose import CANONICAL_FACE_PATH  # noqa: E402

log = logging.getLogger("build_open_model")


def build(canonical_path: Path, out: Path) -> None:
    data = build_open_model(np.load(canonical_path))
    save_open_model(data, out)
    log.info(
        "wrote %s: %d vertices, %d triangles, %d identity and %d expression components, %.0f kB",
        out, data.num_vertices, len(data.faces), data.num_shape, data.num_expression, out.stat().st_size / 1024,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canonical", type=Path, default=CANONICAL_FACE_PATH)
    parser.add_argument("--out", type=Path, default=OPEN_MODEL_PATH)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.canonical, args.out)


if __name__ == "__main__":
    main()
