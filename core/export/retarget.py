"""Retarget maps: EmoCap's expression curves onto a target rig's channels (YAML, version 1).

A map names each target channel and says how it is made from the take's expression curves (the
52 ARKit names for the open model, ``exp000``... for FLAME)::

    emocap_retarget: 1            # format version (required)
    name: My rig                  # shown in messages (optional)
    unmapped: drop                # curves no channel reads: drop (default) or keep (own name)
    missing_sources: error        # a source the take lacks: error (default) or skip the channel
    channels:
      JawDrop: jawOpen            # a rename
      Smile_L:                    # gain, offset, clamp
        source: mouthSmileLeft
        gain: 1.2
        offset: 0.0
        clamp: [0, 1]             # [low, high]; null for no bound on that side
      Blink:                      # a weighted sum of sources
        sources: {eyeBlinkLeft: 0.5, eyeBlinkRight: 0.5}
      TeethApart: {source: jawOpen, gain: 0.5}   # one source may drive several targets

Each frame, a channel's value is ``clamp(offset + gain * sum_i(weight_i * source_i))`` in the
curves' own units (blend-shape weights, 1.0 = the full shape); frames without a face stay gaps.
Head, neck, jaw-joint and eye rotations are not curves of the map: they pass unchanged.

What the scene formats (fbx, gltf, usd) carry with a map: the face mesh gets one shape key per
*target* channel, named as the map says and keyed with the mapped values, so the curves drive a
rig whose shape keys have those names. The key's geometry is the EmoCap shape the channel stands
for: ``sum_i p_i * delta_i`` with ``p = weights / |weights|^2`` (the smallest mix of sources that
gives the channel the value 1; a rename keeps the source's shape). Gain, offset and clamp live in
the keyed values only. So the mesh in the file previews the rig: it is the analysed face exactly
when the map only renames (gain 1, offset 0, no clamp reached, each source used once), and it shows
what a gain, a clamp, a combination or a source driving two targets does. The mesh caches (abc,
obj_seq) show the same preview (:meth:`BoundRetarget.model_weights` turns the mapped values back
into the face model's weights).

Errors are :class:`core.errors.RetargetMapError` naming the file, the line and the key.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import RetargetMapError

log = logging.getLogger(__name__)

VERSION = 1
PRESETS = Path(__file__).resolve().parents[2] / "resources" / "retarget"
TOP_KEYS = ("emocap_retarget", "name", "description", "unmapped", "missing_sources", "channels")
CHANNEL_KEYS = ("source", "sources", "gain", "offset", "clamp")


@dataclass(frozen=True)
class Channel:
    """One target channel: ``clamp(offset + gain * sum(weight * source))``. ``line``: 1-based line
    of its key in the map file."""

    target: str
    sources: tuple[tuple[str, float], ...]
    gain: float = 1.0
    offset: float = 0.0
    low: float | None = None
    high: float | None = None
    line: int = 0


@dataclass(frozen=True)
class RetargetMap:
    """A parsed map (see the module docstring). ``where``: the file, for messages."""

    name: str
    where: str
    channels: tuple[Channel, ...]
    unmapped: str = "drop"
    missing_sources: str = "error"

    def bind(self, source_names) -> BoundRetarget:
        """The map applied to a take's curve names; RetargetMapError for an unknown source curve."""
        names = list(source_names)
        index = {n: i for i, n in enumerate(names)}
        channels = []
        for ch in self.channels:
            unknown = [s for s, _ in ch.sources if s not in index]
            if unknown:
                if self.missing_sources == "skip":
                    log.info("%s: channel %s skipped, the take has no curve %s", self.where, ch.target, unknown[0])
                    continue
                near = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
                raise RetargetMapError(f"{self.where}, line {ch.line}: channel '{ch.target}' reads the unknown source "
                                       f"curve '{unknown[0]}'; this take's curves are {near}")
            channels.append(ch)
        if self.unmapped == "keep":
            used = {s for ch in channels for s, _ in ch.sources}
            channels += [Channel(n, ((n, 1.0),)) for n in names if n not in used]
        targets = [ch.target for ch in channels]
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise RetargetMapError(f"{self.where}: target channel '{twice[0]}' is made twice (a kept unmapped curve "
                                   "has the name of a channel); rename the channel or set unmapped: drop")
        if not channels:
            raise RetargetMapError(f"{self.where}: no channel of the map reads this take's curves")
        matrix = np.zeros((len(channels), len(names)), np.float64)
        for t, ch in enumerate(channels):
            for s, w in ch.sources:
                matrix[t, index[s]] += w
        return BoundRetarget(
            name=self.name, source_names=tuple(names), targets=tuple(targets), matrix=matrix,
            gain=np.array([c.gain for c in channels]), offset=np.array([c.offset for c in channels]),
            low=np.array([-np.inf if c.low is None else c.low for c in channels]),
            high=np.array([np.inf if c.high is None else c.high for c in channels]))


