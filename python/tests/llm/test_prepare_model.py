"""The model preparation for training, without the conversion itself."""

from pathlib import Path

import pytest

from archloop.llm import prepare_model


def test_prepare_is_idempotent_and_redoes_partial_dirs(tmp_path, monkeypatch):
    conversions = []

    def fake_convert(gguf: Path, out: Path) -> None:  # the real conversion runs in the smollm fixture
        conversions.append(out)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(prepare_model, "convert", fake_convert)
    monkeypatch.setattr(prepare_model, "fetch", lambda name: tmp_path / "weights.gguf")
    out = tmp_path / "model"
    out.mkdir()
    (out / "half-written.safetensors").write_text("junk")
    prepare_model.prepare("smollm2-135m-instruct", out)
    assert not (out / "half-written.safetensors").exists() and prepare_model.is_prepared(out)
    prepare_model.prepare("smollm2-135m-instruct", out)
    assert conversions == [out]


def test_prepare_refuses_an_unknown_model(tmp_path):
    with pytest.raises(Exception, match="unknown embedded model"):
        prepare_model.prepare("no-such-model", tmp_path / "model")
