"""A desktop bundle's read-only models: used (hash-checked) when the user's store has none; the
store stays the only place anything is written."""

import hashlib

import pytest

from core.emotion import store
from core.errors import ModelIntegrityError


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    data = b"weights"
    spec = store.ModelSpec(name="tiny", file="tiny.bin", sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                           licence="MIT", source="test", requirement="tiny==1", pip_options=(), member="tiny.bin")
    monkeypatch.setitem(store.MODELS, "tiny", spec)
    monkeypatch.setenv(store.STORE_ENV, str(tmp_path / "store"))
    monkeypatch.setattr(store, "BUNDLED_DIR", tmp_path / "bundle")
    (tmp_path / "bundle").mkdir()
    return tmp_path, data


def test_a_bundled_model_is_used_and_install_downloads_nothing(tiny, monkeypatch):
    root, data = tiny
    (root / "bundle" / "tiny.bin").write_bytes(data)
    monkeypatch.setattr(store, "_fetch", lambda *a: pytest.fail("nothing may be downloaded"))
    assert store.model_path("tiny") == root / "bundle" / "tiny.bin"
    assert store.install(["tiny"]) == [root / "bundle" / "tiny.bin"]
    assert next(i for i in store.list_models() if i.name == "tiny").installed
    assert not (root / "store" / "tiny.bin").exists()


def test_a_corrupt_bundled_model_is_refused_and_install_writes_the_store(tiny, monkeypatch):
    root, data = tiny
    (root / "bundle" / "tiny.bin").write_bytes(b"changed")
    with pytest.raises(ModelIntegrityError):
        store.model_path("tiny")

    def fetch(model, where):
        (where / model.file).write_bytes(data)
        return where / model.file

    monkeypatch.setattr(store, "_fetch", fetch)
    assert store.install(["tiny"]) == [root / "store" / "tiny.bin"]
    assert store.model_path("tiny") == root / "store" / "tiny.bin"  # the store's copy wins
