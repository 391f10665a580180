"""Fixtures of the training tests: torch on one thread, and a short fitted take."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import fixture_path


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every training test runs torch on one thread."""
    yield


@pytest.fixture(scope="session")
def single_take_source(tmp_path_factory):
    """single_face.mp4 (72 frames) observed and fitted with the open model, once per session."""
    from core.pipeline import Pipeline, PipelineConfig

    take_dir = tmp_path_factory.mktemp("training_takes") / "single"
    Pipeline(PipelineConfig(device="cpu")).run(fixture_path("single_face.mp4"), take_dir)
    return take_dir


@pytest.fixture
def single_take(single_take_source, tmp_path):
    """A private copy of the fitted take (tests may write into it)."""
    copy = tmp_path / "single"
    shutil.copytree(single_take_source, copy)
    return copy
