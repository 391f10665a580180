"""``emocap check TAKE [--repair] [--json]``: a take's health, and its repair.

Prints the manifest that was read, the recording, each stage's state and every chunk that is not
ok. With ``--repair`` it reruns the take's own analysis (the settings stored in the take), which
rebuilds what is damaged (core/take_repair.py), and prints the health after. Exit codes: 0 the take
is intact (or was repaired), 1 something is damaged and not repaired, 2 a user error (one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import TakeError
from core.take.records import COMPLETE

DAMAGED_EXIT = 1


def add_check_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("check", help="check a take's chunks; --repair rebuilds what is damaged")
    p.add_argument("take", type=Path)
    p.add_argument("--repair", action="store_true",
                   help="recompute damaged or missing chunks from the recording (or the observations)")
    p.add_argument("--json", action="store_true", help="print the health as one JSON object")
    p.set_defaults(func=run_check)
    return p


def recording_state(take) -> str:
    """present, missing or changed (the recording the take was made from)."""
    from core.take import source_fingerprint

    path = Path(take.manifest.source.path)
    if not path.exists():
        return "missing"
    try:
        fingerprint = source_fingerprint(path)
    except OSError:
        return "missing"
    return "present" if take.manifest.source.same_recording(fingerprint) else "changed"


def stage_state(take, health, stage: str) -> str:
    """A stage's state: its chunks' (ok, unverified, damaged, absent), or "incomplete (STATUS)"
    when its chunks are fine but the stage did not finish (cancelled, or dropped for a rebuild)."""
    state = health.stage_state(stage)
    m = take.manifest
    status = {"observations": m.status, "fit": m.fit and m.fit.status, "emotion": m.emotion and m.emotion.status,
              "microexpr": m.microexpr and m.microexpr.status}[stage]
    if state != "damaged" and status is not None and status != COMPLETE:
        return f"incomplete ({status})"
    return state


def edits_state(take) -> str:
    """none, ok, or "damaged (REASON)": the app's edits (edits.json), which nothing can recompute."""
    from core.edit import EDITS_FILE, load_edits

    if not (take.root / EDITS_FILE).exists():
        return "none"
    try:
        load_edits(take.root)
    except TakeError as err:
        return f"damaged ({err})"
    return "ok"


def health_dict(take, health, recording: str, writer: int | None) -> dict:
    from core.take.health import STAGES

    return {
        "edits": edits_state(take),
        "take": str(take.root), "manifest": health.manifest_file, "recording": take.manifest.source.path,
        "recording_state": recording, "writer": writer,
        "stages": {stage: stage_state(take, health, stage) for stage in STAGES},
        "chunks": [{"name": c.name, "stage": c.stage, "state": c.state, "reason": c.reason} for c in health.chunks],
        "damaged": [c.name for c in health.bad],
    }


def print_health(report: dict) -> None:
    lines = [f"take          {report['take']} (manifest read from {report['manifest']})",
             f"recording     {report['recording']} ({report['recording_state']})"]
    if report["writer"]:
        lines.append(f"writer        process {report['writer']} is writing this take now")
    for stage, state in report["stages"].items():
        count = sum(1 for c in report["chunks"] if c["stage"] == stage)
        lines.append(f"{stage:<13} {state}" + (f" ({count} chunk{'s' if count != 1 else ''})" if count else ""))
    lines.append(f"{'edits':<13} {report['edits']}")
    for chunk in report["chunks"]:
        if chunk["state"] != "ok":
            lines.append(f"  {chunk['state']:<11} {chunk['name']}" + (f": {chunk['reason']}" if chunk["reason"] and
                                                                     chunk["reason"] != chunk["state"] else ""))
    sys.stdout.write("\n".join(lines) + "\n")


def run_check(args: argparse.Namespace) -> int:
    from core.take import Take
    from core.take.health import diagnose
    from core.take.lock import TakeLock, writer_of
    from core.take_repair import record_unverified

    take = Take.open(args.take)
    recording = recording_state(take)
    health = diagnose(take)
    needs_repair = bool(health.bad) or health.manifest_file != "take.json"
    if args.repair and needs_repair:
        repair(take, recording)
    if args.repair and (needs_repair or any(c.state == "unverified" for c in health.chunks)):
        take = Take.open(args.take)
        with TakeLock(take.root):  # chunks of a take from before records: record them now
            record_unverified(take)
        health = diagnose(take)
        recording = recording_state(take)
    report = health_dict(take, health, recording, writer_of(take.root))
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        print_health(report)
    if health.bad or health.manifest_file != "take.json":
        names = ", ".join(c.name for c in health.bad) or "take.json"
        hint = "" if args.repair else f"; 'emocap check {take.root} --repair' rebuilds it"
        sys.stderr.write(f"emocap: take {take.root}: damaged: {names}{hint}\n")
        return DAMAGED_EXIT
    if report["edits"].startswith("damaged"):
        sys.stderr.write(f"emocap: take {take.root}: edits.json is damaged and cannot be rebuilt; remove it to "
                         "start the edits afresh\n")
        return DAMAGED_EXIT
    return 0


def repair(take, recording: str) -> None:
    """Rerun the take's analysis with its own settings: the pipeline heals under the writer lock."""
    from core.pipeline import Pipeline
    from core.take_settings import pipeline_config_of

    if recording != "present":
        raise TakeError(
            f"take {take.root} cannot be repaired: its recording {take.manifest.source.path} is {recording}; "
            "the damaged chunks are named by 'emocap check'"
        )
    Pipeline(pipeline_config_of(take)).run(take.manifest.source.path, take.root)
