"""One version string: pyproject.toml's, shown by ``emocap --version`` with the git commit."""

import subprocess
import sys
import tomllib
from pathlib import Path

import core
from core.version import BuildInfo, build_info, version
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def pyproject_version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def test_version_is_pyprojects():
    assert version() == pyproject_version() == core.__version__


def test_emocap_version_prints_the_version_and_commit():
    result = run_cli("--version")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"EmoCap {pyproject_version()} (commit {head.stdout.strip()[:12]}")
    assert build_info().commit == head.stdout.strip()


def test_a_bundles_build_info_wins(tmp_path):
    # what packaging/build.sh writes into the bundle, where there is no pyproject and no git
    (tmp_path / "emocap_build_info.py").write_text('VERSION = "9.8.7"\nCOMMIT = "0123456789abcdef0123"\nDIRTY = False\n')
    code = "from core.version import version_text; print(version_text())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "EmoCap 9.8.7 (commit 0123456789ab)"


def test_build_info_text():
    assert BuildInfo("1.0", None).text() == "1.0"
    assert BuildInfo("1.0", "a" * 40, dirty=True).text() == "1.0 (commit aaaaaaaaaaaa, modified)"
