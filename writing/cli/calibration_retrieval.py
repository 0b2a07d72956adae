"""Retrieval for a calibration run, through the service's own code: every labelled prompt's curated
top-1 from ``RetrievalPolicy.decide`` (the ``EmbeddingBatcher`` and the COSINE top-1 from Milvus, the
LLM never called), with the second check's verdict on it; and loading the corpus first (``--ingest``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from writing.core.calibration_measures import Record
from writing.core.calibration_pairs import Pair


def build_policy(settings, batcher, store, llm):
    """The decision as the app builds it, set up to report the top-1 of every prompt: only the curated
    tier (this calibrates the curated corpus), no shadow mode (it hides the match), a store failure
    raises instead of reading as a miss; the threshold is given per request (the edge's range check is
    the app's, not the decision's)."""
    from writing.core.judge import CandidateJudge
    from writing.core.links import Link
    from writing.core.policy import RetrievalPolicy
    from writing.core.telemetry import NullMetrics
    from writing.core.tiers.curated import CuratedTier

    link = Link("vector store", lambda: store.open(batcher.dim), retry_interval=settings.milvus_retry_interval)
    curated = CuratedTier(
        store, link, CandidateJudge(), threshold=settings.similarity_threshold, fail_without_store=True
    )
    policy = RetrievalPolicy(
        batcher,
        [curated],
        NullMetrics(),
        defaults=llm.defaults,
        retrieve_long_prompts=settings.retrieve_long_prompts,
    )
    return policy, link


@dataclass(frozen=True)
class TopOne:
    similarity: float | None
    biz_id: str | None
    note: str | None = None  # why there is no similarity: bypass / rejected by the service
    content: str = ""  # the top-1 passage, for the second check


async def top1(policy, prompt: str, max_chars: int) -> TopOne:
    """The curated top-1 for one prompt, through the service's own decision code."""
    # decide(AnswerRequest): the match is kept only for a hit, so ask with threshold -1 (every
    # cosine similarity reaches it) and apply the grid afterwards
    from writing.core.models import AnswerRequest
    from writing.errors import InvalidRequest
    from writing.validation import check_prompt

    try:
        check_prompt(prompt, max_chars)  # what the app's edge would refuse with a 422
        decision = await policy.decide(AnswerRequest(prompt=prompt, threshold=-1.0))
    except InvalidRequest as exc:  # the service would answer 422: never a stored passage
        return TopOne(None, None, f"rejected: {exc}")
    if decision.store_error:
        raise RuntimeError("the vector store failed during retrieval; see the log")
    if decision.bypass_reason:  # e.g. longer than the embedding window: the LLM answers
        return TopOne(None, None, f"bypass: {decision.bypass_reason}")
    match = decision.match
    if match is not None and decision.match_source != "curated":
        match = None
    if match is None:
        return TopOne(decision.similarity, None)
    return TopOne(decision.similarity, str(match.biz_id), content=match.content)


async def retrieve_all(settings, embedder, store, pairs: Sequence[Pair], *, concurrency: int = 32) -> list[Record]:
    """Top-1 for every prompt via the service (batcher + store, exactly as served)."""
    from writing.wiring import build_batcher, build_guard, build_llm

    batcher = build_batcher(settings, embedder)
    llm = build_llm(settings)
    policy, link = build_policy(settings, batcher, store, llm)
    gate = asyncio.Semaphore(max(1, min(concurrency, settings.embedding_queue_size)))

    guard = build_guard()

    async def one(pair: Pair) -> Record:
        async with gate:
            found = await top1(policy, pair.prompt, settings.max_prompt_chars)
        verdict = await asyncio.to_thread(guard.check, pair.prompt, found.content, "curated") if found.content else None
        return Record(
            similarity=found.similarity,
            top1_biz_id=found.biz_id,
            expected_biz_id=pair.expected_biz_id,
            kind=pair.kind,
            prompt=pair.prompt,
            note=found.note,
            guard=None if verdict is None else ("pass" if verdict.ok else verdict.reason),
        )

    try:
        await link.open()
        return list(await asyncio.gather(*(one(p) for p in pairs)))
    finally:
        await asyncio.to_thread(batcher.close)  # joins the worker thread: not on the event loop
        await llm.close()


def ingest_corpus(settings, embedder, store, corpus: Path) -> None:
    """Load ``corpus`` into the store first (``--ingest``: idempotent, stored passages are skipped)."""
    from writing.cli.ingest import ingest
    from writing.core.corpus import CorpusWriter

    summary = ingest(
        corpus, CorpusWriter(embedder, store, batch_size=settings.embedding_max_batch_size), progress=False
    )
    for p in summary.problems:
        print(f"warning: corpus line skipped {p.where}: {p.message}", file=sys.stderr)
    print(f"ingest {corpus}: {summary.line()}", file=sys.stderr)
    if summary.inserted and store.uri:
        time.sleep(5)  # searches use Bounded consistency; let a server's fresh inserts become visible