@dataclass(frozen=True)
class BoundRetarget:
    """A map bound to E source curves, giving T target channels.

    matrix: T x E combination weights. gain, offset, low, high: T (low/high +-inf when unbounded).
    """

    name: str
    source_names: tuple[str, ...]
    targets: tuple[str, ...]
    matrix: np.ndarray
    gain: np.ndarray
    offset: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def curves(self, source: np.ndarray) -> np.ndarray:
        """N x E source curves -> N x T target curves (float32); NaN rows (gaps) stay NaN."""
        source = np.asarray(source, np.float64)
        values = self.offset + self.gain * (source @ self.matrix.T)
        return np.clip(values, self.low, self.high).astype(np.float32)

    @property
    def preview(self) -> np.ndarray:
        """T x E: row t is the mix of source shapes target t's shape key holds (weights / |weights|^2)."""
        norm = (self.matrix ** 2).sum(axis=1, keepdims=True)
        return np.divide(self.matrix, norm, out=np.zeros_like(self.matrix), where=norm > 0)

    def shape_deltas(self, deltas: np.ndarray) -> np.ndarray:
        """E x V x 3 source shape offsets -> T x V x 3 target shape-key offsets (float32)."""
        return np.einsum("te,evc->tvc", self.preview, np.asarray(deltas, np.float64)).astype(np.float32)

    def model_weights(self, target_values: np.ndarray) -> np.ndarray:
        """N x T mapped values -> N x E face-model weights that pose the same preview mesh as the
        target shape keys do (float32)."""
        return (np.asarray(target_values, np.float64) @ self.preview).astype(np.float32)


# --- reading the YAML ------------------------------------------------------------------------------


def preset_path(name: str) -> Path:
    """A shipped preset (resources/retarget/NAME.yaml) by name, or ``name`` itself as a path."""
    path = Path(name)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        return path
    return PRESETS / f"{name}.yaml"


