"""The emotion stage through the pipeline and the CLI, on real fixtures."""

import dataclasses
import json

import numpy as np
import pytest

from core.emotion.from_params import predict_from_params
from core.emotion.stage import EmotionConfig
from core.emotion.types import EMOTIONS
from core.pipeline import Pipeline, PipelineConfig
from core.take import Take
from tests.conftest import fixture_path, run_cli


@pytest.fixture(scope="module")
def emotion_take(single_emotion_take):
    summary, take_dir = single_emotion_take
    return summary, Take.open(take_dir)


def test_timelines_are_stored_for_both_recognisers(emotion_take):
    summary, take = emotion_take
    stored = take.read_emotion()
    n = summary.frames
    assert stored.primary == "emonet" and set(stored.timelines) == {"fer", "emonet"}
    for timeline in stored.timelines.values():
        probs = timeline.probabilities
        assert probs.shape == (n, len(EMOTIONS))
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
        finite = timeline.consistency[np.isfinite(timeline.consistency)]
        assert len(finite) > 0 and ((finite >= 0) & (finite <= 1)).all()
    assert stored.timelines["fer"].measured.all()  # the fast recogniser sees every frame
    slow = stored.timelines["emonet"].measured
    assert 2 <= slow.sum() < n  # the slow one is sampled ...
    assert slow[0] and slow[-1]  # ... including the run's ends
    assert stored.main.valence.shape == (n,) and stored.timelines["fer"].valence is None


def test_summary_reports_dominant_emotion_segments_and_consistency(emotion_take, tmp_path):
    summary, take = emotion_take
    assert summary.dominant_emotion in EMOTIONS and summary.emotion_recogniser == "emonet"
    assert summary.emotion_segments and summary.emotion_segments[0]["start"] == 0
    assert summary.emotion_segments[-1]["stop"] == summary.frames
    assert set(summary.mean_consistency) == {"fer", "emonet"}
    info = json.loads(run_cli("info", str(take.root), "--json").stdout)
    assert info["dominant_emotion"] == summary.dominant_emotion
    assert info["mean_consistency"] == summary.mean_consistency


def test_emotion_from_parameters_model_is_stored_and_reloads(emotion_take):
    summary, take = emotion_take
    net = take.read_emotion().param_model(num_expression=52)
    fit = take.read_fit()
    scores = predict_from_params(net, fit.expression[fit.has_face])
    assert scores.probabilities.shape == (int(fit.has_face.sum()), len(EMOTIONS))
    assert take.manifest.emotion.param_model["frames"] == int(fit.has_face.sum())


def test_no_emotion_is_invented_for_frames_without_a_face(tmp_path):
    config = PipelineConfig(device="cpu", emotion=EmotionConfig(recognisers=("fer",)))
    Pipeline(config).run(fixture_path("face_noface.mov"), tmp_path / "t")
    take = Take.open(tmp_path / "t")
    probabilities = take.read_emotion().timelines["fer"].probabilities
    has_face = take.load_observations().has_face
    assert np.isnan(probabilities[~has_face]).all()
    assert not np.isnan(probabilities[has_face]).any()


