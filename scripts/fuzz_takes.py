"""Seeded fuzzing of what EmoCap reads: take files, recordings and FLAME files.

Each case copies one file of a known-good input, damages it (random bytes flipped, most often
in the header, the file cut short, or random bytes appended), and runs the command that reads it
(``core.cli.main`` for takes; the video reader and the FLAME loader for the others) in a worker
process. A case passes when the command succeeds, or refuses with exit code 2 and exactly one line
``emocap: ...`` on stderr; it fails on any traceback (an exception escaping the command), on a
refusal that is not one line, on a hang (no answer within ``--case-timeout`` seconds) and on a
crash of the worker itself (a segfault in a native decoder), after which a new worker goes on with
the next case. Case N depends only on the seed and N, so any case can be replayed alone
(``--first N --cases N+1``).

    python scripts/fuzz_takes.py --cases 2000 --seed 7          (builds its own take; minutes)
    python scripts/fuzz_takes.py --take TAKE --cases 300 --json  (what the tests run, ~1 min)

Half of the take cases first turn the take into one written before chunks were recorded (no
sizes and digests, no manifest checksum), so the unverified reading paths are fuzzed too.
Prints a summary (or one JSON object) and exits 1 when a case failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT.parent / "shared" / "fixtures"

log = logging.getLogger("fuzz_takes")


@dataclass
class Outcome:
    """One case: what was damaged and how, the command, its exit code and verdict."""

    case: int
    target: str
    damage: str
    command: str
    code: int
    verdict: str  # ok | refused | traceback | not-one-line | hang
    detail: str = ""
    seconds: float = 0.0


class CaseTimeout(Exception):
    """A case ran longer than its limit."""


def _alarm(signum, frame):
    raise CaseTimeout()


class _CurrentStderr(io.TextIOBase):
    """Log records go to whatever sys.stderr is now (it is redirected per case)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)


# ---- damage ---------------------------------------------------------------------------------
def damage(path: Path, rng: random.Random) -> str:
    """Damage the file at ``path`` in place; returns how."""
    data = bytearray(path.read_bytes())
    kind = rng.choice(("flip", "flip", "flip_header", "truncate", "append"))
    if kind == "truncate" or not data:
        cut = rng.randrange(0, max(len(data), 1))
        path.write_bytes(bytes(data[:cut]))
        return f"truncate to {cut} of {len(data)} bytes"
    if kind == "append":
        extra = bytes(rng.randrange(256) for _ in range(rng.choice((1, 7, 64, 4096))))
        path.write_bytes(bytes(data) + extra)
        return f"append {len(extra)} bytes"
    span = min(len(data), 4096) if kind == "flip_header" else len(data)
    count = rng.choice((1, 1, 2, 8, 32))
    positions = sorted(rng.randrange(span) for _ in range(count))
    for position in positions:
        data[position] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return f"flip {count} bit(s) at {positions[:4]}{'...' if count > 4 else ''}"


