"""Which detectors run at which door: the ``scanning`` section of a policy.

Pydantic only, no heavy imports, so the policy schema can embed
:class:`ScanningSpec`. In YAML::

    scanning:
      input:       {detectors: [signatures], threshold: 0.5, action: block}
      documents:   {detectors: [signatures, prompt_injection], action: spotlight}
      tool_output: {detectors: [signatures, prompt_injection, secrets], action: quarantine}
      model:
        path: /models/deberta-v3-base-prompt-injection-v2   # air-gapped: a local directory
        backend: onnx
        quantize: true

A door with ``detectors: []`` is not scanned.

Example:
    ```python
    from langchain_secure.scanning import ScanningSpec

    spec = ScanningSpec.model_validate(
        {"tool_output": {"detectors": ["signatures", "secrets"], "action": "quarantine"}}
    )
    assert spec.door("tool_output").action == "quarantine"
    assert spec.input.detectors == ("signatures",)
    ```
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from langchain_secure.errors import ConfigurationError

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_REVISION",
    "DOORS",
    "DetectorName",
    "Door",
    "DoorAction",
    "DoorSpec",
    "ModelSpec",
    "ScanningSpec",
]

DEFAULT_MODEL = "protectai/deberta-v3-base-prompt-injection-v2"
"""The prompt-injection model llm-guard 0.3.16 uses by default (its ``V2_MODEL``)."""

DEFAULT_REVISION = "89b085cd330414d3e7d9dd787870f315957e1e9f"
"""The revision llm-guard 0.3.16 pins for :data:`DEFAULT_MODEL`."""

Door = Literal["input", "documents", "tool_output"]
"""Where untrusted text comes in: the user's input, retrieved documents, tool outputs."""

DOORS: tuple[Door, ...] = ("input", "documents", "tool_output")
"""Every door, in order."""

DetectorName = Literal["signatures", "prompt_injection", "secrets", "invisible_text"]
"""The detectors a door can run."""

DoorAction = Literal["block", "quarantine", "spotlight", "mark", "log"]
"""What a door does with flagged text.

``block`` refuses it (raising :class:`~langchain_secure.scanning.PromptInjectionError`),
``quarantine`` withholds it from the model and keeps it for review, ``spotlight``
passes it on delimited and marked as data, ``mark`` passes it on and labels the
thread ``untrusted``, ``log`` only records the verdict. The doors act; the
detectors only judge.
"""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_unit(value: float, what: str) -> float:
    if not math.isfinite(value) or not (0.0 <= value <= 1.0):
        msg = f"{what} must be a number in [0, 1], got {value!r}"
        raise ValueError(msg)
    return value


class ModelSpec(_Model):
    """The prompt-injection model: where it comes from and how it runs.

    Attributes:
        name: Hugging Face hub id, also the name used in messages.
        revision: Hub revision (a commit hash pins it); ``None`` means the revision
            llm-guard pins for the default model and ``"main"`` for any other.
        path: A local directory (``save_pretrained`` / ``huggingface-cli download
            --local-dir`` layout) to load instead of the hub: the air-gapped setup.
        backend: ``torch`` (PyTorch) or ``onnx`` (onnxruntime).
        onnx_file: The ONNX file inside the model directory (``onnx/model.onnx``
            is tried too, the layout of ProtectAI's repositories).
        quantize: With ``backend: onnx``, run an int8 dynamically quantised copy
            (made on first load, next to a temporary copy, when the directory has none).
        threshold: Chunk probability at or above which a finding is reported.
        injection_labels: The model labels that mean "attack" (case-insensitive);
            their probabilities are summed. ProtectAI: ``INJECTION``; Llama Prompt
            Guard 2: ``LABEL_1`` or ``MALICIOUS``; Prompt Guard 1: ``INJECTION``,
            ``JAILBREAK``.
        max_chunk_tokens: Tokens per chunk, special tokens included; long texts are
            split into overlapping chunks, never truncated.
        overlap_tokens: Tokens shared by consecutive chunks.
        batch_size: Chunks per forward pass.
        num_threads: Intra-op threads for torch / onnxruntime; ``None`` keeps the default.

    Example:
        ```python
        from langchain_secure.scanning import ModelSpec

        spec = ModelSpec(path="/models/pi", backend="onnx", quantize=True)
        assert spec.effective_revision == "89b085cd330414d3e7d9dd787870f315957e1e9f"
        ```
    """

    name: str = DEFAULT_MODEL
    revision: str | None = None
    path: str | None = None
    backend: Literal["torch", "onnx"] = "torch"
    onnx_file: str = "model.onnx"
    quantize: bool = False
    threshold: float = 0.92
    injection_labels: tuple[str, ...] = ("INJECTION",)
    max_chunk_tokens: int = Field(default=512, ge=16, le=8192)
    overlap_tokens: int = Field(default=64, ge=0)
    batch_size: int = Field(default=8, ge=1, le=1024)
    num_threads: int | None = Field(default=None, ge=1, le=256)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be empty")
        return value

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, value: float) -> float:
        return _check_unit(value, "threshold")

    @field_validator("injection_labels")
    @classmethod
    def _labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not label.strip() for label in value):
            raise ValueError("injection_labels must list at least one non-empty label")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.overlap_tokens * 2 > self.max_chunk_tokens - 4:
            msg = (
                f"overlap_tokens ({self.overlap_tokens}) must be less than half of "
                f"max_chunk_tokens ({self.max_chunk_tokens})"
            )
            raise ValueError(msg)
        if self.quantize and self.backend != "onnx":
            raise ValueError("quantize needs backend: onnx")
        return self

    @property
    def effective_revision(self) -> str:
        """The hub revision that is loaded."""
        if self.revision is not None:
            return self.revision
        return DEFAULT_REVISION if self.name == DEFAULT_MODEL else "main"

    @property
    def source(self) -> str:
        """The local path when there is one, else the hub id."""
        return self.path if self.path is not None else self.name


