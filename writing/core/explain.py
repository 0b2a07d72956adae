"""Why a prompt would hit or miss: the decision of ``WritingService.decide`` shown candidate by candidate.

For the console's playground and ``POST /v1/explain``: the prompt is embedded as a request would be,
the top-k of both tiers are fetched and every candidate is judged by the same rule the decision uses
(``WritingService.judge``: threshold, context, feedback blocks, the second check). Nothing is counted
in the metrics, no hit is recorded and the LLM is never called.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from writing.core.decision import WritingService
from writing.core.models import BYPASS, CURATED, GENERATED, HIT, MISS, AnswerRequest, CandidateVerdict, Match


@dataclass(frozen=True)
class Candidate:
    id: int
    similarity: float
    content: str
    biz_id: str | int | None  # curated
    prompt: str | None  # generated: the prompt it was written for
    verdict: CandidateVerdict
    chosen: bool = False


@dataclass
class TierView:
    tier: str
    threshold: float
    skipped: str | None = None  # why this tier was not searched
    candidates: list[Candidate] = field(default_factory=list)


@dataclass
class Explanation:
    decision: str
    bypass_reason: str | None
    guard_mode: str
    served: Candidate | None
    served_tier: str | None
    tiers: list[TierView]
    timings_ms: dict[str, float]

    @property
    def would_call_llm(self) -> bool:
        return self.decision != HIT


def _judge_all(service: WritingService, tier: str, req: AnswerRequest, vector, threshold, found, context) -> list:
    out, chosen = [], False
    for c in found:
        verdict = service.judge(tier, req, vector, threshold, c, context)
        pick = verdict.ok and not chosen
        chosen = chosen or pick
        out.append(
            Candidate(
                id=c.id,
                similarity=c.similarity,
                content=c.content,
                biz_id=c.biz_id if isinstance(c, Match) and tier == CURATED else None,
                prompt=None if tier == CURATED else c.prompt,
                verdict=verdict,
                chosen=pick,
            )
        )
    return out


async def explain(
    service: WritingService, req: AnswerRequest, top_k: int, answer_threshold: float | None = None
) -> Explanation:
    """``answer_threshold`` overrides the answer tier's threshold for this explanation only."""
    service.check_prompt(req.prompt)
    t_start = time.perf_counter()
    curated_threshold = service.threshold if req.threshold is None else service.check_threshold(req.threshold)
    answers = service.answer_cache
    if answer_threshold is None and answers is not None:
        answer_threshold = answers.threshold
    context = service.context_of(req)
    curated = TierView(CURATED, curated_threshold, skipped=context.curated_skip)
    generated = TierView(GENERATED, answer_threshold if answer_threshold is not None else 1.0)
    if answers is None:
        generated.skipped = "answer_cache_off"
    timings: dict[str, float] = {}

    def done(status: str, reason: str | None, served: Candidate | None = None, tier: str | None = None):
        timings["total"] = (time.perf_counter() - t_start) * 1000
        return Explanation(status, reason, service.guard_mode, served, tier, [curated, generated], timings)

    if req.bypass_reason or not req.lookup:
        curated.skipped = curated.skipped or "bypass"
        generated.skipped = generated.skipped or "bypass"
        return done(BYPASS, req.bypass_reason or "no_cache")
    t0 = time.perf_counter()
    query = await service.encoder.embed_query(req.prompt)
    timings["embed"] = (time.perf_counter() - t0) * 1000
    if query.truncated and not service.retrieve_long_prompts:
        return done(BYPASS, "prompt_longer_than_embedding_window")
    vector = query.vector

    def search_curated() -> list[Candidate]:
        found = service.store.search(vector, top_k)
        return _judge_all(service, CURATED, req, vector, curated_threshold, found, None)

    def search_answers() -> list[Candidate]:
        found = answers.lookup(vector, service.answer_key(req, context), top_k)
        return _judge_all(service, GENERATED, req, vector, answer_threshold, found, context)

    if curated.skipped is None:
        t0 = time.perf_counter()
        curated.candidates = await service.run_store_op(search_curated)
        timings["search"] = (time.perf_counter() - t0) * 1000
    if generated.skipped is None:
        t0 = time.perf_counter()
        generated.candidates = await service.run_answers_op(search_answers)
        timings["answer_cache"] = (time.perf_counter() - t0) * 1000
    for view in (curated, generated):
        served = next((c for c in view.candidates if c.chosen), None)
        if served is not None:
            if service.shadow_mode:
                return done(BYPASS, "shadow_mode", served, view.tier)
            return done(HIT, None, served, view.tier)
    return done(BYPASS if service.shadow_mode else MISS, "shadow_mode" if service.shadow_mode else None)
