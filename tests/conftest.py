"""Shared test fixtures. Real recordings live in ../shared/fixtures (beside the checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(f"fixture {path} is missing: ../shared must sit beside the checkout")
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``emocap ARGS`` in a fresh interpreter, as a user would."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args], capture_output=True, text=True, timeout=timeout,
        env=env, cwd=ROOT,
    )


def modules_loaded_by(script: str, names: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Run the Python statements ``script`` in a fresh interpreter at the project root, then print
    which of the modules ``names`` they imported (a sorted list, stdout's last line)."""
    probe = f"{script}\nimport sys\nprint(sorted(m for m in {names!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.fixture(scope="session")
def wolfgang() -> Path:
    return fixture_path("WolfgangLanger_Pexels.mp4")


@pytest.fixture(scope="session")
def wolfgang_take(tmp_path_factory, wolfgang):
    """The full pipeline run once on the 472-frame talking-head clip: (summary, take folder)."""
    from core.pipeline import Pipeline, PipelineConfig

    take_dir = tmp_path_factory.mktemp("takes") / "wolfgang"
    summary = Pipeline(PipelineConfig(device="cpu")).run(wolfgang, take_dir)
    return summary, take_dir


@pytest.fixture(scope="session")
def single_emotion_take(tmp_path_factory):
    """single_face.mp4 (neutral, then a smile) analysed with fitting and both recognisers:
    (summary, take folder)."""
    from core.emotion.stage import EmotionConfig
    from core.pipeline import Pipeline, PipelineConfig

    take_dir = tmp_path_factory.mktemp("emotion") / "single"
    summary = Pipeline(PipelineConfig(device="cpu", emotion=EmotionConfig())).run(fixture_path("single_face.mp4"), take_dir)
    return summary, take_dir


@pytest.fixture
def one_torch_thread():
    """Run the test with torch on one thread (the shared CI machine has two cores)."""
    from core.fit.fitter import single_threaded_torch

    with single_threaded_torch():
        yield


def refuse_writes_in(monkeypatch, folder: Path) -> None:
    """Make creating files or folders directly inside ``folder`` fail with EACCES, as a read-only
    folder does for a normal user (root ignores permission bits). Undo with monkeypatch.undo()."""
    import errno

    def guard(real):
        def inner(path, *args, **kwargs):
            if Path(path).parent == folder:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real(path, *args, **kwargs)

        return inner

    monkeypatch.setattr(os, "open", guard(os.open))
    monkeypatch.setattr(os, "mkdir", guard(os.mkdir))


# The longest test files (seconds on the 2-core CI machine, measured with --durations=0 on
# 2026-12-06), run first: scripts/test.sh hands whole files to its workers in collection order, and
# a long file taken last keeps one worker busy after the other has finished.
LONGEST_FILES = (
    "tests/core/test_take_integrity.py",  # 208 s
    "tests/core/test_batch.py",  # 170 s
    "tests/core/test_microexpr_pipeline.py",  # 144 s
    "tests/app/test_neutral.py",  # 131 s
    "tests/core/test_pipeline_fit.py",  # 125 s
    "tests/core/test_pipeline.py",  # 122 s
    "tests/core/test_performer.py",  # 114 s
    "tests/core/test_emotion_stage.py",  # 106 s
    "tests/core/test_calibration.py",  # 103 s
    "tests/core/test_open_model.py",  # 93 s
)


def pytest_collection_modifyitems(config, items) -> None:
    """Longest files first (LONGEST_FILES, in that order), the rest as collected."""
    rank = {name: k for k, name in enumerate(LONGEST_FILES)}

    def key(item) -> int:
        path = item.path.resolve().relative_to(ROOT).as_posix()
        return rank.get(path, len(LONGEST_FILES))

    items.sort(key=key)  # stable: tests keep their order inside a file and among the rest
