"""Builders that turn the settings into components: the one place where adapters meet the core.

Shared by the app's lifespan, ``ingest.py``, ``calibrate.py`` and the benchmarks. Each builder does the
heavy work it names (loading a model, opening a client) only when called, never at import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from writing.adapters.embedding.batcher import EmbeddingBatcher
from writing.adapters.embedding.encoder import Embedder
from writing.adapters.embedding.os_thread import os_thread_named
from writing.adapters.llm.client import LLMClient
from writing.adapters.milvus.answers import COLLECTION_SUFFIX as ANSWERS_SUFFIX
from writing.adapters.milvus.answers import MilvusAnswerStore
from writing.adapters.milvus.corpus import MilvusStore
from writing.adapters.milvus.evidence import EVIDENCE_SUFFIX, MilvusEvidence
from writing.adapters.milvus.journal import JOURNAL_SUFFIX, MilvusJournal
from writing.adapters.milvus.records import (
    AUDIT_SUFFIX,
    FEEDBACK_SUFFIX,
    LABELS_SUFFIX,
    SETTINGS_SUFFIX,
    MilvusAuditLog,
    MilvusFeedbackStore,
    MilvusLabelStore,
    MilvusRuntimeSettings,
)
from writing.core.answering import Answering
from writing.core.budget.keeper import ENFORCE, BudgetKeeper, TierPlan
from writing.core.budget.labels import JudgeErrors
from writing.core.budget.sampling import SamplingRule
from writing.core.budget.thresholds import Budget
from writing.core.budget.verifier import Verifier, VerifyLimits
from writing.core.corpus import CorpusWriter
from writing.core.exact import ANSWERS, CORPUS, ExactIndex
from writing.core.exact_sync import ExactSync
from writing.core.feedback import Blocklist
from writing.core.guard import HitGuard
from writing.core.jobs import Jobs
from writing.core.judge import CandidateJudge
from writing.core.links import Disabled, Link, StoreLinks
from writing.core.models import SamplingParams
from writing.core.policy import RetrievalPolicy
from writing.core.ports import QueryEncoder
from writing.core.telemetry import CoreMetrics
from writing.core.tiers import Tier
from writing.core.tiers.answer import AnswerTier
from writing.core.tiers.curated import CuratedTier
from writing.core.tiers.exact import ExactTier
from writing.core.tuning import ANSWER_TIER, CURATED_TIER, RuntimeThresholds
from writing.core.undo.answers import AnswersUndo
from writing.core.undo.corpus import CorpusUndo
from writing.core.undo.evidence import EvidenceUndo
from writing.core.undo.promote import PromoteUndo
from writing.core.undo.resolutions import ResolutionUndo
from writing.core.undo.reviews import ReviewsUndo
from writing.core.undo.service import ChangeLog, Undoer
from writing.core.undo.thresholds import ThresholdUndo
from writing.observability.metrics import Metrics
from writing.settings import Settings
from writing.text import normalise_text


def build_embedder(settings: Settings) -> Embedder:
    """The model, loaded under the OS thread name ``embed-load``: the threads it starts (its OpenMP team,
    the tokenizer's pool of Rust threads) are the model's in ``top -H`` and in ``bench/hit_path.py``'s
    split, not a row of ``python`` threads counted as the service's own."""
    with os_thread_named("embed-load"):
        return _embedder(settings)


def _embedder(settings: Settings) -> Embedder:
    return Embedder(
        settings.embedding_model,
        device=settings.embedding_device,
        query_instruction=settings.embedding_query_instruction,
        quantize=settings.embedding_quantize,
        num_threads=settings.embedding_threads,
        trace=settings.embedding_trace,
        pass_tokens=settings.embedding_pass_tokens,
        pooling=settings.embedding_pooling,
        spin_wait=settings.embedding_spin_wait,
    )


def build_store(settings: Settings) -> MilvusStore:
    return MilvusStore(
        uri=settings.milvus_uri,
        lite_path=settings.milvus_lite_path,
        token=settings.milvus_token.get_secret_value(),
        db_name=settings.milvus_db,
        collection=settings.milvus_collection,
        timeout=settings.milvus_timeout,
    )


@dataclass
class Stores:
    """The stores, one connection (and one link) per failure domain: corpus, answers, records, settings.

    Each domain has its own pymilvus client (``MilvusConnection.sibling``: a dedicated channel), so a
    reset after one domain's failure never drops another's client. Closed with the corpus store."""

    corpus: MilvusStore
    answers: MilvusAnswerStore | None
    audit: MilvusAuditLog
    feedback: MilvusFeedbackStore
    labels: MilvusLabelStore
    runtime_settings: MilvusRuntimeSettings
    links: StoreLinks
    journal: MilvusJournal  # the undo journal, beside the audit log (the records' link)
    evidence: MilvusEvidence  # the error budget's verified labels (the records' link)

    def close(self) -> None:
        self.corpus.close()


def build_stores(settings: Settings, store: MilvusStore, dim: int, metrics: CoreMetrics | None = None) -> Stores:
    name = store.collection
    answers_conn, records_conn, settings_conn = (store.domain_connection() for _ in range(3))
    answers = (
        MilvusAnswerStore(
            answers_conn,
            f"{name}{ANSWERS_SUFFIX}",
            threshold=settings.answer_cache_threshold,
            ttl_seconds=settings.answer_cache_ttl,
            max_entries=settings.answer_cache_max_entries,
            max_per_tenant=settings.answer_cache_max_entries_per_tenant,
        )
        if settings.answer_cache
        else None
    )
    audit = MilvusAuditLog(records_conn, f"{name}{AUDIT_SUFFIX}")
    journal = MilvusJournal(records_conn, f"{name}{JOURNAL_SUFFIX}")
    feedback = MilvusFeedbackStore(records_conn, f"{name}{FEEDBACK_SUFFIX}")
    labels = MilvusLabelStore(records_conn, f"{name}{LABELS_SUFFIX}")
    evidence = MilvusEvidence(records_conn, f"{name}{EVIDENCE_SUFFIX}")
    runtime = MilvusRuntimeSettings(settings_conn, f"{name}{SETTINGS_SUFFIX}")
    on_error = metrics.store_error if metrics is not None else None
    retry = settings.milvus_retry_interval

    def open_records() -> None:
        records_conn.connect()
        audit.open()
        journal.open()
        feedback.open(dim)
        labels.open()
        evidence.open()

    def open_settings() -> None:
        settings_conn.connect()
        runtime.open()

    links = StoreLinks(
        corpus=Link(
            "vector store", lambda: store.open(dim), retry_interval=retry, reset=store.reset, on_error=on_error
        ),
        answers=Link(
            "answer cache",
            lambda: (answers_conn.connect(), answers.open(dim)),
            retry_interval=retry,
            reset=answers_conn.reset,
            on_error=on_error,
        )
        if answers is not None
        else Disabled("answer cache", "ANSWER_CACHE=false"),
        records=Link("records store", open_records, retry_interval=retry, reset=records_conn.reset, on_error=on_error),
        settings=Link(
            "settings store", open_settings, retry_interval=retry, reset=settings_conn.reset, on_error=on_error
        ),
    )
    return Stores(store, answers, audit, feedback, labels, runtime, links, journal, evidence)


def build_guard() -> HitGuard:
    """The second check over rjieba (its dictionary loads on first use, or ``warm()``)."""
    from writing.adapters.segmenter import RJiebaTagger

    return HitGuard(RJiebaTagger())


def build_judge(settings: Settings, blocklist: Blocklist | None = None) -> CandidateJudge:
    guard = build_guard() if settings.hit_guard != "off" else None
    return CandidateJudge(blocklist, guard, settings.hit_guard)


def build_chain(
    settings: Settings,
    stores: Stores,
    judge: CandidateJudge,
    llm: LLMClient,
    index: ExactIndex | None = None,
    fits: Callable[[str], bool] | None = None,
) -> tuple[ExactTier | None, CuratedTier, AnswerTier | None]:
    """The tiers in the order the decision walks them: a new tier is one class and one line here.
    The exact tier (first) is there when ``index`` is given (``EXACT_TIER``); ``fits`` says whether a
    prompt fits the embedding window (``window_check``)."""
    curated = CuratedTier(
        stores.corpus,
        stores.links.corpus,
        judge,
        threshold=settings.similarity_threshold,
        fail_without_store=settings.on_vector_store_error == "fail",
    )
    answers = (
        AnswerTier(stores.answers, stores.links.answers, judge, model=lambda: llm.model)
        if stores.answers is not None
        else None
    )
    exact = (
        ExactTier(index, judge, answers=answers, ttl_seconds=settings.answer_cache_ttl, fits=fits)
        if index is not None
        else None
    )
    return exact, curated, answers


def window_check(settings: Settings, embedder: Embedder) -> Callable[[str], bool] | None:
    """Whether a prompt fits the embedding model's window, for the exact tier (None with
    RETRIEVE_LONG_PROMPTS: every length is served)."""
    if settings.retrieve_long_prompts:
        return None
    return lambda text: embedder.token_count(text) <= embedder.max_length


def build_exact(stores: Stores) -> tuple[ExactIndex, ExactSync]:
    """The exact tier's index, told of every write and deletion of this worker's stores, and its reloads."""
    index = ExactIndex()
    sources: list = [(CORPUS, stores.corpus, stores.links.corpus)]
    stores.corpus.watcher = index.watcher(CORPUS)
    if stores.answers is not None:
        stores.answers.watcher = index.watcher(ANSWERS)
        sources.append((ANSWERS, stores.answers, stores.links.answers))
    return index, ExactSync(index, sources)


def build_policy(
    settings: Settings, encoder: QueryEncoder, tiers: Sequence[Tier | None], metrics: CoreMetrics, llm: LLMClient
) -> RetrievalPolicy:
    return RetrievalPolicy(
        encoder,
        [t for t in tiers if t is not None],
        metrics,
        defaults=llm.defaults,
        allowed_system_prompts=frozenset(normalise_text(p) for p in settings.allowed_system_prompts),
        shadow_mode=settings.shadow_mode,
        retrieve_long_prompts=settings.retrieve_long_prompts,
        budgeted=frozenset(enforced_budgets(settings)),
    )


def budgets(settings: Settings) -> dict[str, Budget]:
    """Each tier with an error budget (ERROR_BUDGET_CURATED / _ANSWER above 0), within its run-time bounds."""
    out = {}
    for tier, rate, low, high in (
        (
            CURATED_TIER,
            settings.error_budget_curated,
            settings.similarity_threshold_min,
            settings.similarity_threshold_max,
        ),
        (
            ANSWER_TIER,
            settings.error_budget_answer,
            settings.answer_cache_threshold_min,
            settings.answer_cache_threshold_max,
        ),
    ):
        if rate > 0 and (tier == CURATED_TIER or settings.answer_cache):
            out[tier] = Budget(
                rate=rate,
                low=low,
                high=high,
                confidence=settings.error_budget_confidence,
                min_labels=settings.error_budget_min_labels,
            )
    return out


def enforced_budgets(settings: Settings) -> list[str]:
    """The budget tiers whose thresholds the budget holds (a caller's override may then only raise them)."""
    return list(budgets(settings)) if settings.error_budget_mode == ENFORCE else []


def build_verifier(
    settings: Settings, stores: Stores, llm: LLMClient, judge: CandidateJudge, answering: Answering
) -> Verifier:
    return Verifier(
        llm=llm,
        evidence=stores.evidence,
        link=stores.links.records,
        judge=judge,
        rule=SamplingRule(),
        limits=VerifyLimits(
            per_minute=settings.verify_max_per_minute,
            max_llm_in_flight=settings.verify_max_llm_in_flight,
            pause_after_failure=settings.verify_pause_after_failure,
        ),
        low={CURATED_TIER: settings.similarity_threshold_min, ANSWER_TIER: settings.answer_cache_threshold_min},
        llm_busy=lambda: answering.llm_in_flight,
        llm_failing=lambda: llm.health().failing,
    )


def build_keeper(
    settings: Settings,
    stores: Stores,
    *,
    thresholds: RuntimeThresholds,
    judge: CandidateJudge,
    verifier: Verifier | None,
    metrics: Metrics | None,
) -> BudgetKeeper | None:
    """The error budget's keeper, when a tier has a budget (None otherwise)."""
    tiers = budgets(settings)
    if not tiers:
        return None

    def counted(counts: dict[tuple[str, int], int]) -> None:
        if verifier is not None:
            verifier.entry_labels = counts

    def planned(found: TierPlan) -> None:
        if metrics is not None:
            bound = found.plan.tier.bound
            value = found.plan.tier.value
            metrics.budget_planned(
                found.tier, bound.estimate, bound.upper, value, found.judge_labels, found.admin_labels
            )

    return BudgetKeeper(
        budgets=tiers,
        evidence=stores.evidence,
        reports=stores.feedback,
        relabels=stores.labels.iter_pairs,
        audit=stores.audit,
        link=stores.links.records,
        judge_errors=JudgeErrors(
            miss=settings.verify_judge_miss_rate, false_alarm=settings.verify_judge_false_alarm_rate
        ),
        mode=settings.error_budget_mode,
        window_days=settings.error_budget_window_days,
        thresholds=thresholds,
        judge=judge,
        on_counts=counted,
        on_plan=planned,
    )


def build_thresholds(settings: Settings, curated: CuratedTier, answers: AnswerTier | None) -> RuntimeThresholds:
    return RuntimeThresholds(
        curated,
        answers,
        curated_default=settings.similarity_threshold,
        answer_default=settings.answer_cache_threshold,
        curated_range=(settings.similarity_threshold_min, settings.similarity_threshold_max),
        answer_range=(settings.answer_cache_threshold_min, settings.answer_cache_threshold_max),
    )


def build_undo(
    settings: Settings,
    stores: Stores,
    *,
    writer: CorpusWriter,
    encoder: QueryEncoder,
    refresh_thresholds: Callable[[], Awaitable[None]],
    blocklist: Blocklist,
) -> tuple[ChangeLog, Undoer]:
    """The journal of admin changes and the undo with one handler per kind of change."""
    changes = ChangeLog(stores.journal, stores.audit, stores.links.records, retention_days=settings.undo_retention_days)
    answers = AnswersUndo(stores.answers, stores.links.answers, encoder)
    promoted = PromoteUndo(lambda: stores.corpus, stores.links.corpus, answers)
    decisions = ReviewsUndo(stores.feedback, stores.labels, stores.links.records, blocklist)
    resolutions = ResolutionUndo(
        decisions=decisions,
        answers=answers,
        promoted=promoted,
        corpus_link=stores.links.corpus,
        writer=lambda: writer,
        labels=stores.labels,
        records_link=stores.links.records,
    )
    handlers = [
        CorpusUndo(stores.links.corpus, lambda: writer),
        answers,
        promoted,
        ThresholdUndo(stores.runtime_settings, stores.links.settings, refresh_thresholds),
        decisions,
        resolutions,
        EvidenceUndo(stores.evidence, stores.links.records),
    ]
    return changes, Undoer(changes, handlers)


def build_llm(settings: Settings) -> LLMClient:
    return LLMClient(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value(),
        model=settings.llm_model,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        defaults=SamplingParams(
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            top_p=settings.llm_top_p,
        ),
    )


def build_batcher(settings: Settings, embedder: Embedder) -> EmbeddingBatcher:
    return EmbeddingBatcher(
        embedder,
        max_batch_size=settings.embedding_max_batch_size,
        max_wait_ms=settings.embedding_batch_wait_ms,
        queue_size=settings.embedding_queue_size,
        cache_size=settings.embedding_cache_size,
        workers=settings.embedding_workers,
        batch_tokens=settings.embedding_batch_tokens,
        window=embedder.max_length,
        admin_weight=settings.embedding_admin_weight,
    )


@dataclass
class Core:
    """The decision and the answering as the app runs them."""

    judge: CandidateJudge
    curated: CuratedTier
    answers: AnswerTier | None
    policy: RetrievalPolicy
    answering: Answering
    exact: ExactTier | None = None  # EXACT_TIER=false: None
    exact_sync: ExactSync | None = None  # fills the exact tier's index and reloads it (the app's job)


def build_core(
    settings: Settings,
    *,
    encoder: QueryEncoder,
    stores: Stores,
    llm: LLMClient,
    metrics: CoreMetrics,
    jobs: Jobs,
    blocklist: Blocklist | None = None,
    fits: Callable[[str], bool] | None = None,
) -> Core:
    judge = build_judge(settings, blocklist)
    index, sync = build_exact(stores) if settings.exact_tier else (None, None)
    exact, curated, answers = build_chain(settings, stores, judge, llm, index, fits)
    policy = build_policy(settings, encoder, (exact, curated, answers), metrics, llm)
    answering = Answering(
        policy, llm, metrics, jobs, answers=answers, retrieve_long_prompts=settings.retrieve_long_prompts
    )
    return Core(judge, curated, answers, policy, answering, exact, sync)
