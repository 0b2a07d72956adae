"""Stored answers, for admins: list, read, delete (one or by filter), promote into the curated corpus.

The answer cache's own rule (``writing.core.context``) decides what is served; these routes let a
person find a wrong or poisoned answer and remove it, or promote a good one so that it is curated.
Every call goes through the answer store's link (503 when the cache is off or down); a promotion writes
the corpus through the corpus's link, and the audit entry goes through the records' link.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from writing.api.auth import require_admin
from writing.api.deps import ChangesDep, StoresDep, actor_of, corpus_writer
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.admin import (
    CURSOR,
    DeletedCount,
    PromoteRequest,
    PromoteResponse,
    StoredAnswerOut,
    StoredAnswerPage,
)
from writing.api.protocol.base import row_id
from writing.core.corpus import make_passage
from writing.core.models import StoredAnswer
from writing.errors import InvalidRequest, NotFound

ADMIN = [Depends(require_admin)]
MAX_AGE = 100 * 365 * 24 * 3600.0


def _out(a: StoredAnswer) -> StoredAnswerOut:
    return StoredAnswerOut(
        id=a.id,
        tenant=a.tenant,
        model=a.model,
        prompt=a.prompt,
        content=a.content,
        stops=list(a.stops),
        completion_tokens=a.completion_tokens,
        created_at=a.created_at,
        hits=a.hits,
        last_hit=a.last_hit,
    )


def build_router() -> APIRouter:
    router = APIRouter(tags=["stored answers"], dependencies=ADMIN)
    filters = {
        "tenant": Query(None, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$"),
        "model": Query(None, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$"),
        "older_than": Query(
            None, ge=0, le=MAX_AGE, description="Only answers created more than this many seconds ago."
        ),
    }

    @router.get("/v1/answers", response_model=StoredAnswerPage, responses=error_responses(*ADMIN_STATUSES))
    async def list_answers(
        stores: StoresDep,
        tenant: str | None = filters["tenant"],
        model: str | None = filters["model"],
        older_than: float | None = filters["older_than"],
        newer_than: float | None = Query(None, ge=0, le=MAX_AGE, description="Only answers younger than this."),
        text: str | None = Query(None, min_length=1, max_length=200, description="In the prompt or the answer."),
        cursor: int = CURSOR,
        limit: int = Query(50, ge=1, le=500),
    ) -> StoredAnswerPage:
        answers = stores.answers  # None when the cache is off: its link answers 503 before any call
        items, next_cursor = await stores.links.answers.call(
            lambda: answers.list_answers(
                tenant=tenant,
                model=model,
                older_than=older_than,
                newer_than=newer_than,
                text=text,
                after=cursor,
                limit=limit,
            )
        )
        return StoredAnswerPage(items=[_out(a) for a in items], next_cursor=next_cursor)

    @router.get(
        "/v1/answers/{answer_id:int}", response_model=StoredAnswerOut, responses=error_responses(404, *ADMIN_STATUSES)
    )
    async def get_answer(stores: StoresDep, answer_id: int = row_id()) -> StoredAnswerOut:
        answers = stores.answers
        found = await stores.links.answers.call(lambda: answers.get_answer(answer_id))
        if found is None:
            raise NotFound(f"no stored answer with id {answer_id}")
        return _out(found)

    @router.delete(
        "/v1/answers/{answer_id:int}", response_model=DeletedCount, responses=error_responses(404, *ADMIN_STATUSES)
    )
    async def delete_answer(
        request: Request, stores: StoresDep, changes: ChangesDep, answer_id: int = row_id()
    ) -> DeletedCount:
        answers, link = stores.answers, stores.links.answers
        found = await link.call(lambda: answers.get_answer(answer_id))
        rows = await link.call(lambda: answers.export_rows(ids=[answer_id])) if found is not None else []
        if not rows:
            raise NotFound(f"no stored answer with id {answer_id}")
        actor, target = actor_of(request), str(answer_id)
        entry = await changes.begin(actor, "answers.delete", target, {"answers": rows})
        if not await link.call(lambda: answers.delete_answer(answer_id)):
            raise NotFound(f"no stored answer with id {answer_id}")
        detail = {"answer": _out(found).model_dump()}
        await changes.finish(entry, actor, "answers.delete", target, {"deleted": 1}, detail)
        return DeletedCount(deleted=1)

    @router.delete("/v1/answers", response_model=DeletedCount, responses=error_responses(*ADMIN_STATUSES))
    async def delete_answers(
        request: Request,
        stores: StoresDep,
        changes: ChangesDep,
        tenant: str | None = filters["tenant"],
        model: str | None = filters["model"],
        older_than: float | None = filters["older_than"],
        all: bool = Query(False, description="Delete every stored answer (needed when no filter is given)."),  # noqa: A002
    ) -> DeletedCount:
        if tenant is None and model is None and older_than is None and not all:
            raise InvalidRequest("give at least one of tenant, model, older_than, or all=true to delete every answer")
        answers, link = stores.answers, stores.links.answers
        rows = await link.call(lambda: answers.export_rows(tenant=tenant, model=model, older_than=older_than))
        if not rows:
            return DeletedCount(deleted=0)
        filters_used = {"tenant": tenant, "model": model, "older_than": older_than, "all": all}
        actor = actor_of(request)
        entry = await changes.begin(
            actor, "answers.delete_where", "answers", {"answers": rows, "filters": filters_used}
        )
        deleted = await link.call(lambda: answers.delete_ids([int(r["id"]) for r in rows]))
        detail = {"filters": filters_used, "deleted": deleted, "ids": [int(r["id"]) for r in rows]}
        await changes.finish(entry, actor, "answers.delete_where", "answers", {"deleted": deleted}, detail)
        return DeletedCount(deleted=deleted)

    @router.post(
        "/v1/answers/{answer_id:int}/promote",
        response_model=PromoteResponse,
        responses=error_responses(404, 409, *ADMIN_STATUSES),
        summary="Move a stored answer into the curated corpus; its prompt becomes a retrieval key of the passage.",
    )
    async def promote_answer(
        request: Request, stores: StoresDep, changes: ChangesDep, body: PromoteRequest, answer_id: int = row_id()
    ) -> PromoteResponse:
        answers, store, links = stores.answers, stores.corpus, stores.links
        found = await links.answers.call(lambda: answers.get_with_vector(answer_id))
        if found is None:
            raise NotFound(f"no stored answer with id {answer_id}")
        answer, vector = found
        passage = make_passage({"content": answer.content, "biz_id": body.biz_id})
        writer = corpus_writer(request)
        rows = await links.answers.call(lambda: answers.export_rows(ids=[answer_id]))
        existing = await links.corpus.call(lambda: store.ids_by_hash([passage.content_hash]))  # 409: read-only
        if not rows:
            raise NotFound(f"no stored answer with id {answer_id}")
        actor, target = actor_of(request), str(answer_id)
        intent = {
            "answer": rows[0],
            "passage": {"content": passage.content, "biz_id": passage.biz_id},
            "existing": existing.get(passage.content_hash),
        }
        entry = await changes.begin(actor, "answers.promote", target, intent)

        def promote() -> tuple[int, bool, int]:
            added = writer.add([passage])
            key_id = store.add_retrieval_key(added.ids[0], answer.prompt, vector)
            return added.ids[0], added.duplicate[0], key_id

        passage_id, duplicate, key_id = await links.corpus.call(promote)
        await links.answers.call(lambda: answers.delete_answer(answer_id))
        outcome = {"passage_id": passage_id, "duplicate": duplicate, "retrieval_key_id": key_id}
        detail = {"answer": _out(answer).model_dump(), "biz_id": body.biz_id, **outcome}
        await changes.finish(entry, actor, "answers.promote", target, outcome, detail)
        return PromoteResponse(
            passage_id=passage_id, duplicate=duplicate, retrieval_key_id=key_id, removed_answer_id=answer_id
        )

    return router
