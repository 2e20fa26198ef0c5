"""The core's data: operations of a catalog, requests and results in the wire format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")

MAX_HISTORY = 100
MAX_PREDICTIONS = 20

ParameterLocation = Literal["path", "query", "header", "cookie", "body"]
ValueSource = Literal["prompt", "history", "example", "default", "placeholder", "llm"]
RefinementStatus = Literal[
    "ok",
    "disabled",
    "backing_off",
    "timeout",
    "unreachable",
    "server_error",
    "invalid_answer",
    "skipped",
    "error",
]


# The catalog's own data (parameters, links, operations) are slotted frozen dataclasses, not
# pydantic models: a workspace of hundreds of specs holds about a hundred thousand of them, and
# a model's instance dict and set of fields set cost ten times the values they hold. Pydantic
# still validates them where they cross a boundary (the store's files, through `ParsedSpec`).


@dataclass(frozen=True, slots=True)
class Parameter:
    """One input of an operation: a path/query/header/cookie parameter or a body field."""

    name: str
    location: ParameterLocation
    type: str = "string"
    required: bool = False
    description: str = ""
    example: Any = None
    default: Any = None
    enum: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Link:
    """An OpenAPI `links` entry: a response of this operation feeds another operation."""

    name: str
    operation_id: str | None = None
    operation_ref: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a spec, normalised across Swagger 2.0 and OpenAPI 3.x."""

    spec: str
    method: str
    path: str
    operation_id: str = ""
    summary: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    parameters: list[Parameter] = field(default_factory=list)
    body_fields: list[str] = field(default_factory=list)
    body_content_type: str | None = None
    response_fields: list[str] = field(default_factory=list)
    response_schemas: list[str] = field(default_factory=list)
    response_kinds: dict[str, str] = field(default_factory=dict)  # nested field -> schema name
    links: list[Link] = field(default_factory=list)
    deprecated: bool = False
    security: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """`METHOD /path`, the name callers use."""
        return f"{self.method} {self.path}"

    @property
    def uid(self) -> str:
        """`spec:METHOD /path`, unique across the specs of a catalog."""
        return f"{self.spec}:{self.method} {self.path}"

    @property
    def path_params(self) -> list[str]:
        return [p.name for p in self.parameters if p.location == "path"]


class SpecSummary(BaseModel):
    """What the catalog knows of one source: name, origin, size, and its error if it failed."""

    name: str
    source: str
    title: str = ""
    version: str = ""
    operations: int = 0
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    # the file's current content failed to load (why); its last good version serves meanwhile
    stale_because: str | None = None


class HistoryEvent(BaseModel):
    """A call already made. `api_call` may be `METHOD /path`, a path, or a full URL."""

    model_config = ConfigDict(extra="allow")

    api_call: str = Field(min_length=1, max_length=2048)
    method: str | None = Field(default=None, max_length=16)
    timestamp: datetime | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    response: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"api_call": value}
        return value


class PredictRequest(BaseModel):
    """The request body of /predict, the MCP tool and the CLI."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(
        default="",
        description="What the caller wants to do, in their words (a prompt, a history or both).",
        examples=["upload a photo of the pet I just created"],
    )
    history: list[HistoryEvent] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description="Calls made so far, oldest first: 'METHOD /path', a path, a full URL, or "
        "an object with api_call (and method, timestamp, parameters, response).",
        examples=[["POST /pets"]],
    )
    max_predictions: int = Field(default=5, ge=1, le=MAX_PREDICTIONS)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    spec: str | None = Field(
        default=None, min_length=1, description="Restrict predictions to one spec name."
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_is_text(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("prompt must not contain NUL characters")
        return value


class Prediction(BaseModel):
    """One ranked operation as callers get it: `METHOD /path` with filled-in parameters (and
    where each value came from), a confidence, the rank and the reasons."""

    api_call: str
    method: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    confidence: float
    rank: int
    path: str = ""
    spec: str = ""
    operation_id: str = ""
    summary: str = ""
    reasons: list[str] = Field(default_factory=list)
    parameter_sources: dict[str, ValueSource] = Field(default_factory=dict)
    # the operation itself, for callers in this process (never on the wire)
    _operation: Operation | None = PrivateAttr(default=None)

    @property
    def operation(self) -> Operation | None:
        """The operation this prediction names, when it was made in this process."""
        return self._operation

    @classmethod
    def of(
        cls,
        op: Operation,
        confidence: float,
        rank: int,
        parameters: dict[str, Any],
        parameter_sources: dict[str, ValueSource],
        reasons: list[str] | None = None,
    ) -> Prediction:
        """The one way an operation becomes a Prediction."""
        prediction = cls(
            api_call=op.key,
            method=op.method,
            description=op.summary or op.description[:200],
            parameters=parameters,
            confidence=confidence,
            rank=rank,
            path=op.path,
            spec=op.spec,
            operation_id=op.operation_id,
            summary=op.summary,
            reasons=reasons or [],
            parameter_sources=parameter_sources,
        )
        prediction._operation = op
        return prediction


def _absent(value: Any) -> bool:
    return value is None


def _empty(value: Any) -> bool:
    return not value


class Refinement(BaseModel):
    """How the optional local model took part in a result: `status` always, the rest when it
    applies (fields that do not apply are left out of the wire format)."""

    status: RefinementStatus
    provider: str | None = Field(default=None, exclude_if=_absent)
    model: str | None = Field(default=None, exclude_if=_absent)
    budget_ms: int | None = Field(default=None, exclude_if=_absent)
    detail: str | None = Field(default=None, exclude_if=_absent)
    retry_at: str | None = Field(default=None, exclude_if=_absent)
    last_failure: str | None = Field(default=None, exclude_if=_absent)
    order: list[str] | None = Field(default=None, exclude_if=_absent)
    ranker_order: list[str] | None = Field(default=None, exclude_if=_absent)
    dropped: list[str] | None = Field(default=None, exclude_if=_absent)
    llm_parameters: dict[str, list[str]] | None = Field(default=None, exclude_if=_absent)
    rejected_parameters: dict[str, dict[str, str]] | None = Field(default=None, exclude_if=_absent)
    elapsed_ms: float | None = Field(default=None, exclude_if=_absent)


class PredictMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    model_version: str
    processing_time_ms: float
    processing_method: str = "ml"
    abstain: bool = False
    candidates: int = 0
    specs: list[str] = Field(default_factory=list)
    # history entries that name no operation of the catalog (`POST /petz`, method `FETCH`),
    # as given: they were left out of the ranking (absent when every entry matched)
    unmatched_history: list[str] = Field(default_factory=list, exclude_if=_empty)
    # set when a refiner is configured (even off: status "disabled")
    refinement: Refinement | None = Field(default=None, exclude_if=_absent)


class PredictResult(BaseModel):
    predictions: list[Prediction]
    confidence_scores: list[float]
    processing_time_ms: float
    metadata: PredictMetadata


NO_MATCH = "no match"


def shown_confidence(confidence: float, abstain: bool) -> str:
    """A confidence as a person reads it (tables, editor items). An abstaining answer has none
    to show: nothing in the specs fits, and the probabilities spread over poor candidates can
    still give its top call 0.50 or 1.00."""
    if abstain:
        return NO_MATCH
    if 0 < confidence < 0.01:  # two significant digits, never a bare 0.00 for a real chance
        return f"{confidence:.2g}"
    return f"{confidence:.2f}"
