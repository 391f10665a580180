"""A single photograph in the app: bars for emotion, affect and the strongest expression curves
instead of one-point timelines, the photo and its mesh side by side, export as for clips. The
window is grabbed to a PNG (EMOCAP_SCREENSHOTS=folder keeps it) to be looked at."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.emotion.stage import EmotionConfig
from core.emotion.types import EMOTIONS
from core.export import export
from core.pipeline import Pipeline, PipelineConfig
from tests.conftest import fixture_path


@pytest.fixture(scope="module")
def still_take(tmp_path_factory):
    """single_face.jpg (a broad smile) analysed with the default emotion recogniser."""
    take_dir = tmp_path_factory.mktemp("still") / "smile"
    config = PipelineConfig(device="cpu", emotion=EmotionConfig(recognisers=("fer",)))
    Pipeline(config).run(fixture_path("single_face.jpg"), take_dir)
    return take_dir


def test_a_photo_shows_bars_and_its_mesh_and_exports(window, qtbot, still_take, tmp_path):
    with qtbot.waitSignal(window.take_loaded, timeout=60000):
        window.open_take(still_take)
    qtbot.wait(300)  # let the GL viewport draw
    still = window.still
    assert still.isVisible() and not window.timelines.isVisible() and not window.transport.isVisible()
    assert window.video.isVisible() and window.viewport.isVisible() and window.viewport.has_mesh

    emotion = still.emotion.bars
    assert sorted(bar.label for bar in emotion) == sorted(EMOTIONS)
    assert [bar.value for bar in emotion] == sorted((bar.value for bar in emotion), reverse=True)
    assert emotion[0].label == "happy" and abs(sum(bar.value for bar in emotion) - 1) < 1e-3
    assert "fer (MIT)" in still.emotion_box.title()
    # the smile's happiness can be scaled in the Edit dock, as in a clip
    assert "happy" in window.view.emotions_with_direction
    assert window.edit_panel.emotion_note.isHidden()

    curves = still.curves.bars
    values = [bar.value for bar in curves]
    assert 3 <= len(curves) <= 12 and values == sorted(values, reverse=True)
    assert {"mouthSmileLeft", "mouthSmileRight"} & {bar.label for bar in curves[:4]}

    out = tmp_path / "still.json"
    export(still_take, "curves_json", out)
    exported = json.loads(out.read_text())
    assert len(exported["frame_index"]) == 1
    names = exported["expression_names"]
    row = np.array(exported["expression"][0], dtype=float)
    assert names[int(np.argmax(row))] == curves[0].label and row.max() == pytest.approx(values[0], abs=1e-6)

    shots = Path(os.environ.get("EMOCAP_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    # from the screen, not window.grab(): the 3D view is a native OpenGL window of its own
    image = window.screen().grabWindow(window.winId())
    assert image.save(str(shots / "still.png")) and image.width() > 0
