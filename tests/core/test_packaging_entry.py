"""The desktop bundle's program (packaging/emocap_main.py) runs the ``python ...`` command lines that
EmoCap starts as children of ``sys.executable``; anything else is the CLI's. Checked here without a
bundle; packaging/smoke_test.sh checks the built one."""

import importlib.util
import sys
from pathlib import Path

import pytest

from core.errors import ExportError
from core.export import fbx

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def entry(monkeypatch):
    spec = importlib.util.spec_from_file_location("emocap_main", ROOT / "packaging" / "emocap_main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    return module


def test_a_script_by_path_with_interpreter_flags(entry, tmp_path):
    script = tmp_path / "worker.py"
    out = tmp_path / "out.txt"
    script.write_text("import sys\nopen(sys.argv[2], 'w').write(sys.argv[0] + ' ' + sys.argv[1])\n")
    assert entry.run_as_python(["-P", str(script), "scene.npz", str(out)])  # as core/export/fbx.py runs its worker
    assert out.read_text() == f"{script} scene.npz"


def test_a_module_and_code(entry, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:  # as app/workers.py runs analyses
        entry.run_as_python(["-m", "core.cli", "--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("EmoCap ")
    assert entry.run_as_python(["-c", "import sys; print('code', sys.argv[1:])", "x"])
    assert capsys.readouterr().out == "code ['x']\n"


def test_cli_command_lines_are_left_to_the_cli(entry):
    for argv in (["analyze", "clip.mp4", "--out", "t"], ["--version"], ["gui"], [], ["-v", "info", "t"]):
        assert not entry.run_as_python(argv)


def test_fbx_from_a_bundle_without_blender_names_the_full_install(monkeypatch):
    monkeypatch.setattr(fbx, "bpy_available", lambda: False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(ExportError, match="full install"):
        fbx.fbx(None)
    monkeypatch.delattr(sys, "frozen")
    with pytest.raises(ExportError, match="pip install bpy"):
        fbx.fbx(None)
