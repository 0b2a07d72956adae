"""Write-back cache of generated answers, in its own collection ``<collection>_answers``.

An LLM answer that finished normally is stored with the embedding of the *prompt* that produced it,
the prompt itself, the model, its creation time and the tenant. Lookups are prompt-to-prompt with
their own threshold, filtered to the caller's tenant and to answers younger than the TTL, so an
answer written for one tenant is never served to another and old answers expire. The curated
collection is never written to from here. Implements ``writing.core.ports.AnswerIndex``.
"""

from __future__ import annotations

import time

from writing.adapters.milvus.collection import (
    CollectionSpec,
    MilvusCollection,
    MilvusConnection,
    ScalarField,
    quote,
)
from writing.core.models import Match

VECTOR_FIELD = "prompt_vector"
ANSWERS_SPEC = CollectionSpec(
    vector_field=VECTOR_FIELD,
    fields=(
        ScalarField("prompt", "varchar", 65535),
        ScalarField("content_full", "varchar", 65535),
        ScalarField("model", "varchar", 256),
        ScalarField("tenant", "varchar", 128),
        ScalarField("created_at", "int64"),
    ),
)


class MilvusAnswerStore:
    def __init__(self, connection: MilvusConnection, collection: str, *, threshold: float, ttl_seconds: float) -> None:
        self.collection = collection
        self.threshold = threshold
        self.ttl = ttl_seconds
        self._coll = MilvusCollection(connection, collection, ANSWERS_SPEC)

    def open(self, dim: int) -> None:
        self._coll.ensure(dim)

    def _filter(self, tenant: str) -> str:
        expr = f"tenant == {quote(tenant)}"
        if self.ttl > 0:
            expr += f" and created_at >= {int(time.time() - self.ttl)}"
        return expr

    def lookup(self, vector, tenant: str) -> Match | None:
        hits = self._coll.search(vector, limit=1, filter=self._filter(tenant), output_fields=["content_full"])
        if not hits:
            return None
        h = hits[0]
        return Match(id=h.id, biz_id="", content=h.entity["content_full"], similarity=h.similarity)

    def put(self, vector, *, prompt: str, content: str, model: str, tenant: str) -> int:
        row = {
            VECTOR_FIELD: list(map(float, vector)),
            "prompt": prompt,
            "content_full": content,
            "model": model[:256],
            "tenant": tenant,
            "created_at": int(time.time()),
        }
        return self._coll.insert([row])[0]

    def purge_expired(self) -> int:
        """Delete answers older than the TTL (lookups already ignore them); returns how many."""
        if self.ttl <= 0:
            return 0
        return self._coll.delete(expr=f"created_at < {int(time.time() - self.ttl)}")
