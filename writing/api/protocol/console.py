"""Request and response models of the routes the console uses beyond the corpus, answers and feedback
surfaces: explaining one prompt's decision, the run-time thresholds, the stats history, calibration runs
and feedback resolution. Every one of them is an admin route and part of the documented HTTP API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from writing.api.protocol.admin import ReportOut
from writing.api.protocol.base import NOT_BLANK, RequestModel
from writing.api.protocol.corpus import BIZ_ID_DOC, BIZ_ID_PATTERN
from writing.core.corpus import MAX_BIZ_ID_CHARS, MAX_CONTENT_CHARS

MAX_BODY_CHARS = 4 * 1024 * 1024  # the body itself is bounded by MAX_BODY_BYTES first


def _json_number(value: object) -> object:
    """JSON's number as the schema states it: no "0.8" and no true for a number (8.0 is an integer)."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number, not a string or a boolean")
    return value


Fraction = Annotated[float, Field(gt=0, le=1), BeforeValidator(_json_number)]  # a threshold, a precision
Integer = Annotated[int, BeforeValidator(_json_number)]


# -- explain ------------------------------------------------------------------------------------------------
class ExplainRequest(RequestModel):
    prompt: str = Field(..., json_schema_extra=NOT_BLANK, description="Not blank, at most MAX_PROMPT_CHARS characters.")
    top_k: Integer = Field(5, ge=1, le=10, description="Candidates shown per tier.")
    threshold: Fraction | None = Field(
        None, description="The curated tier's threshold for this explanation (within the request limits)."
    )
    answer_threshold: Fraction | None = Field(None, description="The answer tier's, for this one only.")
    no_cache: StrictBool = Field(False, description="As Cache-Control: no-cache (retrieval is bypassed).")


class ExplainCandidate(BaseModel):
    id: int
    tier: Literal["curated", "generated"] | None = Field(
        None, description="The exact step only: whose entry this is (it looks up both); else null (the tier's own)."
    )
    biz_id: str | int | None = Field(None, description=BIZ_ID_DOC + " Curated tier only.")
    prompt: str | None = Field(None, description="Answer tier: the prompt the stored answer was written for.")
    content: str
    similarity: float
    above_threshold: bool
    serves_context: bool = Field(..., description="Answer tier: fits the request's max_tokens and stop sequences.")
    blocked: bool = Field(..., description="Reported wrong for this prompt (feedback).")
    guard: str | None = Field(None, description="pass, rejected:<reason>, would-reject:<reason>; null: not run.")
    chosen: bool = Field(..., description="The candidate this tier would serve.")


class ExplainTier(BaseModel):
    tier: Literal["exact", "curated", "generated"] = Field(
        ..., description="exact: the lookup of the same normalised prompt, first, with no vector (similarity 1.0)."
    )
    threshold: float
    skipped: str | None = Field(None, description="Why the tier was not searched (system_message, bypass ...).")
    candidates: list[ExplainCandidate]


class ExplainServed(BaseModel):
    tier: Literal["curated", "generated"]
    kind: Literal["exact", "semantic"] = Field(
        "semantic", description="As X-Match-Kind: found by the exact lookup, or by a vector search."
    )
    id: int
    similarity: float
    content: str
    biz_id: str | int | None = None
    prompt: str | None = None


class ExplainResponse(BaseModel):
    decision: Literal["HIT", "MISS", "BYPASS"]
    bypass_reason: str | None
    guard_mode: Literal["on", "off", "shadow"]
    served: ExplainServed | None = Field(None, description="What would be served (null: the LLM would answer).")
    would_call_llm: bool
    tiers: list[ExplainTier]
    timings_ms: dict[str, float]


# -- run-time thresholds -------------------------------------------------------------------------------------
class ThresholdOut(BaseModel):
    value: float = Field(..., description="In force now on this worker.")
    default: float = Field(..., description="The environment's value (SIMILARITY_THRESHOLD / ANSWER_CACHE_THRESHOLD).")
    source: Literal["environment", "runtime", "budget"]
    updated_at: int | None = Field(None, description="Unix seconds of the run-time override.")
    updated_by: str | None = Field(None, description="The admin key id that set it.")


class Thresholds(BaseModel):
    curated: ThresholdOut
    answer: ThresholdOut


def no_default(schema: dict) -> None:
    """Left out means "unchanged": no null in the schema, so no client sends one."""
    schema.pop("default", None)


