"""Builders that turn the settings into components; shared by the app, ingest.py and the tools."""

from __future__ import annotations

from embedding import Embedder
from embedding_batcher import EmbeddingBatcher
from milvus_server import MilvusStore
from settings import Settings
from vllm_client import LLMClient, SamplingParams


def build_embedder(settings: Settings) -> Embedder:
    return Embedder(
        settings.embedding_model,
        device=settings.embedding_device,
        query_instruction=settings.embedding_query_instruction,
        quantize=settings.embedding_quantize,
        num_threads=settings.embedding_threads,
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
    )
