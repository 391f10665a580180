"""MediaPipe's blendshape network (core/observe/blendshapes.py) on real faces, and its scores in takes.

Uses the network in the model store ($EMOCAP_MODELS, else ~/.cache/emocap/models; scripts/setup.sh
installs it). The failure cases point the store at an empty temporary folder.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from core.emotion import store
from core.errors import ModelNotInstalledError
from core.facemodel.open_model import ARKIT_NAMES
from core.observe import FaceObserver
from core.observe import blendshapes as bs
from core.pipeline import Pipeline, PipelineConfig
from core.take import Take
from core.take import observations as take_observations
from core.video import open_source
from tests.conftest import fixture_path

JAW_OPEN, TONGUE_OUT = ARKIT_NAMES.index("jawOpen"), ARKIT_NAMES.index("tongueOut")
SMILE = [ARKIT_NAMES.index("mouthSmileLeft"), ARKIT_NAMES.index("mouthSmileRight")]


@pytest.fixture(scope="module")
def observed(tmp_path_factory, wolfgang) -> Take:
    """The talking-head clip observed (no fitting) into a take."""
    root = tmp_path_factory.mktemp("blendshapes") / "wolfgang"
    Pipeline(PipelineConfig(device="cpu", model=None)).run(wolfgang, root)
    return Take.open(root)


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """An empty model store, and no network made before it in this process."""
    monkeypatch.setenv(store.STORE_ENV, str(tmp_path / "empty-store"))
    monkeypatch.setattr(bs, "_shared", None)
    monkeypatch.setattr(take_observations, "_warned_missing_network", False)


def lip_gap(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip distance (landmarks 13, 14) over the outer eye corners' distance (33, 263)."""
    eyes = np.linalg.norm(landmarks[:, 33, :2] - landmarks[:, 263, :2], axis=1)
    return np.linalg.norm(landmarks[:, 13, :2] - landmarks[:, 14, :2], axis=1) / eyes


def test_jaw_open_follows_the_lips_of_a_talking_head(observed):
    obs = observed.load_observations()
    scores = obs.blendshapes
    assert scores.shape == (472, 52) and scores.dtype == np.float32 and obs.has_face.all()
    assert np.isnan(scores[:, TONGUE_OUT]).all()  # the network has no tongueOut
    known = np.delete(scores, TONGUE_OUT, axis=1)
    assert np.isfinite(known).all() and known.min() >= 0 and known.max() <= 1
    gap = lip_gap(obs.landmarks)
    # The network's jawOpen is a sigmoid that stays near 0 until the lips part well (it peaks at
    # 0.24 on this speech), so the relation is monotonic rather than linear: Spearman 0.87,
    # Pearson 0.66 (MediaPipe's own Face Landmarker on this clip: Pearson 0.57).
    assert spearmanr(scores[:, JAW_OPEN], gap).statistic > 0.8
    assert pearsonr(scores[:, JAW_OPEN], gap).statistic > 0.5


def test_a_smiling_still_scores_a_smile():
    with open_source(fixture_path("single_face.jpg")) as source, FaceObserver(crop_images=False) as observer:
        observation = observer.observe(0, 0.0, source.read(0))
    assert observation.has_face and observation.blendshapes.shape == (52,)
    assert (observation.blendshapes[SMILE] > 0.5).all()
    np.testing.assert_array_equal(
        observation.blendshapes, bs.shared_network().predict(observation.landmarks[None])[0]
    )


def test_rows_without_a_face_are_nan_and_calls_are_thread_safe(observed):
    landmarks = observed.load_observations().landmarks[:60].copy()
    landmarks[[3, 17]] = np.nan
    network = bs.BlendshapeNetwork(store.model_path("blendshapes"))
    alone = network.predict(landmarks)
    assert np.isnan(alone[[3, 17]]).all()
    assert np.isfinite(np.delete(alone, [3, 17], axis=0)[:, :TONGUE_OUT]).all()
    assert network.predict(landmarks[:0]).shape == (0, 52)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(network.predict(landmarks))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(r, alone, equal_nan=True) for r in results) and len(results) == 3


def test_the_take_stores_the_scores_and_old_chunks_still_read(observed, tmp_path, no_network, caplog, monkeypatch):
    stored = observed.load_observations()
    with np.load(observed.chunk_path(0)) as chunk:
        assert np.array_equal(chunk["blendshapes"], stored.blendshapes[:128], equal_nan=True)
    # a take written before the scores were stored: its chunks lack the field
    old = tmp_path / "old"
    shutil.copytree(observed.root, old)
    for path in (old / "observations").glob("*.npz"):
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files if k != "blendshapes"}
        np.savez(path, **arrays)
    # ... and a manifest of that time: no chunk records, no checksum of its own, no backup
    manifest = json.loads((old / "take.json").read_text())
    for key in ("chunks", "checksum"):
        manifest.pop(key)
    (old / "take.json").write_text(json.dumps(manifest))
    (old / "take.backup.json").unlink(missing_ok=True)
    # without the network: everything else reads, the scores are NaN, one warning says why
    with caplog.at_level(logging.WARNING, logger="core.take.observations"):
        empty = Take.open(old).load_observations()
    assert np.isnan(empty.blendshapes).all() and np.array_equal(empty.landmarks, stored.landmarks)
    assert len([r for r in caplog.records if "blendshape network 'blendshapes' is not installed" in r.message]) == 1
    # with the network: computed from the stored landmarks, the same as a new take stores
    monkeypatch.undo()
    again = Take.open(old).load_observations()
    assert np.array_equal(again.blendshapes, stored.blendshapes, equal_nan=True)


def test_a_missing_network_is_a_named_error(no_network):
    message = r"blendshape network 'blendshapes' is not installed: run 'emocap models install'"
    with pytest.raises(ModelNotInstalledError, match=message):
        bs.BlendshapeNetwork()
    with pytest.raises(ModelNotInstalledError, match=message):
        FaceObserver()
