"""Fixtures for the scanning tests: small classifiers built offline, once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing here may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random tiny DeBERTa-v2 with labels SAFE / INJECTION, plus its ONNX export."""
    pytest.importorskip("torch")
    from langchain_secure.scanning import export_onnx
    from langchain_secure.scanning.testing import build_classifier

    path = build_classifier(tmp_path_factory.mktemp("tiny"), labels=("SAFE", "INJECTION"))
    export_onnx(path, quantize=True)
    return path


@pytest.fixture(scope="session")
def fixed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every input gets logits [0, ln 3]: P(INJECTION) = 0.75 exactly."""
    pytest.importorskip("torch")
    import math

    from langchain_secure.scanning.testing import build_classifier

    return build_classifier(
        tmp_path_factory.mktemp("fixed"), labels=("SAFE", "INJECTION"), logits=(0.0, math.log(3))
    )


@pytest.fixture(scope="session")
def malicious_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labels BENIGN / MALICIOUS (Llama Prompt Guard 2 style), P(MALICIOUS) = 0.8 exactly."""
    pytest.importorskip("torch")
    import math

    from langchain_secure.scanning.testing import build_classifier

    return build_classifier(
        tmp_path_factory.mktemp("malicious"),
        labels=("BENIGN", "MALICIOUS"),
        logits=(0.0, math.log(4)),
    )