def make_legacy(take: Path) -> None:
    """Turn a take into one written before chunk records and the manifest checksum existed."""
    manifest = json.loads((take / "take.json").read_text())
    for key in ("chunks", "checksum"):
        manifest.pop(key, None)
    (take / "take.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (take / "take.backup.json").unlink(missing_ok=True)


# ---- running commands -----------------------------------------------------------------------
def run_command(function, case_timeout: float) -> tuple[int, str, str, str]:
    """Run ``function()`` (returning an exit code) with stdout and stderr captured and a time
    limit: (code, verdict, stderr, detail)."""
    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, case_timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = function()
    except CaseTimeout:
        return -1, "hang", err.getvalue(), f"no answer within {case_timeout} s"
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 2
    except BaseException:  # noqa: BLE001 - the point: anything escaping is a finding
        return -1, "traceback", err.getvalue(), traceback.format_exc(limit=-4)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    text = err.getvalue()
    if "Traceback" in text:
        return code, "traceback", text, text[-2000:]
    if code == 0:
        return code, "ok", text, ""
    lines = [line for line in text.splitlines() if line.startswith("emocap:")]
    if len(lines) != 1:
        return code, "not-one-line", text, text[-1000:]
    return code, "refused", text, lines[0]


def cli(*args: str):
    from core.cli import main

    return lambda: main(list(args))


def read_recording(path: Path):
    """What every command does with a recording before analysing it: open it, fingerprint it,
    read every frame in order and a few at random."""
    from core.errors import EmoCapError
    from core.take import source_fingerprint
    from core.video import open_source

    def run() -> int:
        try:
            source_fingerprint(path)
            with open_source(path) as source:
                count = 0
                for _index, _image in source.iter_frames():
                    count += 1
                for index in (0, source.info.frame_count // 2, source.info.frame_count - 1):
                    if 0 <= index < count:
                        source.read(index)
        except EmoCapError as err:
            sys.stderr.write(f"emocap: {err}\n")
            return err.exit_code
        return 0

    return run


def load_flame_file(path: Path):
    """``emocap analyze --model flame --flame PATH`` up to the model: load the FLAME file."""
    from core.errors import EmoCapError
    from core.facemodel.loading import ModelChoice, load_face_model

    def run() -> int:
        try:
            load_face_model(ModelChoice("flame", str(path), num_shape=20, num_expression=10))
        except EmoCapError as err:
            sys.stderr.write(f"emocap: {err}\n")
            return err.exit_code
        return 0

    return run


# ---- the cases ------------------------------------------------------------------------------
def take_files(take: Path) -> list[str]:
    names = [str(p.relative_to(take)) for p in sorted(take.rglob("*")) if p.is_file() and p.name != ".writer.lock"]
    return names


def prepare_case(case: int, seed: int, take: Path, recordings: list[Path], flame: Path | None, work: Path):
    """Damage a fresh copy of one input for case ``case``: (target, how, command label, function)."""
    rng = random.Random(seed * 1_000_003 + case)
    kind = rng.random()
    folder = work / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if kind < 0.7 or (not recordings and flame is None):
        copy = folder / "take"
        shutil.copytree(take, copy)
        legacy = rng.random() < 0.5
        if legacy:
            make_legacy(copy)
        target = rng.choice(take_files(copy))
        how = damage(copy / target, rng) + (" (legacy take)" if legacy else "")
        command = rng.choice((("info", str(copy)), ("info", str(copy), "--json"), ("check", str(copy)),
                              ("export", str(copy), "--format", "arkit_csv", "--out", str(folder / "export.csv"))))
        return target, how, " ".join(command[:1] + command[2:4] if command[0] == "export" else command[:1]), cli(*command)
    if kind < 0.9 or flame is None:
        source = rng.choice(recordings)
        copy = folder / source.name
        shutil.copy(source, copy)
        return source.name, damage(copy, rng), "read recording", read_recording(copy)
    copy = folder / flame.name
    shutil.copy(flame, copy)
    return flame.name, damage(copy, rng), "load flame", load_flame_file(copy)


def worker(args) -> int:
    """Run cases [first, cases) and print one JSON line as each starts and ends (for the parent)."""
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    recordings = [FIXTURES / "single_face.mp4", FIXTURES / "single_face.jpg"]
    report = sys.stdout
    for case in range(args.first, args.cases):
        target, how, label, function = prepare_case(case, args.seed, args.take, recordings, args.flame, args.work)
        report.write(json.dumps({"start": case, "target": target, "damage": how, "command": label}) + "\n")
        report.flush()
        started = time.monotonic()
        code, verdict, _stderr, detail = run_command(function, args.case_timeout)
        outcome = Outcome(case, target, how, label, code, verdict, detail, round(time.monotonic() - started, 3))
        report.write(json.dumps(asdict(outcome)) + "\n")
        report.flush()
    return 0


def run_cases(take: Path, flame: Path | None, seed: int, first: int, cases: int, work: Path,
              case_timeout: float) -> list[Outcome]:
    """Cases [first, cases) in worker processes; a worker that dies or stops answering is
    replaced and its case recorded as a crash or a hang."""
    import select
    import subprocess

    outcomes: list[Outcome] = []
    case = first
    while case < cases:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--take", str(take), "--seed", str(seed),
                   "--first", str(case), "--cases", str(cases), "--work", str(work), "--case-timeout", str(case_timeout)]
        if flame is not None:
            command += ["--flame", str(flame)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        current = None
        while True:
            ready, _, _ = select.select([child.stdout], [], [], case_timeout + 60)
            line = child.stdout.readline() if ready else None
            if line is None or line == "":
                if line is None:
                    child.kill()
                code = child.wait()
                if current is not None:
                    verdict = "hang" if line is None else "crash"
                    detail = f"no answer within {case_timeout + 60} s" if line is None else f"worker died (exit {code})"
                    outcomes.append(Outcome(current["start"], current["target"], current["damage"], current["command"],
                                            code, verdict, detail))
                    case = current["start"] + 1
                else:
                    case = cases  # ended (or could not start: nothing more to learn)
                break
            event = json.loads(line)
            if "start" in event:
                current = event
                sys.stderr.write(f"case {event['start']}: {event['command']} after {event['damage']} of {event['target']}\n")
            else:
                outcomes.append(Outcome(**event))
                current = None
                case = event["case"] + 1
        child.stdout.close()
    return outcomes


def build_take(work: Path) -> Path:
    """A small take of single_face.mp4 with every kind of chunk (fit, emotion, refinement) and edits."""
    from core.edit import EditLayer, Edits, save_edits
    from core.emotion.stage import EmotionConfig
    from core.microexpr.config import RefineConfig
    from core.pipeline import Pipeline, PipelineConfig

    take = work / "base_take"
    config = PipelineConfig(device="cpu", emotion=EmotionConfig(recognisers=("fer",)), refine=RefineConfig(iterations=5))
    Pipeline(config).run(FIXTURES / "single_face.mp4", take)
    save_edits(take, Edits((EditLayer(intensity=1.2, emotions=(("happy", 1.5),), start=10, stop=40),)))
    return take


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--take", type=Path, help="a good take to damage (default: build one)")
    parser.add_argument("--cases", type=int, default=300, help="run cases up to this number")
    parser.add_argument("--first", type=int, default=0, help="the first case to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case-timeout", type=float, default=30.0, help="seconds before a case counts as a hang")
    parser.add_argument("--no-flame", action="store_true", help="skip FLAME files")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--flame", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="emocap-fuzz-") as tmp:
        work = Path(tmp)
        take = args.take.resolve() if args.take else build_take(work)
        flame = None
        if not args.no_flame:
            from tests.synthetic_flame import write_synthetic_flame

            flame = work / "flame_model.pkl"
            write_synthetic_flame(flame)
        outcomes = run_cases(take, flame, args.seed, args.first, args.cases, work / "cases", args.case_timeout)
    failed = [o for o in outcomes if o.verdict not in ("ok", "refused")]
    table: dict[str, dict[str, int]] = {}
    for o in outcomes:
        counts = table.setdefault(f"{o.command}: {o.target.split('/')[0]}", {"ok": 0, "refused": 0, "failed": 0})
        counts[o.verdict if o.verdict in ("ok", "refused") else "failed"] += 1
    report = {
        "cases": len(outcomes), "seed": args.seed, "seconds": round(time.monotonic() - started, 1),
        "ok": sum(o.verdict == "ok" for o in outcomes), "refused": sum(o.verdict == "refused" for o in outcomes),
        "failed": [asdict(o) for o in failed],
        "slowest": max((o.seconds for o in outcomes), default=0.0), "by_target": table,
    }
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        print(f"{report['cases']} cases (seed {args.seed}) in {report['seconds']} s: {report['ok']} ok, "
              f"{report['refused']} refused in one line, {len(failed)} failed; slowest case {report['slowest']} s")
        for key, counts in sorted(table.items()):
            print(f"  {key:<40} {counts['ok']:4d} ok {counts['refused']:4d} refused {counts['failed']:4d} failed")
        for outcome in failed:
            print(f"  case {outcome.case}: {outcome.verdict} in '{outcome.command}' after {outcome.damage} "
                  f"of {outcome.target}:\n    " + outcome.detail.strip().replace("\n", "\n    "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