def presets() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def load_map(path) -> RetargetMap:
    """Read and check a retarget map file (or a shipped preset's name); RetargetMapError names the
    line and key of any problem."""
    import yaml

    name = str(path)
    path = preset_path(name)
    where = str(path)
    if not path.exists() and path.parent == PRESETS and Path(name).suffix == "":
        raise RetargetMapError(f"no retarget map '{name}': not a file, and not a preset ({', '.join(presets())})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RetargetMapError(f"cannot read the retarget map {where}: {getattr(err, 'strerror', None) or err}") from err
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise RetargetMapError(f"{where}{line}: not valid YAML: {getattr(err, 'problem', None) or err}") from err
    return parse_map(root, where)


def _line(node) -> int:
    return node.start_mark.line + 1


def _mapping(node, where: str, what: str) -> list[tuple[str, object, object]]:
    """(key, key node, value node) of a YAML mapping node."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise RetargetMapError(f"{where}, line {_line(node)}: {what} must be a mapping of names to values")
    out, seen = [], set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or not key_node.value:
            raise RetargetMapError(f"{where}, line {_line(key_node)}: {what} has a key that is not a name")
        if key_node.value in seen:
            raise RetargetMapError(f"{where}, line {_line(key_node)}: '{key_node.value}' appears twice in {what}")
        seen.add(key_node.value)
        out.append((key_node.value, key_node, value_node))
    return out


def _scalar(node, where: str, key: str) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        raise RetargetMapError(f"{where}, line {_line(node)}: '{key}' must be a single value")
    return node.value


def _number(node, where: str, key: str, *, allow_null: bool = False) -> float | None:
    import yaml

    if allow_null and isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return None
    text = _scalar(node, where, key)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or node.tag.endswith(":bool"):
        raise RetargetMapError(f"{where}, line {_line(node)}: '{key}' must be a finite number, not '{text}'")
    return value


def _name(node, where: str, key: str) -> str:
    text = _scalar(node, where, key).strip()
    if not text:
        raise RetargetMapError(f"{where}, line {_line(node)}: '{key}' must name a source curve")
    return text


def _channel(target: str, key_node, node, where: str) -> Channel:
    import yaml

    line = _line(key_node)
    if isinstance(node, yaml.ScalarNode):  # a rename
        return Channel(target, ((_name(node, where, target), 1.0),), line=line)
    fields = {}
    for key, knode, vnode in _mapping(node, where, f"channel '{target}'"):
        if key not in CHANNEL_KEYS:
            raise RetargetMapError(f"{where}, line {_line(knode)}: channel '{target}' has an unknown key '{key}' "
                                   f"(use {', '.join(CHANNEL_KEYS)})")
        fields[key] = vnode
    if ("source" in fields) == ("sources" in fields):
        raise RetargetMapError(f"{where}, line {line}: channel '{target}' needs exactly one of 'source' "
                               "(a curve name) or 'sources' (curve names with weights)")
    if "source" in fields:
        sources = ((_name(fields["source"], where, f"{target}.source"), 1.0),)
    else:
        entries = _mapping(fields["sources"], where, f"'{target}.sources'")
        if not entries:
            raise RetargetMapError(f"{where}, line {_line(fields['sources'])}: '{target}.sources' is empty")
        sources = tuple((k, _number(v, where, f"{target}.sources.{k}")) for k, _, v in entries)
    gain = _number(fields["gain"], where, f"{target}.gain") if "gain" in fields else 1.0
    offset = _number(fields["offset"], where, f"{target}.offset") if "offset" in fields else 0.0
    low = high = None
    if "clamp" in fields:
        clamp = fields["clamp"]
        if not isinstance(clamp, yaml.SequenceNode) or len(clamp.value) != 2:
            raise RetargetMapError(f"{where}, line {_line(clamp)}: '{target}.clamp' must be [low, high]")
        low = _number(clamp.value[0], where, f"{target}.clamp", allow_null=True)
        high = _number(clamp.value[1], where, f"{target}.clamp", allow_null=True)
        if low is not None and high is not None and low > high:
            raise RetargetMapError(f"{where}, line {_line(clamp)}: '{target}.clamp' low {low:g} is above high {high:g}")
    return Channel(target, sources, gain, offset, low, high, line)


def parse_map(root, where: str = "<map>") -> RetargetMap:
    """A RetargetMap from a composed YAML node (see :func:`load_map`)."""
    if root is None:
        raise RetargetMapError(f"{where}: the file is empty; a retarget map starts with 'emocap_retarget: {VERSION}'")
    top = {}
    for key, knode, vnode in _mapping(root, where, "the map"):
        if key not in TOP_KEYS:
            raise RetargetMapError(f"{where}, line {_line(knode)}: unknown key '{key}' (use {', '.join(TOP_KEYS)})")
        top[key] = vnode
    if "emocap_retarget" not in top:
        raise RetargetMapError(f"{where}: missing 'emocap_retarget: {VERSION}' (the format version)")
    version = _number(top["emocap_retarget"], where, "emocap_retarget")
    if version != VERSION:
        raise RetargetMapError(f"{where}, line {_line(top['emocap_retarget'])}: format version {version:g} is not "
                               f"supported (this EmoCap reads version {VERSION})")
    choices = {"unmapped": ("drop", "keep"), "missing_sources": ("error", "skip")}
    options = {}
    for key, allowed in choices.items():
        value = _scalar(top[key], where, key) if key in top else allowed[0]
        if value not in allowed:
            raise RetargetMapError(f"{where}, line {_line(top[key])}: '{key}' must be {' or '.join(allowed)}, not '{value}'")
        options[key] = value
    if "channels" not in top:
        raise RetargetMapError(f"{where}: missing 'channels' (target channel: source curve, ...)")
    channels = tuple(_channel(t, k, v, where) for t, k, v in _mapping(top["channels"], where, "'channels'"))
    name = _scalar(top["name"], where, "name") if "name" in top else Path(where).stem
    return RetargetMap(name=name, where=where, channels=channels, **options)
