"""Read the timing of an FBX back with ufbx (an independent C reader), in a subprocess of its own:

    python tests/core/ufbx_timing.py FILE.fbx OUT.npz

OUT.npz: fps (CustomFrameRate), time_mode (ufbx TimeMode value), stack_time (the animation stack's
time_begin, time_end, seconds), span (GlobalSettings TimeSpanStart, TimeSpanStop, seconds),
value_names (one per animated value: the element's name and the property, e.g. "jawOpen
DeformPercent", "root Lcl Rotation"), first_key / last_key (seconds of each value's first curve's
first and last key) and key_counts. Every wrapper is kept until the process ends (ufbx 0.0.5's
Python wrapper crashes when one is released and fetched again; see ufbx_readback.py).
"""

from __future__ import annotations

import sys

import numpy as np
import ufbx

KEEP: list = []


def keep(x):
    KEEP.append(x)
    return x


def read(path: str) -> dict[str, np.ndarray]:
    scene = keep(ufbx.load_file(path))
    settings = keep(scene.settings)
    props = keep(settings.props)
    ktime = 46186158000.0
    span = [ufbx.find_int(props, name, -1) / ktime for name in ("TimeSpanStart", "TimeSpanStop")]
    stack = keep(list(keep(scene.anim_stacks)))[0]
    layer = keep(list(keep(stack.layers)))[0]
    names, first, last, counts = [], [], [], []
    for prop in keep(list(keep(layer.anim_props))):
        keep(prop)
        element = keep(prop.element)
        value = keep(prop.anim_value)
        curves = [keep(c) for c in keep(value.curves) if c is not None]
        if not curves:
            continue
        keys = keep(list(keep(curves[0].keyframes)))
        if not keys:
            continue
        names.append(f"{element.name} {prop.prop_name}")
        first.append(keys[0].time)
        last.append(keys[-1].time)
        counts.append(len(keys))
    return {
        "fps": np.float64(ufbx.find_real(props, "CustomFrameRate", 0.0)), "time_mode": np.int64(int(settings.time_mode)),
        "stack_time": np.array([stack.time_begin, stack.time_end], np.float64), "span": np.array(span, np.float64),
        "value_names": np.array(names, dtype=str), "first_key": np.array(first, np.float64),
        "last_key": np.array(last, np.float64), "key_counts": np.array(counts, np.int64),
    }


if __name__ == "__main__":
    np.savez(sys.argv[2], **read(sys.argv[1]))
