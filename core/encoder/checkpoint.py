"""Encoder checkpoints: one file holding the weights and everything needed to rebuild the module.

Format (a ``torch.save`` dict, loaded with ``weights_only=True``): ``format`` = "emocap-encoder",
``version``, ``config`` (EncoderConfig.to_dict), ``state_dict``, ``meta`` (JSON-like: the face
model's settings and expression names, how it was trained, its validation report) and optionally
``training`` (optimizer and schedule state of an unfinished run; core ignores it). Written
atomically (temporary file, fsync, rename), so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from core.atomic import write_bytes_atomic
from core.encoder.config import EncoderConfig
from core.encoder.model import FaceEncoder
from core.errors import EncoderError

log = logging.getLogger(__name__)

FORMAT = "emocap-encoder"
VERSION = 1


@dataclass(frozen=True)
class LoadedEncoder:
    """An encoder read from ``path``: the module (eval mode), its metadata, and the raw training
    state when the checkpoint carries one (else None)."""

    encoder: FaceEncoder
    meta: dict
    training: dict | None
    path: Path


def checkpoint_payload(encoder: FaceEncoder, meta: dict | None = None, training: dict | None = None) -> dict:
    payload = {
        "format": FORMAT, "version": VERSION, "config": encoder.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}, "meta": dict(meta or {}),
    }
    if training is not None:
        payload["training"] = training
    return payload


def save_encoder(path: str | Path, encoder: FaceEncoder, meta: dict | None = None, training: dict | None = None) -> Path:
    """Write the encoder (and optional training state) to ``path`` atomically; returns the path."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(checkpoint_payload(encoder, meta, training), buffer)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as err:
        raise EncoderError(f"cannot write encoder checkpoint {path}: {err.strerror}") from err
    log.info("encoder checkpoint written: %s", path)
    return path


def load_encoder(path: str | Path, device: str = "cpu") -> LoadedEncoder:
    """Read a checkpoint written by :func:`save_encoder`. EncoderError with a one-line reason when
    the file is missing, unreadable or not an EmoCap encoder."""
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"no encoder checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged or foreign file
        raise EncoderError(f"{path} is not a readable encoder checkpoint: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise EncoderError(f"{path} is not an EmoCap encoder checkpoint")
    if payload.get("version") != VERSION:
        raise EncoderError(f"{path} has encoder format version {payload.get('version')}; this EmoCap reads {VERSION}")
    try:
        encoder = FaceEncoder(EncoderConfig.from_dict(payload["config"]))
        encoder.load_state_dict(payload["state_dict"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise EncoderError(f"{path} does not match its own encoder configuration: {err}") from err
    encoder.eval().to(device)
    return LoadedEncoder(encoder, dict(payload.get("meta") or {}), payload.get("training"), path)
