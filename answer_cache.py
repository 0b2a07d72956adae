"""Write-back cache of generated answers, in its own collection ``<collection>_answers``.

An LLM answer that finished normally is stored with the embedding of the *prompt* that produced it,
the prompt itself, the model, its creation time and the tenant. Lookups are prompt-to-prompt with
their own threshold, filtered to the caller's tenant and to answers younger than the TTL, so an
answer written for one tenant is never served to another and old answers expire. The curated
collection is never written to from here.
"""

from __future__ import annotations

import logging
import time

from milvus_server import LOAD_TIMEOUT, Match, MilvusStore, VectorStoreError, quote

logger = logging.getLogger(__name__)

VECTOR_FIELD = "prompt_vector"
FIELDS = ("prompt", "content_full", "model", "tenant", "created_at")


class AnswerCache:
    def __init__(self, store: MilvusStore, *, threshold: float, ttl_seconds: float) -> None:
        self.store = store
        self.collection = f"{store.collection}_answers"
        self.threshold = threshold
        self.ttl = ttl_seconds

    def open(self, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        c = self.store.client
        t = self.store.timeout
        if not c.has_collection(self.collection, timeout=t):
            schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field("prompt", DataType.VARCHAR, max_length=65535)
            schema.add_field("content_full", DataType.VARCHAR, max_length=65535)
            schema.add_field("model", DataType.VARCHAR, max_length=256)
            schema.add_field("tenant", DataType.VARCHAR, max_length=128)
            schema.add_field("created_at", DataType.INT64)
            index = c.prepare_index_params()
            index.add_index(VECTOR_FIELD, index_type="AUTOINDEX", metric_type="COSINE")
            c.create_collection(
                self.collection, schema=schema, index_params=index, consistency_level="Bounded", timeout=t
            )
            logger.info("created the write-back collection %s (dim %d)", self.collection, dim)
        desc = c.describe_collection(self.collection, timeout=t)
        have = next(int(f["params"]["dim"]) for f in desc["fields"] if f["name"] == VECTOR_FIELD)
        if have != dim:
            raise VectorStoreError(f"answer cache {self.collection!r} holds {have}-dim vectors, not {dim}")
        c.load_collection(self.collection, timeout=max(t, LOAD_TIMEOUT))

    def _filter(self, tenant: str) -> str:
        expr = f"tenant == {quote(tenant)}"
        if self.ttl > 0:
            expr += f" and created_at >= {int(time.time() - self.ttl)}"
        return expr

    def lookup(self, vector, tenant: str) -> Match | None:
        try:
            res = self.store.client.search(
                self.collection,
                data=[list(map(float, vector))],
                anns_field=VECTOR_FIELD,
                limit=1,
                filter=self._filter(tenant),
                output_fields=list(FIELDS),
                search_params={"metric_type": "COSINE"},
                consistency_level="Bounded",
                timeout=self.store.timeout,
            )
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"answer-cache search failed: {exc}") from exc
        hits = res[0] if res else []
        if not hits:
            return None
        h = hits[0]
        return Match(
            id=int(h["id"]),
            biz_id="",
            content=h["entity"]["content_full"],
            similarity=max(-1.0, min(1.0, float(h["distance"]))),
        )

    def put(self, vector, *, prompt: str, content: str, model: str, tenant: str) -> int:
        row = {
            VECTOR_FIELD: list(map(float, vector)),
            "prompt": prompt,
            "content_full": content,
            "model": model[:256],
            "tenant": tenant,
            "created_at": int(time.time()),
        }
        try:
            res = self.store.client.insert(self.collection, [row], timeout=self.store.timeout)
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"answer-cache insert failed: {exc}") from exc
        return int(res["ids"][0])

    def purge_expired(self) -> int:
        """Delete answers older than the TTL (lookups already ignore them); returns how many."""
        if self.ttl <= 0:
            return 0
        res = self.store.client.delete(
            self.collection, filter=f"created_at < {int(time.time() - self.ttl)}", timeout=self.store.timeout
        )
        return int(res.get("delete_count", 0)) if isinstance(res, dict) else 0
