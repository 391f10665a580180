"""Rows of the device benchmark and their three forms: the printed table, device_report.json and
device_report.md."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

HEADER = ("stage", "device", "workload", "seconds", "items/s", "speed-up vs cpu")


@dataclass
class Row:
    """One stage on one device. seconds: wall time of the workload (None when it did not run);
    items_per_s: ``items`` ``unit`` per second; speedup: the CPU row's seconds / these (cuda rows
    of stages that ran on both); skipped: why it did not run (not a failure); error: why it failed."""

    stage: str
    device: str
    workload: str = ""
    items: int = 0
    unit: str = ""
    seconds: float | None = None
    items_per_s: float | None = None
    speedup: float | None = None
    skipped: str | None = None
    error: str | None = None


def add_speedups(rows: list[Row]) -> None:
    """Fill ``speedup`` of every timed non-CPU row whose stage also has a timed CPU row."""
    cpu = {r.stage: r.seconds for r in rows if r.device == "cpu" and r.seconds}
    for row in rows:
        if row.device != "cpu" and row.seconds and row.stage in cpu:
            row.speedup = cpu[row.stage] / row.seconds


def cells(row: Row) -> tuple[str, ...]:
    """The row as the table's text cells (a row that did not run says why in the workload cell)."""
    if row.seconds is None:
        why = f"skipped: {row.skipped}" if row.skipped else f"FAILED: {row.error}"
        return row.stage, row.device, why, "-", "-", "-"
    return (row.stage, row.device, row.workload, f"{row.seconds:.2f}", f"{row.items_per_s:.1f} {row.unit}/s",
            f"{row.speedup:.1f}x" if row.speedup else "-")


def text_table(rows: list[Row]) -> str:
    table = [HEADER, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in table)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def write_report(folder: Path, rows: list[Row], machine: dict) -> tuple[Path, Path]:
    """device_report.json ({"machine": ..., "rows": [...]}) and device_report.md in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "device_report.json", folder / "device_report.md"
    json_path.write_text(json.dumps({"machine": machine, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    about = "\n".join(f"- {key}: {value}" for key, value in machine.items())
    md_path.write_text(f"# EmoCap device benchmark\n\n{about}\n\n{markdown_table(rows)}\n")
    return json_path, md_path