def test_broad_smile_reads_happy_in_the_cli(tmp_path):
    result = run_cli("analyze", str(fixture_path("single_face.jpg")), "--out", str(tmp_path / "t"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dominant_emotion"] == "happy"


def test_new_blink_and_lip_floors_make_the_reconstruction_s_emotion_stale(tmp_path):
    """The reconstruction's emotion judges the fit as read (closures applied): a rerun with other
    closure thresholds redoes the emotion stage; a rerun with the same settings does not."""
    from core.closures.detect import ClosureConfig

    config = PipelineConfig(device="cpu", emotion=EmotionConfig(recognisers=("fer",)))
    Pipeline(config).run(fixture_path("face_noface.mov"), tmp_path / "t")
    first = Take.open(tmp_path / "t").manifest.emotion.settings
    Pipeline(config).run(fixture_path("face_noface.mov"), tmp_path / "t")
    assert Take.open(tmp_path / "t").manifest.emotion.settings == first
    closures = dataclasses.replace(ClosureConfig(), blink_target=0.99, closed=0.25)
    Pipeline(dataclasses.replace(config, closures=closures)).run(fixture_path("face_noface.mov"), tmp_path / "t")
    take = Take.open(tmp_path / "t")
    assert take.manifest.closures.settings["closures"]["blink_target"] == 0.99
    assert take.manifest.emotion.settings["fitted"] != first["fitted"]
    assert take.manifest.emotion.settings["fitted"] == take.fit_digest(closures=True)
    assert take.manifest.emotion.is_current(take.manifest.emotion.settings)


def test_new_appearance_maps_make_the_reconstruction_s_emotion_stale(tmp_path, monkeypatch):
    """The reconstruction is judged through renders that use the learned appearance maps: the emotion
    record holds their digest, and a rerun that finds other maps' digest (the shipped ones at half
    strength) redoes the stage."""
    from core.emotion import stage
    from core.render.appearance import appearance_maps_digest, load_appearance_maps, save_appearance_maps

    config = PipelineConfig(device="cpu", emotion=EmotionConfig(recognisers=("fer",)))
    Pipeline(config).run(fixture_path("face_noface.mov"), tmp_path / "t")
    first = Take.open(tmp_path / "t").manifest.emotion.settings
    assert first["appearance"] == appearance_maps_digest()
    shipped = load_appearance_maps()
    weaker = tmp_path / "maps.npz"
    save_appearance_maps(dataclasses.replace(shipped, maps=0.5 * shipped.maps), weaker)
    monkeypatch.setattr(stage, "appearance_maps_digest", lambda: appearance_maps_digest(weaker))
    Pipeline(config).run(fixture_path("face_noface.mov"), tmp_path / "t")
    again = Take.open(tmp_path / "t").manifest.emotion
    assert again.settings["appearance"] == appearance_maps_digest(weaker) != first["appearance"]
    assert again.is_current(again.settings)


@pytest.fixture(scope="module")
def stage_inputs(emotion_take):
    """What analyse_emotion takes, for the single_face take: (source, observations, fit, model,
    both recognisers)."""
    from core.emotion.recognisers import load_recogniser
    from core.facemodel.loading import ModelChoice, load_face_model
    from core.video import open_source

    _, take = emotion_take
    with open_source(take.manifest.source.path) as source:
        yield (source, take.load_observations(), take.read_fit(), load_face_model(ModelChoice()),
               {name: load_recogniser(name) for name in ("fer", "emonet")})


def run_stage(stage_inputs, names, monkeypatch, cancel=None, **config):
    """analyse_emotion with the recognisers ``names`` (and other EmotionConfig ``config``); returns
    (result, [(rows, size)] of every reconstruction render it asked for)."""
    from core.emotion.stage import analyse_emotion
    from core.render.reconstruction import ReconstructionRenderer
    from core.stages import drain

    source, observations, fit, model, recognisers = stage_inputs
    renders = []
    render = ReconstructionRenderer.render_crop_batch

    def recorded(self, indices, size=None):
        renders.append((list(indices), size))
        return render(self, indices, size)

    monkeypatch.setattr(ReconstructionRenderer, "render_crop_batch", recorded)
    result = drain(analyse_emotion(source, observations, fit, model, {k: recognisers[k] for k in names},
                                   EmotionConfig(recognisers=names, **config), cancel))
    return result, renders


def test_each_frame_is_rendered_once_at_the_size_its_judges_need(stage_inputs, monkeypatch):
    """Frames that EmoNet measured are rendered at 256 and judged by both recognisers; the frames
    FER alone judges at FER's render_side, which keeps the consistency of FER's timeline."""
    from core.emotion.stage import _frames_to_render

    source, observations, fit, _, recognisers = stage_inputs
    result, renders = run_stage(stage_inputs, ("fer", "emonet"), monkeypatch)
    size_of = {row: size for rows, size in renders for row in rows}
    slow = result.timelines["emonet"].measured & fit.has_face
    fast = _frames_to_render(fit, observations.has_face, source.info.fps, EmotionConfig())
    assert sum(len(rows) for rows, _ in renders) == len(size_of)  # each frame once
    assert set(size_of) == set(fast) | set(np.nonzero(slow)[0])
    assert {size_of[row] for row in np.nonzero(slow)[0]} == {256}
    assert {size_of[row] for row in set(fast) - set(np.nonzero(slow)[0])} == {recognisers["fer"].render_side}
    judged = {name: np.isfinite(t.render_probabilities).all(axis=1) for name, t in result.timelines.items()}
    assert (judged["emonet"] == slow).all()
    assert set(np.nonzero(judged["fer"])[0]) == set(size_of)  # FER judges every render
    for name, timeline in result.timelines.items():
        assert (np.isfinite(timeline.consistency) == judged[name]).all()

    alone, alone_renders = run_stage(stage_inputs, ("fer",), monkeypatch)
    assert {size for _, size in alone_renders} == {recognisers["fer"].render_side}
    fer, both = alone.timelines["fer"], result.timelines["fer"]
    np.testing.assert_array_equal(fer.raw, both.raw)
    print(f"FER's mean consistency: {np.nanmean(fer.consistency):.3f} alone, {np.nanmean(both.consistency):.3f} "
          "with EmoNet's frames rendered at 256")
    assert abs(np.nanmean(fer.consistency) - np.nanmean(both.consistency)) < 0.03


def test_the_fast_recogniser_judges_renders_of_a_sample_of_frames(stage_inputs, monkeypatch):
    """Every render_step_seconds, each run's ends and where the fit moved; every face frame with
    render_step_seconds 0, and their readings agree on the frames both judged."""
    import dataclasses

    from core.emotion.stage import RENDER_ROTATION_WEIGHT, _frames_to_render

    source, observations, fit, _, _ = stage_inputs
    faces = observations.has_face & fit.has_face
    rows = np.nonzero(faces)[0]
    step = int(round(EmotionConfig().render_step_seconds * source.info.fps))
    chosen = _frames_to_render(fit, observations.has_face, source.info.fps, EmotionConfig())
    assert step >= 2 and len(rows) // step <= len(chosen) < len(rows)
    assert chosen[0] == rows[0] and chosen[-1] == rows[-1]
    assert faces[chosen].all()
    # a frame whose curves jump is judged, wherever it falls; a head turn alone does the same
    quiet = int(next(r for r in rows[1:-1] if r not in set(chosen)))
    moved = fit.expression.copy()
    moved[quiet:] += 1.2 / moved.shape[1]
    assert quiet in _frames_to_render(dataclasses.replace(fit, expression=moved), observations.has_face,
                                      source.info.fps, EmotionConfig())
    turned = fit.rotation.copy()
    turned[quiet:, 1] += 1.2 / RENDER_ROTATION_WEIGHT
    assert quiet in _frames_to_render(dataclasses.replace(fit, rotation=turned), observations.has_face,
                                      source.info.fps, EmotionConfig())

    sampled, _ = run_stage(stage_inputs, ("fer",), monkeypatch)
    every, _ = run_stage(stage_inputs, ("fer",), monkeypatch, render_step_seconds=0)
    a, b = sampled.timelines["fer"].render_probabilities, every.timelines["fer"].render_probabilities
    assert (np.isfinite(b).all(axis=1) == faces).all()
    assert set(np.nonzero(np.isfinite(a).all(axis=1))[0]) == set(chosen)
    np.testing.assert_allclose(a[chosen], b[chosen], atol=1e-5)  # the same renders, the same readings


def test_a_cancel_stops_the_fast_recogniser_s_thread_too(stage_inputs, monkeypatch):
    import threading

    from core.errors import CancelledError

    cancel = threading.Event()
    source, observations, fit, model, recognisers = stage_inputs
    predict = type(recognisers["fer"]).predict

    def cancelling(self, crops):  # the user cancels while the first faces are being judged
        cancel.set()
        return predict(self, crops)

    monkeypatch.setattr(type(recognisers["fer"]), "predict", cancelling)
    with pytest.raises(CancelledError):
        run_stage(stage_inputs, ("fer",), monkeypatch, cancel)
    assert not [t for t in threading.enumerate() if t.name.startswith("emotion-fast")]


@pytest.mark.parametrize("names, learner", [(("fer",), "emotion-fast"), (("fer", "emonet"), "emotion-curves")])
def test_the_emotion_from_curves_network_learns_beside_the_renders_from_the_primary_timeline(stage_inputs, monkeypatch,
                                                                                          names, learner):
    """It trains on a thread of its own while the renders are judged (after the fast pass on that
    pass's thread when FER is the only recogniser), on the primary recogniser's stored timeline."""
    import threading

    import core.emotion.stage as stage

    _, _, fit, _, _ = stage_inputs
    calls = []
    train = stage.train_param_emotion

    def recorded(expression, target):
        calls.append((threading.current_thread().name, expression, target))
        return train(expression, target)

    monkeypatch.setattr(stage, "train_param_emotion", recorded)
    result, _ = run_stage(stage_inputs, names, monkeypatch)
    (thread, expression, target), = calls
    assert thread.startswith(learner)
    primary = result.timelines[result.primary]
    rows = np.nonzero(fit.has_face & np.isfinite(primary.probabilities).all(axis=1))[0]
    np.testing.assert_array_equal(expression, fit.expression[rows])
    np.testing.assert_array_equal(target.probabilities, primary.probabilities[rows])
    if primary.valence is not None:
        np.testing.assert_array_equal(target.valence, primary.valence[rows])
    assert result.param_model is not None


def _fer_run(path, take_dir, monkeypatch, events, cancel=None):
    """A FER-only pipeline run of ``path`` into ``take_dir``, appending to ``events`` where the fast
    recogniser's pass started ("fast pass") and each fitted window ("fit window")."""
    import core.emotion.stage as stage
    from core.fit.fitter import Fitter

    fast_pass, fit_window = stage.FastPass.__init__, Fitter.fit_window

    def started(self, *args, **kwargs):
        events.append("fast pass")
        fast_pass(self, *args, **kwargs)

    def fitted(self, *args, **kwargs):
        events.append("fit window")
        return fit_window(self, *args, **kwargs)

    monkeypatch.setattr(stage.FastPass, "__init__", started)
    monkeypatch.setattr(Fitter, "fit_window", fitted)
    config = PipelineConfig(device="cpu", emotion=EmotionConfig(recognisers=("fer",)))
    return Pipeline(config).run(path, take_dir, cancel=cancel)


def test_the_fast_recogniser_s_pass_runs_beside_the_fit_with_the_same_timelines(tmp_path, monkeypatch):
    """It needs only the observations: it starts before the first window is fitted, and what the
    emotion stage stores is what a pass started inside the stage gives; a rerun that keeps the fit
    finds the timelines current and starts no pass."""
    import core.emotion.stage as stage

    events = []
    _fer_run(fixture_path("single_face.mp4"), tmp_path / "ahead", monkeypatch, events)
    assert events[0] == "fast pass" and events.count("fast pass") == 1 and "fit window" in events
    monkeypatch.setattr(stage.EmotionStage, "start_ahead", lambda self, ctx: None)
    inside = []
    _fer_run(fixture_path("single_face.mp4"), tmp_path / "inside", monkeypatch, inside)
    assert inside.index("fast pass") > inside.index("fit window")
    ahead, within = (Take.open(tmp_path / name).read_emotion().timelines["fer"] for name in ("ahead", "inside"))
    for field in ("raw", "probabilities", "render_probabilities", "consistency", "carried"):
        np.testing.assert_array_equal(getattr(ahead, field), getattr(within, field))

    monkeypatch.undo()
    again = []
    _fer_run(fixture_path("single_face.mp4"), tmp_path / "ahead", monkeypatch, again)
    assert again == []


def test_a_fit_that_fails_abandons_the_fast_recogniser_s_pass_started_ahead(tmp_path, monkeypatch):
    """The pass stops at its next frame and its thread is gone when the run ends with an error."""
    import threading
    import time

    import core.emotion.fast_pass as fast_pass
    from core.errors import CancelledError
    from core.fit.fitter import Fitter

    begun, outcome = threading.Event(), []

    def pass_until_stopped(*args):  # a pass that only ends when it is told to stop
        check_cancel = args[6]
        begun.set()
        for _ in range(6000):
            try:
                check_cancel()
            except CancelledError:
                outcome.append("abandoned")
                raise
            time.sleep(0.01)
        outcome.append("never stopped")

    def failing(self, *args, **kwargs):
        assert begun.wait(60)
        raise RuntimeError("the fit failed")

    monkeypatch.setattr(fast_pass, "fast_scores", pass_until_stopped)
    monkeypatch.setattr(Fitter, "fit_window", failing)
    config = PipelineConfig(device="cpu", emotion=EmotionConfig(recognisers=("fer",)))
    with pytest.raises(RuntimeError, match="the fit failed"):
        Pipeline(config).run(fixture_path("single_face.mp4"), tmp_path / "t")
    assert outcome == ["abandoned"]
    assert not [t for t in threading.enumerate() if t.name.startswith("emotion-fast")]
    assert Take.open(tmp_path / "t").manifest.emotion is None  # the stage itself never ran


def test_a_reader_of_a_take_whose_emotion_is_being_redone_sees_none_not_damage(emotion_take, tmp_path):
    """An analysis redoing the emotion stage removes the stored timelines as it starts; a reader
    (the app's view of the take) that read the manifest just before finds them gone. Only a take
    whose manifest still lists them is damaged."""
    import dataclasses
    import shutil

    from core.errors import MissingChunkError
    from core.take.records import RUNNING, EmotionRecord

    _, take = emotion_take
    root = tmp_path / "take"
    shutil.copytree(take.root, root)
    reader, later = Take.open(root), Take.open(root)  # their manifests: the emotion complete
    writer = Take.open(root)  # an analysis starting the emotion stage again (EmotionStage.start)
    settings = writer.manifest.emotion.settings
    writer.reset_emotion()
    writer.manifest.emotion = EmotionRecord(settings, RUNNING)
    writer.save_manifest()
    assert reader.read_emotion() is None
    # once the analysis has written new timelines, a reader whose manifest is older reads them
    earlier = Take.open(take.root)
    redone = earlier.read_emotion()
    redone.main.probabilities[:] = redone.main.probabilities[::-1].copy()
    writer.write_emotion(redone, dataclasses.replace(earlier.manifest.emotion))
    np.testing.assert_array_equal(later.read_emotion().main.probabilities, redone.main.probabilities)
    # timelines the manifest still lists that are gone are damage
    (root / "emotion" / "timelines.npz").unlink()
    with pytest.raises(MissingChunkError):
        Take.open(root).read_emotion()