class ThresholdUpdate(RequestModel):
    """One tier or both; a field left out keeps its value (DELETE resets one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    curated: Fraction = Field(None, description="Within SIMILARITY_THRESHOLD_MIN..MAX.", json_schema_extra=no_default)
    answer: Fraction = Field(None, json_schema_extra=no_default)

    @model_validator(mode="after")
    def _something(self) -> ThresholdUpdate:
        if self.curated is None and self.answer is None:
            raise ValueError("give 'curated', 'answer' or both")
        return self


# -- stats history ----------------------------------------------------------------------------------------------
class StagePercentiles(BaseModel):
    p50: float | None
    p90: float | None
    p99: float | None


class StatsPoint(BaseModel):
    ts: int
    requests: int
    hit_curated: int
    hit_answers: int
    miss: int
    bypass: int
    hit_rate_curated: float | None
    hit_rate_answers: float | None
    llm_calls: int
    tokens_avoided: int
    guard_rejections: dict[str, int]
    latency_ms: dict[str, StagePercentiles]
    verifications: int = Field(0, description="Candidates verified by the judge in this interval.")
    budget: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per budgeted tier at the end of the interval: estimate and upper (the wrong-hit rate and its "
        "bound), threshold (planned).",
    )


class StatsTotals(BaseModel):
    requests: int
    hit_curated: int
    hit_answers: int
    miss: int
    bypass: int
    llm_calls: int
    tokens_avoided: int
    guard_rejections: dict[str, int]
    verifications: int = 0


class StatsHistoryOut(BaseModel):
    interval_s: float
    since: int = Field(..., description="Unix seconds this process started counting.")
    totals: StatsTotals
    points: list[StatsPoint] = Field(..., description="Oldest first, one per interval (this worker's).")


# -- calibration runs --------------------------------------------------------------------------------------------
class CalibrationRequest(RequestModel):
    target_precision: Fraction = Field(
        0.98,
    )
    include_feedback: StrictBool = Field(
        True,
        description="Add the feedback that counts: admin-confirmed reports and relabelled pairs (not open reports).",
    )


class CalibrationRow(BaseModel):
    threshold: float
    precision: float | None
    recall: float | None
    hit_rate: float
    guarded_precision: float | None = Field(None, description="With the second check on.")
    guarded_hit_rate: float | None = None


class CalibrationRecommendation(BaseModel):
    threshold: float | None = Field(..., description="null: no threshold reaches the target.")
    precision: float | None
    hit_rate: float | None
    recall: float | None
    guarded: bool = Field(..., description="Chosen with the second check on (as HIT_GUARD=on serves).")
    message: str


class CalibrationTier(BaseModel):
    tier: Literal["curated", "answer"]
    setting: str
    prompts: int
    recommendation: CalibrationRecommendation
    rows: list[CalibrationRow]


class CalibrationSources(BaseModel):
    labelled: int = Field(..., description="Pairs from CALIBRATION_PAIRS / CALIBRATION_ANSWER_PAIRS.")
    feedback: int = Field(..., description="Reports an admin confirmed, counted with their verdict.")
    relabelled: int = Field(..., description="Pairs an admin relabelled from feedback.")
    open_reports: int = Field(
        0, description="Open reports awaiting review: shown apart, never counted (they move no threshold)."
    )


class CalibrationResult(BaseModel):
    target_precision: float
    sources: CalibrationSources
    tiers: list[CalibrationTier]
    current: dict[str, float]


# -- corpus: edit and import ------------------------------------------------------------------------------------
class PassageEdit(RequestModel):
    content: str = Field(..., min_length=1, max_length=MAX_CONTENT_CHARS, json_schema_extra=NOT_BLANK)
    biz_id: str = Field("", max_length=MAX_BIZ_ID_CHARS, pattern=BIZ_ID_PATTERN)


class PassageEdited(BaseModel):
    id: int = Field(..., description="The passage's id now (an edit re-embeds, so the id changes).")
    previous_id: int
    duplicate: bool = Field(..., description="The new text was in the corpus already (under that id).")


class ImportRequest(RequestModel):
    jsonl: str = Field(
        ...,
        max_length=MAX_BODY_CHARS,
        description="ingest.py's format: one {content, biz_id} object per line, at most 1,000 lines (send a "
        "large file in parts, each with first_line set to its first line's number in the file).",
    )
    first_line: Integer = Field(1, ge=1, le=10**9, description="The line number of the first line of jsonl.")


class ImportLineError(BaseModel):
    line: int
    message: str


class ImportResult(BaseModel):
    read: int
    inserted: int
    skipped: int
    errors: list[ImportLineError]


# -- feedback resolution ---------------------------------------------------------------------------------------
class ResolveRequest(RequestModel):
    action: Literal["delete_entry", "block", "dismiss", "promote", "relabel"] = Field(
        ...,
        description="delete_entry: remove the served passage or stored answer; block: confirm the report (the "
        "entry stops being served for that prompt to everyone); dismiss: lift its block; promote: add a better "
        "passage (content, biz_id) that answers the prompt, and block the wrong one; relabel: add the pair to "
        "the evaluation set (expected_biz_id for a curated report, label for a generated one).",
    )
    content: str | None = Field(None, min_length=1, max_length=MAX_CONTENT_CHARS, json_schema_extra=NOT_BLANK)
    biz_id: str | None = Field(None, max_length=MAX_BIZ_ID_CHARS, pattern=BIZ_ID_PATTERN)
    expected_biz_id: str | None = Field(
        None,
        max_length=MAX_BIZ_ID_CHARS,
        pattern=BIZ_ID_PATTERN,
        description="relabel: null = no passage should answer.",
    )
    label: Literal["same", "different"] | None = None


class ResolveResponse(BaseModel):
    report: ReportOut
    action: str
    detail: dict


class LabelOut(BaseModel):
    id: int
    ts: int
    actor: str
    tier: Literal["curated", "generated"]
    prompt: str
    expected: str = Field(
        ..., description="curated: the biz_id that should answer ('' none); generated: the other prompt."
    )
    label: str
    report_id: int


class LabelPage(BaseModel):
    items: list[LabelOut]
    next_cursor: int | None = None
