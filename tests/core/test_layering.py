"""core/ must work with no Qt at all: import every core module with Qt blocked."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKER = r"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'PySide6', 'shiboken6', 'vispy', 'pyqtgraph', 'superqt', 'PyQt5', 'PyQt6'}:
            raise ImportError('Qt is blocked for core: ' + name)
sys.meta_path.insert(0, Block())
import core
names = [m.name for m in pkgutil.walk_packages(core.__path__, 'core.')]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_core_imports_without_qt():
    result = subprocess.run([sys.executable, "-c", BLOCKER], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 10


def test_core_sources_name_no_gui_toolkit():
    offenders = [
        str(p) for p in (ROOT / "core").rglob("*.py")
        if any(word in p.read_text() for word in ("import PySide6", "from PySide6", "import vispy", "import pyqtgraph"))
    ]
    assert offenders == []
