"""Solve the FLAME <-> ARKit map from YOUR FLAME file and print its held-out round-trip table.

FLAME is licensed, and a map solved from it is derived from it: it is never shipped. EmoCap solves
it on first use (``emocap export TAKE --curves arkit``, ``emocap convert --from-arkit``) and caches
it in ``$EMOCAP_CACHE/flame_arkit`` (default ``~/.cache/emocap/flame_arkit``), keyed by the
file's content hash; this script rebuilds that cache entry explicitly (core/facemodel/flame_arkit.py).

    python scripts/build_flame_arkit_map.py --flame generic_model.pkl [--expression-components 50] [--out MAP.npz]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.atomic import write_bytes_atomic  # noqa: E402
from core.errors import EmoCapError  # noqa: E402
from core.facemodel.flame_arkit import cache_folder, load_or_solve  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flame", required=True, type=Path, help="your FLAME file (generic_model.pkl, flame2023.pkl, .npz)")
    parser.add_argument("--expression-components", type=int, default=50)
    parser.add_argument("--out", type=Path, help="also write the map here (it is derived from FLAME: do not share it)")
    parser.add_argument("--cache", type=Path, default=None, help=f"cache folder (default {cache_folder()})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        amap = load_or_solve(args.flame, num_expression=args.expression_components, cache_dir=args.cache, rebuild=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(args.out, amap.to_bytes())
    except EmoCapError as err:
        print(f"build_flame_arkit_map: {err}", file=sys.stderr)
        return 2
    print(f"FLAME-ARKit map {amap.key} for {args.flame} ({amap.num_expression} expression components + jaw), "
          f"solved in {time.perf_counter() - started:.1f} s, cached in {args.cache or cache_folder()}")
    print(amap.heldout.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
