"""The retrieval-first decision, in one place.

embed the prompt -> COSINE top-1 in the curated corpus -> stored text when similarity >= threshold,
otherwise the LLM. The vector store is optional at request time: when it fails, the answer comes
from the LLM and a warning is logged (cache hits obviously need it). The embedding model runs in the
batcher's thread and Milvus calls in worker threads, so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from embedding_batcher import EmbeddingBatcher
from milvus_server import Match, MilvusStore, VectorStoreError
from vllm_client import LLMClient, SamplingParams

logger = logging.getLogger(__name__)

SOURCE_MILVUS = "milvus"
SOURCE_LLM = "llm"


class PromptError(ValueError):
    """The prompt cannot be served as given; the message says what to fix."""


@dataclass
class Timings:
    embed_ms: float | None = None
    search_ms: float | None = None
    llm_ms: float | None = None

    def header(self) -> str:
        parts = [
            f"{name};dur={value:.1f}"
            for name, value in (("embed", self.embed_ms), ("search", self.search_ms), ("llm", self.llm_ms))
            if value is not None
        ]
        return ", ".join(parts)


@dataclass
class Decision:
    """What retrieval found for a prompt, before any LLM call."""

    match: Match | None = None
    similarity: float | None = None  # top-1 similarity, whenever a search ran
    hit: bool = False
    store_error: bool = False
    timings: Timings = field(default_factory=Timings)


@dataclass
class GenerationResult:
    content: str
    source: str
    similarity: float | None
    match: Match | None
    model: str | None
    timings: Timings


class WritingService:
    def __init__(
        self,
        *,
        batcher: EmbeddingBatcher,
        store: MilvusStore,
        llm: LLMClient,
        threshold: float,
        max_prompt_chars: int,
        store_retry_interval: float = 5.0,
    ) -> None:
        self.batcher = batcher
        self.store = store
        self.llm = llm
        self.threshold = threshold
        self.max_prompt_chars = max_prompt_chars
        self.store_retry_interval = store_retry_interval
        self._store_ready = False
        self._store_next_try = 0.0
        self._store_lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    async def open_store(self) -> None:
        """Connect the vector store; a DimensionMismatch propagates (it is a configuration error)."""
        await asyncio.to_thread(self.store.open, self.batcher.embedder.dim)
        self._store_ready = True

    async def _ensure_store(self) -> bool:
        """(Re)connect when the store was unreachable, at most once per retry interval."""
        if self._store_ready:
            return True
        async with self._store_lock:
            if self._store_ready:
                return True
            now = time.monotonic()
            if now < self._store_next_try:
                return False
            self._store_next_try = now + self.store_retry_interval
            try:
                await self.open_store()
            except VectorStoreError as exc:
                logger.warning("vector store still unavailable: %s", exc)
                return False
            logger.info("vector store connected: %s", self.store.kind)
            return True

    @property
    def store_ready(self) -> bool:
        return self._store_ready

    # -- input ---------------------------------------------------------------------------------
    def check_prompt(self, prompt: str | None) -> str:
        if prompt is None or not prompt.strip():
            raise PromptError("prompt must be a non-empty, non-blank string")
        if len(prompt) > self.max_prompt_chars:
            raise PromptError(
                f"prompt is {len(prompt)} characters long; the limit is {self.max_prompt_chars}"
            )
        return prompt

    # -- the decision ---------------------------------------------------------------------------
    async def retrieve(self, prompt: str, threshold: float | None = None) -> Decision:
        threshold = self.threshold if threshold is None else threshold
        decision = Decision()
        t0 = time.perf_counter()
        vector = await self.batcher.embed_query(prompt)
        t1 = time.perf_counter()
        decision.timings.embed_ms = (t1 - t0) * 1000
        if not await self._ensure_store():
            decision.store_error = True
            return decision
        try:
            matches = await asyncio.to_thread(self.store.search, vector, 1)
        except VectorStoreError as exc:
            logger.warning("vector search failed, answering from the LLM: %s", exc)
            decision.store_error = True
            self._store_ready = False  # reconnect on a later request
            self._store_next_try = time.monotonic() + self.store_retry_interval
            return decision
        finally:
            decision.timings.search_ms = (time.perf_counter() - t1) * 1000
        if matches:
            top = matches[0]
            decision.similarity = top.similarity
            decision.match = top
            decision.hit = top.similarity >= threshold
        return decision

    async def generate(self, prompt: str, threshold: float | None = None) -> GenerationResult:
        prompt = self.check_prompt(prompt)
        decision = await self.retrieve(prompt, threshold)
        if decision.hit and decision.match is not None:
            logger.info(
                "decision=hit source=milvus match_id=%s similarity=%.4f embed_ms=%.1f search_ms=%.1f",
                decision.match.id,
                decision.similarity,
                decision.timings.embed_ms,
                decision.timings.search_ms,
            )
            return GenerationResult(
                content=decision.match.content,
                source=SOURCE_MILVUS,
                similarity=decision.similarity,
                match=decision.match,
                model=None,
                timings=decision.timings,
            )
        t0 = time.perf_counter()
        completion = await self.llm.complete([{"role": "user", "content": prompt}])
        decision.timings.llm_ms = (time.perf_counter() - t0) * 1000
        logger.info(
            "decision=miss source=llm similarity=%s store_error=%s embed_ms=%.1f search_ms=%s llm_ms=%.1f",
            "none" if decision.similarity is None else f"{decision.similarity:.4f}",
            decision.store_error,
            decision.timings.embed_ms,
            "none" if decision.timings.search_ms is None else f"{decision.timings.search_ms:.1f}",
            decision.timings.llm_ms,
        )
        logger.debug("prompt=%r answer=%r", prompt, completion.text)
        return GenerationResult(
            content=completion.text,
            source=SOURCE_LLM,
            similarity=decision.similarity,
            match=None,
            model=completion.model,
            timings=decision.timings,
        )

    def chat_stream(self, prompt: str, params: SamplingParams | None = None) -> AsyncIterator[str]:
        """Straight to the LLM, streaming (the reference /chat behaviour)."""
        prompt = self.check_prompt(prompt)
        return self.llm.stream([{"role": "user", "content": prompt}], params)
