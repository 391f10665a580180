#!/usr/bin/env bash
# Install this EmoCap bundle for the current user (no root): run it from the unpacked bundle.
#   bash install.sh              the bundle stays where it is; ~/.local/bin/emocap links to it,
#                                plus the menu entry (.desktop) and the icon
#   bash install.sh --uninstall  remove those three again (the bundle folder is left alone)
# The model store (emotion recognisers' weights, `emocap models install`) is ~/.cache/emocap/models.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
bin="$HOME/.local/bin"
desktop="$data/applications/emocap.desktop"
icon="$data/icons/hicolor/scalable/apps/emocap.svg"
if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$bin/emocap" "$desktop" "$icon"
  echo "removed $bin/emocap, $desktop and $icon"
  exit 0
fi
[ -x "$here/emocap" ] || { echo "install.sh: $here/emocap not found: run install.sh from the unpacked bundle" >&2; exit 2; }
mkdir -p "$bin" "$(dirname "$desktop")" "$(dirname "$icon")"
ln -sfn "$here/emocap" "$bin/emocap"
cp "$here/share/emocap.svg" "$icon"
sed "s|^Exec=emocap|Exec=\"$here/emocap\"|; s|^TryExec=emocap|TryExec=$here/emocap|" "$here/share/emocap.desktop" > "$desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$(dirname "$desktop")" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q "$data/icons/hicolor" 2>/dev/null || true
echo "installed: $bin/emocap -> $here/emocap, $desktop, $icon"
case ":$PATH:" in *":$bin:"*) ;; *) echo "note: $bin is not on your PATH; add it to run 'emocap' from a terminal";; esac
"$here/emocap" --version
