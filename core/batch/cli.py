"""``emocap batch INPUTS... --out TAKES [--export fbx,arkit_csv] [--emotion] [--refine] [--model ...]
[--address ray://HOST:PORT|HOST:PORT|auto] [--workers N] [--json] [--progress-jsonl]``.

Analyses every recording the inputs name into its own take in TAKES (core/batch/inputs.py), then
writes the requested exports beside each take, on Ray (core/batch/runner.py). A rerun finishes
only what is missing. Exit codes: 0 all done, 4 some recordings failed (the summary gives each
one's reason), 2 a user error before anything ran, 130 cancelled (a rerun resumes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import BatchFailedError, CancelledError, EmoCapError


def add_batch_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("batch", help="analyse a shoot: many recordings, one take each, on Ray")
    p.add_argument("inputs", nargs="+", type=Path,
                   help="videos, images, folders (searched recursively for videos and image folders) or text "
                        "files (.txt, .list) listing them one per line")
    p.add_argument("--out", type=Path, required=True, help="folder of the takes (one per recording) and exports")
    p.add_argument("--export", default=None, metavar="FORMATS",
                   help="comma list of export formats written beside each take (emocap export --format list)")
    p.add_argument("--emotion", action="store_true", help="also measure emotion (FER, as emocap analyze does)")
    p.add_argument("--refine", action="store_true", help="refine the fits for micro-expressions")
    p.add_argument("--model", choices=("open", "flame"), default="open", help="face model to fit (default: open)")
    p.add_argument("--flame", help="with --model flame: your FLAME file (every node must see it at this path)")
    p.add_argument("--performer", metavar="PROFILE",
                   help="fit every recording with this performer profile ('emocap calibrate'; every node must see "
                        "it at this path)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (on each worker)")
    p.add_argument("--image-fps", type=float, default=30.0, help="frame rate given to image folders")
    p.add_argument("--address", default=None,
                   help="join a Ray cluster: auto, HOST:PORT (its head, from 'ray start --head') or "
                        "ray://HOST:10001; default: a local Ray instance on this machine's cores")
    p.add_argument("--workers", type=int, default=None,
                   help="recordings analysed at once (default: the local cores or the cluster's CPUs)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--progress-jsonl", action="store_true",
                   help="for programs (the desktop app): progress as JSON lines on stdout, cancel with a line "
                        "'cancel' on stdin (core/batch/progress.py)")
    p.set_defaults(func=run_batch)
    return p


def settings_of(args: argparse.Namespace):
    """The BatchSettings of the command's options."""
    from core.analysis_options import AnalysisOptions
    from core.batch.settings import BatchSettings, parse_exports
    from core.facemodel.loading import ModelChoice

    performer = str(Path(args.performer).resolve()) if args.performer else None
    analysis = AnalysisOptions(device=args.device, image_fps=args.image_fps,
                               model=ModelChoice(args.model, args.flame, performer=performer),
                               emotion=args.emotion, refine=args.refine)
    return BatchSettings(analysis, parse_exports(args.export))


def run_batch(args: argparse.Namespace) -> int:
    import threading

    from core.batch import cluster
    from core.batch.inputs import find_recordings
    from core.batch.progress import Bar, BatchState, progress_event, result_event, started_event, summary_event, write_line
    from core.batch.runner import BatchRunner

    if args.workers is not None and args.workers < 1:
        raise EmoCapError("--workers must be at least 1")
    settings = settings_of(args)
    settings.check()
    recordings, notes = find_recordings(args.inputs, args.out)
    if not recordings:
        raise EmoCapError("no recordings found in " + ", ".join(str(p) for p in args.inputs))
    started_here = cluster.connect(args.address, args.workers)
    state = BatchState(recordings)
    cancel = threading.Event()
    if args.progress_jsonl:
        from core.progress_stream import cancel_on_stdin

        cancel_on_stdin(cancel)
        bar = None
        runner = BatchRunner(settings, args.workers, cancel=cancel,
                             on_start=lambda where, n: write_line(started_event(recordings, where, n)),
                             on_progress=lambda p, _: write_line(progress_event(p)),
                             on_result=lambda r: write_line(result_event(r)))
    else:
        bar = Bar(state)
        runner = BatchRunner(settings, args.workers, cancel=cancel, state=state, on_progress=lambda *_: bar.refresh(),
                             on_result=lambda _: bar.refresh())
    try:
        summary = runner.run(recordings, notes)
    except KeyboardInterrupt:
        raise CancelledError("batch interrupted; every take keeps what was done and a rerun resumes") from None
    finally:
        if bar is not None:
            bar.close()
        if started_here:
            cluster.shutdown()
    if args.progress_jsonl:
        write_line(summary_event(summary))
    elif args.json:
        import json

        sys.stdout.write(json.dumps(summary.to_dict()) + "\n")
    else:
        sys.stdout.write(summary.text())
    if cancel.is_set():
        raise CancelledError("batch cancelled; every take keeps what was done and a rerun resumes")
    if summary.failed:
        raise BatchFailedError(f"{len(summary.failed)} of {len(summary.results)} recordings failed: "
                               + "; ".join(f"{r.name}: {r.reason}" for r in summary.failed[:3])
                               + (" ..." if len(summary.failed) > 3 else ""))
    return 0
