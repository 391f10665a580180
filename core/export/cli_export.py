"""``emocap export TAKE --format FORMAT --out PATH [--range A:B] [--retarget MAP] [--reduce TOL
[--reduce-degrees DEG]] [--curves model|arkit]`` and ``emocap export --format list``."""

from __future__ import annotations

import argparse
import sys

from core.errors import ExportError


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="export a take's fit (curves, OBJ sequence, Live Link Face CSV, "
                                          "FBX, glTF, USD, Alembic)")
    p.add_argument("take", nargs="?", help="take folder")
    p.add_argument("--format", required=True, help="export format, or 'list' to list them")
    p.add_argument("--out", help="output file (folder for obj_seq; .glb for gltf, .usda/.usdc/.usd for usd)")
    p.add_argument("--range", dest="range", default=None, help="frames START:STOP (STOP exclusive; default all)")
    p.add_argument("--retarget", metavar="MAP.yaml",
                   help="a retarget map onto your rig's channel names (YAML; or a shipped preset: arkit_identity, "
                        "flame_blender_addon, custom_rig_example; core/export/retarget.py)")
    p.add_argument("--reduce", metavar="TOLERANCE", type=float, default=None,
                   help="reduce keys: largest error at any frame, in curve units (curves, fbx, gltf, usd)")
    p.add_argument("--reduce-degrees", metavar="DEG", type=float, default=0.1,
                   help="with --reduce: largest rotation error of the head, neck, jaw and eyes, degrees (default 0.1)")
    p.add_argument("--curves", choices=("model", "arkit"), default="model",
                   help="arkit: a FLAME take's curves as the 52 ARKit ones on the open model's mesh (Live Link CSV, "
                        "FBX/glTF/USD shape keys), through a map solved from your FLAME file and cached")
    p.add_argument("--shapes", choices=("performer", "generic"), default="performer",
                   help="for a take fitted with a performer profile: its mesh and shape keys (default) or the open "
                        "model's generic ones (FBX/glTF/USD/OBJ; the curves are the same)")
    p.set_defaults(func=run_export)
    return p


def run_export(args) -> int:
    """Run the export; EmoCapError (ExportError, TakeError) propagates for the CLI to print."""
    from core.export import export, formats
    from core.export.keyreduce import KeyReduction

    if args.format == "list":
        print("\n".join(formats()))
        return 0
    if not args.take or not args.out:
        raise ExportError("export needs TAKE and --out PATH (or --format list)")
    reduce = None
    if getattr(args, "reduce", None) is not None:
        reduce = KeyReduction(args.reduce, degrees=args.reduce_degrees)
    result = export(args.take, args.format, args.out, args.range, retarget=getattr(args, "retarget", None),
                    reduce=reduce, curves=getattr(args, "curves", None), shapes=getattr(args, "shapes", None))
    target = args.out
    print(f"exported {result.frames} frames as {args.format} to {target}")
    if result.gap_frames:
        print(f"{result.gap_frames} frames without a face: {result.gap_policy}")
    for note in result.notes:
        print(f"warning: {note}", file=sys.stderr)
    return 0
