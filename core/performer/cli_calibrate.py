"""``emocap calibrate INPUT... --out PERFORMER [--neutral FRAME]``: a performer profile from a
calibration clip or any takes of the person (take folders are used as they are; videos, images and
image folders are first analysed, without emotion, into takes beside the profile)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import NoFaceFoundError, PerformerProfileError

if TYPE_CHECKING:  # the calibration's modules load when the command runs: every 'emocap' call builds this parser
    from core.performer.calibrate import CalibrationReport, PerformerTake
    from core.take import Take

log = logging.getLogger(__name__)


def add_calibrate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "calibrate", help="learn a performer profile (their neutral face and own shapes) from their takes",
        description="Learn a performer profile from a calibration clip (a neutral pose held, then a range of "
                    "motion) or any takes of the person; 'emocap analyze --performer PROFILE' then fits with it.")
    p.add_argument("inputs", nargs="+", type=Path, help="take folders, or videos / images / image folders "
                                                          "(analysed first, into PROFILE.takes/)")
    p.add_argument("--out", type=Path, required=True, help="the profile file to write (PERFORMER.npz)")
    p.add_argument("--name", help="the performer's name (default: the profile file's name)")
    p.add_argument("--neutral", type=int, metavar="FRAME",
                   help="a frame of the first input where the performer is neutral: the identity (when calibrate "
                        "analyses the input) and the baseline of MediaPipe's scores come from it (default: its most "
                        "neutral frames)")
    p.add_argument("--json", action="store_true", help="print the quality report as one JSON object")
    p.set_defaults(func=run_calibrate)
    return p


def _as_take(path: Path, takes_dir: Path, neutral_frame: int | None = None) -> Take:
    """The take of ``path``: itself if it is a take folder, else the analysis of it into
    ``takes_dir`` (resumed if a previous calibration was interrupted), its identity from
    ``neutral_frame`` when given."""
    from core.take import Take
    from core.take.store import MANIFEST_NAME

    if (path / MANIFEST_NAME).is_file():
        return Take.open(path)
    from core.pipeline import Pipeline, PipelineConfig

    out = takes_dir / path.stem
    log.info("analysing %s into %s", path, out)
    neutral = None if neutral_frame is None else str(neutral_frame)
    summary = Pipeline(PipelineConfig(emotion=None, neutral=neutral)).run(path, out)
    if summary.no_face:
        raise NoFaceFoundError(f"no face found in {path} ({summary.frames} frames): a performer profile needs the "
                               "performer's face")
    return Take.open(out)


def performer_take(take: Take, neutral_frame: int | None = None) -> PerformerTake:
    """A take's observations and raw fit as calibration input. PerformerProfileError when it has
    no fit on the generic open model or the named neutral frame has no face."""
    from core.performer.calibrate import PerformerTake

    record = take.manifest.fit
    if record is None or record.status != "complete":
        raise PerformerProfileError(f"take {take.root} has no complete fit: analyse it first")
    if record.settings.get("model", "open") != "open" or record.settings.get("performer"):
        raise PerformerProfileError(f"take {take.root} was not fitted with the generic open model; analyse it again "
                                    "without --model flame or --performer to calibrate from it")
    observations = take.load_observations()
    fit = take.read_fit(closures=False)
    rows = None
    if neutral_frame is not None:
        rows = np.nonzero((observations.index == neutral_frame) & observations.has_face & fit.has_face)[0]
        if not len(rows):
            raise PerformerProfileError(f"--neutral {neutral_frame}: that frame of {take.root} shows no fitted face")
    return PerformerTake(observations=observations, fit=fit, neutral_rows=rows,
                         source={"path": str(take.manifest.source.path), "take": str(take.root),
                                 "fit_sha256": take.fit_digest(), "frames": int(len(observations.index))})


def _moved(shape: str, mm: float, reach: float | None) -> str:
    """'browInnerUp 10.5 mm (seen up to 0.29)': how far a shape moved at weight 1, and the largest
    weight the takes showed it at."""
    return f"{shape} {mm:.1f} mm" + ("" if reach is None else f" (seen up to {reach:.2f})")


def format_report(name: str, path: Path, report: CalibrationReport) -> str:
    from core.performer.calibrate import MIN_CHECKED_FRAMES

    moved = sorted(report.shape_change_mm.items(), key=lambda kv: -kv[1])[:6]
    if report.held_out_residual_generic is not None:
        check = (f"held out  {report.held_out_frames} frames: landmark residual {100 * report.held_out_residual_generic:.2f} "
                 f"% of the eye distance with the generic shapes, {100 * report.held_out_residual_performer:.2f} % with "
                 f"the performer's ({100 * report.held_out_change:+.0f} %)")
    else:
        check = f"held out  none (takes shorter than {MIN_CHECKED_FRAMES} frames)"
    return "\n".join([
        f"profile   {name} -> {path}",
        f"learned   from {report.frames} frames in {report.seconds:.1f} s; landmark residual "
        f"{100 * report.training_residual_generic:.2f} -> {100 * report.training_residual_performer:.2f} % of the eye distance",
        f"neutral   detail beyond the identity basis: {report.neutral_offset_rms_mm:.2f} mm RMS "
        f"(largest {report.neutral_offset_max_mm:.2f} mm)",
        check,
        f"view      drift of the landmarks with head pose, learned for this face: up to {report.view_drift_mm:.1f} mm",
        "moved     " + ", ".join(_moved(n, mm, report.shape_reach.get(n)) for n, mm in moved),
    ]) + "\n"


def run_calibrate(args: argparse.Namespace) -> int:
    from core.facemodel.open_model import load_open_model, open_model_digest
    from core.performer.calibrate import calibrate_performer
    from core.performer.profile import save_profile

    out = args.out if args.out.suffix == ".npz" else args.out.with_name(args.out.name + ".npz")
    name = args.name or out.stem
    takes_dir = out.with_name(out.stem + ".takes")
    takes = [performer_take(_as_take(path, takes_dir, args.neutral if i == 0 else None), args.neutral if i == 0 else None)
             for i, path in enumerate(args.inputs)]
    profile, report = calibrate_performer(name, takes, load_open_model(), open_model_digest())
    path = save_profile(profile, out)
    if args.json:
        sys.stdout.write(json.dumps({"profile": str(path), "name": name} | report.to_dict()) + "\n")
    else:
        sys.stdout.write(format_report(name, path, report))
    return 0
