"""Builders that turn the settings into components: the one place where adapters meet the core.

Shared by the app's lifespan, ``ingest.py``, ``calibrate.py`` and the benchmarks. Each builder does the
heavy work it names (loading a model, opening a client) only when called, never at import.
"""

from __future__ import annotations

from writing.adapters.embedding.batcher import EmbeddingBatcher
from writing.adapters.embedding.encoder import Embedder
from writing.adapters.llm.client import LLMClient
from writing.adapters.milvus.answers import COLLECTION_SUFFIX as ANSWERS_SUFFIX
from writing.adapters.milvus.answers import MilvusAnswerStore
from writing.adapters.milvus.corpus import MilvusStore
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
from writing.core.decision import WritingService
from writing.core.feedback import Blocklist
from writing.core.guard import HitGuard
from writing.core.models import SamplingParams
from writing.core.tuning import RuntimeThresholds
from writing.observability.metrics import Metrics
from writing.settings import Settings
from writing.text import normalise_text


def build_embedder(settings: Settings) -> Embedder:
    return Embedder(
        settings.embedding_model,
        device=settings.embedding_device,
        query_instruction=settings.embedding_query_instruction,
        quantize=settings.embedding_quantize,
        num_threads=settings.embedding_threads,
        trace=settings.embedding_trace,
        pass_tokens=settings.embedding_pass_tokens,
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


def build_answer_store(settings: Settings, store: MilvusStore) -> MilvusAnswerStore | None:
    """The answer cache (``ANSWER_CACHE``), over the curated store's connection; None when off."""
    if not settings.answer_cache:
        return None
    return MilvusAnswerStore(
        store.connection,
        f"{store.collection}{ANSWERS_SUFFIX}",
        threshold=settings.answer_cache_threshold,
        ttl_seconds=settings.answer_cache_ttl,
        max_entries=settings.answer_cache_max_entries,
    )


def build_records(store: MilvusStore) -> tuple[MilvusAuditLog, MilvusFeedbackStore]:
    """The audit log and the feedback reports, over the curated store's connection."""
    return (
        MilvusAuditLog(store.connection, f"{store.collection}{AUDIT_SUFFIX}"),
        MilvusFeedbackStore(store.connection, f"{store.collection}{FEEDBACK_SUFFIX}"),
    )


def build_tuning_records(store: MilvusStore) -> tuple[MilvusRuntimeSettings, MilvusLabelStore]:
    """The run-time settings and the labelled pairs grown from feedback, over the store's connection."""
    return (
        MilvusRuntimeSettings(store.connection, f"{store.collection}{SETTINGS_SUFFIX}"),
        MilvusLabelStore(store.connection, f"{store.collection}{LABELS_SUFFIX}"),
    )


def build_thresholds(settings: Settings, service: WritingService) -> RuntimeThresholds:
    return RuntimeThresholds(
        service,
        service.answer_cache,
        curated_default=settings.similarity_threshold,
        answer_default=settings.answer_cache_threshold,
        curated_range=(settings.similarity_threshold_min, settings.similarity_threshold_max),
    )


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
    )


def build_service(
    settings: Settings,
    *,
    batcher: EmbeddingBatcher,
    store: MilvusStore,
    llm: LLMClient,
    metrics: Metrics | None = None,
    blocklist: Blocklist | None = None,
) -> WritingService:
    """The retrieval-first decision as the app runs it."""
    return WritingService(
        encoder=batcher,
        store=store,
        llm=llm,
        threshold=settings.similarity_threshold,
        threshold_range=(settings.similarity_threshold_min, settings.similarity_threshold_max),
        max_prompt_chars=settings.max_prompt_chars,
        answer_cache=build_answer_store(settings, store),
        shadow_mode=settings.shadow_mode,
        retrieve_long_prompts=settings.retrieve_long_prompts,
        fail_without_store=settings.on_vector_store_error == "fail",
        metrics=metrics,
        store_retry_interval=settings.milvus_retry_interval,
        allowed_system_prompts=frozenset(normalise_text(p) for p in settings.allowed_system_prompts),
        blocklist=blocklist,
        maintenance_interval=settings.answer_cache_maintenance_interval,
        guard=HitGuard() if settings.hit_guard != "off" else None,
        guard_mode=settings.hit_guard,
    )
