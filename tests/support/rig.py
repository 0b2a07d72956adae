"""The decision and the answering over in-memory fakes, wired as ``writing.wiring.build_core`` wires
them (no model, no server): ``Rig`` and its fixture for the core's unit tests."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.support.fakes import DIM, FakeEncoder, InMemoryAnswers, InMemoryCorpus, ScriptedLLM, text_vector
from writing.core.answering import Answering
from writing.core.exact import ANSWERS, CORPUS, ExactIndex
from writing.core.exact_sync import ExactSync
from writing.core.feedback import Blocklist
from writing.core.jobs import Jobs
from writing.core.judge import CandidateJudge
from writing.core.links import Link
from writing.core.policy import RetrievalPolicy
from writing.core.tiers.answer import AnswerTier
from writing.core.tiers.curated import CuratedTier
from writing.core.tiers.exact import ExactTier
from writing.observability.metrics import Metrics


def near(vector: np.ndarray, similarity: float, seed: int = 1) -> np.ndarray:
    """A unit vector whose cosine similarity to ``vector`` is exactly ``similarity``."""
    noise = np.random.default_rng(seed).normal(size=vector.shape).astype(np.float32)
    noise -= noise.dot(vector) * vector
    noise /= np.linalg.norm(noise)
    return (similarity * vector + np.sqrt(1 - similarity**2) * noise).astype(np.float32)


class Rig:
    """The decision and the answering over fakes, built as ``writing.wiring.build_core`` builds them."""

    def __init__(
        self,
        *,
        answer_cache: bool = False,
        max_chars: int = 200,
        threshold: float = 0.75,
        store_retry_interval: float = 5.0,
        fail_without_store: bool = False,
        blocklist: Blocklist | None = None,
        guard=None,
        guard_mode: str = "off",
        exact: bool = False,
        ttl_seconds: float = 0.0,
        **options,
    ) -> None:
        self.encoder = FakeEncoder(max_chars=max_chars)
        self.corpus = InMemoryCorpus()
        self.answers = InMemoryAnswers(threshold=0.92) if answer_cache else None
        self.llm = ScriptedLLM()
        self.metrics = Metrics()
        self.jobs = Jobs()
        self.judge = CandidateJudge(blocklist, guard, guard_mode)
        self.corpus_link = Link(
            "vector store",
            lambda: self.corpus.open(DIM),
            retry_interval=store_retry_interval,
            reset=self.corpus.reset,
            on_error=self.metrics.store_error,
        )
        self.curated = CuratedTier(
            self.corpus, self.corpus_link, self.judge, threshold=threshold, fail_without_store=fail_without_store
        )
        self.answer_tier = None
        if self.answers is not None:
            link = Link("answer cache", lambda: self.answers.open(DIM), retry_interval=store_retry_interval)
            self.answer_tier = AnswerTier(self.answers, link, self.judge, model=lambda: self.llm.model)
        self.index = self.exact_sync = self.exact_tier = None
        if exact:  # as writing.wiring.build_exact and build_chain make them
            self.index = ExactIndex()
            self.corpus.watcher = self.index.watcher(CORPUS)
            sources = [(CORPUS, self.corpus, self.corpus_link)]
            if self.answer_tier is not None:
                self.answers.watcher = self.index.watcher(ANSWERS)
                sources.append((ANSWERS, self.answers, self.answer_tier.link))
            self.exact_sync = ExactSync(self.index, sources)
            fits = None if options.get("retrieve_long_prompts") else (lambda text: len(text) <= max_chars)
            self.exact_tier = ExactTier(
                self.index, self.judge, answers=self.answer_tier, ttl_seconds=ttl_seconds, fits=fits
            )
        tiers = [t for t in (self.exact_tier, self.curated, self.answer_tier) if t is not None]
        self.policy = RetrievalPolicy(self.encoder, tiers, self.metrics, defaults=self.llm.defaults, **options)
        self.answering = Answering(
            self.policy,
            self.llm,
            self.metrics,
            self.jobs,
            answers=self.answer_tier,
            retrieve_long_prompts=options.get("retrieve_long_prompts", False),
        )

    async def open(self) -> None:
        await self.corpus_link.open()
        if self.answer_tier is not None:
            await self.answer_tier.link.open()
        if self.index is not None:
            self.index.bind(asyncio.get_running_loop())

    async def close(self) -> None:
        await self.answering.close()
        await self.jobs.close()

    def curate(
        self, content: str, similarity_to: str | None = None, similarity: float = 1.0, biz_id: str = "b", seed: int = 1
    ):
        """Store ``content``; its vector is ``similarity`` away from the prompt ``similarity_to``."""
        vector = None if similarity_to is None else near(text_vector(similarity_to), similarity, seed)
        return self.corpus.add(content, biz_id, vector)

    def outcome(self, name: str) -> float:
        return self.metrics.outcomes.labels(name)._value.get()


@pytest.fixture
async def rig():
    made: list[Rig] = []

    async def make(**options) -> Rig:
        r = Rig(**options)
        await r.open()
        made.append(r)
        return r

    yield make
    for r in made:
        await r.close()
