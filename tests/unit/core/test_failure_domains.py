"""Failure domains over in-memory fakes: one link per domain (``writing.core.links.StoreLinks``), wired
as ``writing.wiring.build_stores`` and ``build_core`` wire them. A failing records write (the audit log,
a feedback report) marks the records' link failed and nothing else: an exact curated prompt and a stored
answer are still served at once, without a store error and without waiting for the retry interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.fakes import DIM, FakeEncoder, InMemoryAnswers, InMemoryCorpus, ScriptedLLM, text_vector
from writing.core.judge import CandidateJudge
from writing.core.links import Link, StoreLinks
from writing.core.models import CURATED, GENERATED, HIT, AnswerRequest
from writing.core.policy import RetrievalPolicy
from writing.core.reports import OPEN, Report
from writing.core.tiers.answer import AnswerTier
from writing.core.tiers.curated import CuratedTier
from writing.errors import VectorStoreError
from writing.observability.metrics import Metrics

PASSAGE = "秋天是一位调色的画家，她把枫叶染成火红。"
ASKED = "写一首关于冬天雪夜的短诗"  # far from the passage: answered by the stored answer
STORED = "雪落无声，灯火可亲。"
RETRY = 600.0  # a failed link is not retried during the test: nothing may wait for it


class BrokenRecords:
    """The records' domain (audit log, feedback reports) with every write failing, as a Milvus
    collection that went away does; opening it works, so the link is ready before the write."""

    def __init__(self) -> None:
        self.resets = 0
        self.writes = 0

    def open(self) -> None:
        return None

    def reset(self) -> None:
        self.resets += 1

    def record(self, actor: str, action: str, target: str, detail: dict) -> int:
        self.writes += 1
        raise VectorStoreError("injected: the audit collection is down")

    def save(self, report: Report, vector) -> None:
        self.writes += 1
        raise VectorStoreError("injected: the feedback collection is down")


@dataclass
class Domains:
    corpus: InMemoryCorpus
    answers: InMemoryAnswers
    records: BrokenRecords
    links: StoreLinks
    answer_tier: AnswerTier
    policy: RetrievalPolicy
    metrics: Metrics


async def domains() -> Domains:
    corpus, answers, records = InMemoryCorpus(), InMemoryAnswers(threshold=0.92), BrokenRecords()
    metrics, llm = Metrics(), ScriptedLLM()
    links = StoreLinks(
        corpus=Link(
            "vector store",
            lambda: corpus.open(DIM),
            retry_interval=RETRY,
            reset=corpus.reset,
            on_error=metrics.store_error,
        ),
        answers=Link("answer cache", lambda: answers.open(DIM), retry_interval=RETRY, on_error=metrics.store_error),
        records=Link(
            "records store", records.open, retry_interval=RETRY, reset=records.reset, on_error=metrics.store_error
        ),
        settings=Link("settings store", lambda: None, retry_interval=RETRY, on_error=metrics.store_error),
    )
    for link in links.all():
        await link.open()
    judge = CandidateJudge()
    curated = CuratedTier(corpus, links.corpus, judge, threshold=0.75)
    answer_tier = AnswerTier(answers, links.answers, judge, model=lambda: llm.model)
    policy = RetrievalPolicy(FakeEncoder(), [curated, answer_tier], metrics, defaults=llm.defaults)
    corpus.add(PASSAGE, "season-03")
    req = AnswerRequest(prompt=ASKED)
    assert await answer_tier.put(text_vector(ASKED), req, policy.context_of(req), STORED, 9)
    return Domains(corpus, answers, records, links, answer_tier, policy, metrics)


def audit_write(d: Domains):
    return d.links.records.call(lambda: d.records.record("admin", "corpus.add", "1", {"added": [1]}))


def feedback_write(d: Domains):
    report = Report(
        id=1,
        ts=0,
        request_id="req-1",
        tenant="default",
        actor="caller",
        tier=CURATED,
        entry_id=1,
        similarity=1.0,
        verdict="wrong",
        note="",
        prompt=PASSAGE,
        prompt_hash="h",
        matched="season-03",
        status=OPEN,
    )
    return d.links.records.call(lambda: d.records.save(report, text_vector(PASSAGE)))


async def assert_hits_unaffected(d: Domains) -> None:
    curated = await d.policy.decide(AnswerRequest(prompt=PASSAGE))
    assert (curated.status, curated.match_source, curated.store_error) == (HIT, CURATED, False)
    assert curated.match.biz_id == "season-03"
    generated = await d.policy.decide(AnswerRequest(prompt=ASKED))
    assert (generated.status, generated.match_source, generated.store_error) == (HIT, GENERATED, False)
    assert generated.match.content == STORED
    assert d.links.corpus.ready and d.links.answers.ready and d.links.settings.ready
    assert d.corpus.resets == 0  # the corpus's client was never dropped


@pytest.mark.parametrize("write", [audit_write, feedback_write], ids=["audit", "feedback"])
async def test_a_failing_records_write_leaves_curated_and_answer_hits_alone(write):
    d = await domains()
    with pytest.raises(VectorStoreError, match="injected"):
        await write(d)
    assert not d.links.records.ready and d.records.resets == 1  # that link, and only that one, failed
    assert d.metrics.vector_store_errors._value.get() == 1
    await assert_hits_unaffected(d)


async def test_audit_and_feedback_failing_in_turn_leave_the_hits_alone():
    d = await domains()
    with pytest.raises(VectorStoreError, match="injected"):
        await audit_write(d)
    # the records' link is down until its retry interval: the next write is refused without a call
    with pytest.raises(VectorStoreError, match="records store is unavailable"):
        await feedback_write(d)
    assert d.records.writes == 1
    await assert_hits_unaffected(d)
    await assert_hits_unaffected(d)  # and again: nothing degrades while records stay down
    assert d.corpus.searches >= 4 and d.answers.calls >= 2


async def test_a_failing_corpus_call_leaves_the_records_link_alone():
    d = await domains()
    d.corpus.down = True
    missed = await d.policy.decide(AnswerRequest(prompt=PASSAGE))
    assert missed.store_error and not d.links.corpus.ready
    assert d.links.records.ready and d.links.answers.ready and d.records.resets == 0
    generated = await d.policy.decide(AnswerRequest(prompt=ASKED))
    assert (generated.status, generated.match_source) == (HIT, GENERATED)  # the answer tier: its own link