_DEFAULT_ACTIONS: dict[str, str] = {
    "input": "block",
    "documents": "spotlight",
    "tool_output": "mark",
}


class DoorSpec(_Model):
    """The detectors, threshold and action of one door.

    Attributes:
        detectors: Detectors to run, in order; ``[]`` turns the door off.
        threshold: Combined risk at or above which the text is flagged.
        action: What the door does with flagged text (see :data:`DoorAction`).

    Example:
        ```python
        from langchain_secure.scanning import DoorSpec

        door = DoorSpec(detectors=["signatures", "prompt_injection"], action="quarantine")
        assert door.threshold == 0.5
        ```
    """

    detectors: tuple[DetectorName, ...] = ("signatures",)
    threshold: float = 0.5
    action: DoorAction = "mark"

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("detectors must not repeat")
        return value

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, value: float) -> float:
        return _check_unit(value, "threshold")


def _door_default(door: str) -> DoorSpec:
    return DoorSpec.model_validate({"action": _DEFAULT_ACTIONS[door]})


class ScanningSpec(_Model):
    """Scanning configuration for every door, and the model they share.

    The defaults run only the signatures (no model, no optional dependency):
    ``input`` blocks, ``documents`` spotlights and ``tool_output`` marks flagged text.

    Attributes:
        input: The user's messages.
        documents: Retrieved documents (RAG).
        tool_output: What tools return.
        model: The prompt-injection model used by any door with ``prompt_injection``.

    Example:
        ```python
        from langchain_secure.scanning import ScanningSpec

        spec = ScanningSpec.model_validate({"model": {"path": "/models/pi"}})
        assert spec.model.source == "/models/pi"
        assert spec.input.action == "block"
        ```
    """

    input: DoorSpec = Field(default_factory=lambda: _door_default("input"))
    documents: DoorSpec = Field(default_factory=lambda: _door_default("documents"))
    tool_output: DoorSpec = Field(default_factory=lambda: _door_default("tool_output"))
    model: ModelSpec = Field(default_factory=ModelSpec)

    @model_validator(mode="before")
    @classmethod
    def _door_action_defaults(cls, data: Any) -> Any:
        # A door given without an action keeps that door's default action.
        if isinstance(data, dict):
            data = dict(data)
            for door, action in _DEFAULT_ACTIONS.items():
                spec = data.get(door)
                if isinstance(spec, dict) and "action" not in spec:
                    data[door] = {**spec, "action": action}
        return data

    def door(self, door: str) -> DoorSpec:
        """Return the spec of ``door``.

        Args:
            door: ``input``, ``documents`` or ``tool_output``.

        Returns:
            That door's spec.

        Raises:
            ConfigurationError: ``door`` is not one of the three doors.
        """
        if door not in DOORS:
            msg = f"unknown door {door!r}; expected one of {', '.join(DOORS)}"
            raise ConfigurationError(msg)
        spec: DoorSpec = getattr(self, door)
        return spec

    def detector_names(self) -> tuple[DetectorName, ...]:
        """Every detector some door runs, in first-use order."""
        seen: dict[DetectorName, None] = {}
        for door in DOORS:
            for name in self.door(door).detectors:
                seen.setdefault(name, None)
        return tuple(seen)
