"""Managing the curated corpus over HTTP, and a search endpoint for debugging decisions.

Adding shares one code path with ``ingest.py`` (``writing.core.corpus.CorpusWriter``): idempotent by
content hash. Every store operation runs through the corpus's link (``writing.core.links``): in a
thread, with a reconnect when the store was down, and a 503 when it still is; the audit entry that
follows a change goes through the records' link, a failure domain of its own.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from writing.api.auth import require_admin
from writing.api.deps import (
    ChangesDep,
    CoreDep,
    LinksDep,
    StoresDep,
    actor_of,
    corpus_writer,
    flow_of_request,
    valid_prompt,
)
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.base import row_id
from writing.api.protocol.console import ImportLineError, ImportRequest, ImportResult, PassageEdit, PassageEdited
from writing.api.protocol.corpus import (
    BIZ_ID_PATTERN,
    CorpusAddRequest,
    CorpusAddResponse,
    CorpusStats,
    DeleteResponse,
    PassageList,
    PassageOut,
    SearchMatch,
    SearchRequest,
    SearchResponse,
)
from writing.core.corpus import (
    MAX_BIZ_ID_CHARS,
    QUERY_WINDOW,
    AddResult,
    Problem,
    make_passage,
    read_jsonl,
    stored_passage,
)
from writing.core.links import StoreLinks
from writing.core.models import Passage
from writing.core.undo.corpus import intent_of_add
from writing.core.undo.service import ChangeLog
from writing.errors import InvalidRequest, NotFound
from writing.wiring import Stores

ADMIN = [Depends(require_admin)]
MAX_IMPORT_LINES = 1000


async def journaled_add(
    request: Request, links: StoreLinks, changes: ChangeLog, action: str, passages: list[Passage]
) -> tuple[AddResult, list[dict]]:
    """Add through ingest.py's code path with the change journaled: the intent (the texts, and which of
    them were stored already) before, the outcome (the ids added) and the audit entry after."""
    writer = corpus_writer(request)
    hashes = sorted({p.content_hash for p in passages})
    existing = await links.corpus.call(lambda: writer.store.ids_by_hash(hashes))
    actor, target = actor_of(request), f"{len(passages)} passages"
    entry = await changes.begin(actor, action, target, intent_of_add(passages, existing))
    result = await links.corpus.call(lambda: writer.add(passages))
    added = [
        {"id": i, "biz_id": p.biz_id}
        for i, p, dup in zip(result.ids, passages, result.duplicate, strict=True)
        if not dup
    ]
    target = ",".join(str(a["id"]) for a in added)[:500] if action == "corpus.add" else f"{len(added)} passages"
    await changes.finish(entry, actor, action, target, {"added": added}, {"added": added})
    return result, added


async def journaled_delete(request: Request, stores: Stores, changes: ChangeLog, target: str, rows: list[dict]) -> int:
    """Delete these passages (whole rows) with the change journaled: their texts and biz_ids before."""
    store, actor = stores.corpus, actor_of(request)
    store.check_writable()  # a read-only reference collection: 409 before anything is journaled
    entry = await changes.begin(actor, "corpus.delete", target, {"passages": rows})
    deleted = await stores.links.corpus.call(lambda: store.delete_passages(ids=[r["id"] for r in rows]))
    await changes.finish(
        entry, actor, "corpus.delete", target, {"deleted": deleted}, {"deleted": rows, "count": deleted}
    )
    return deleted


def build_router() -> APIRouter:
    router = APIRouter(tags=["corpus"])

    @router.post(
        "/v1/corpus",
        response_model=CorpusAddResponse,
        responses=error_responses(409, *ADMIN_STATUSES),
        dependencies=ADMIN,
    )
    async def add_passages(
        request: Request, links: LinksDep, changes: ChangesDep, body: CorpusAddRequest
    ) -> CorpusAddResponse:
        passages = [make_passage(p.model_dump()) for p in body.items()]  # InvalidPassage: 422
        result, added = await journaled_add(request, links, changes, "corpus.add", passages)
        return CorpusAddResponse(
            ids=result.ids, duplicate=result.duplicate, inserted=result.inserted, skipped=result.skipped
        )

    @router.get(
        "/v1/corpus/stats", response_model=CorpusStats, responses=error_responses(*ADMIN_STATUSES), dependencies=ADMIN
    )
    async def corpus_stats(request: Request, stores: StoresDep) -> CorpusStats:
        stats = await stores.links.corpus.call(stores.corpus.stats)
        info = request.app.state.batcher.embedder.info
        return CorpusStats(**stats, model=info.model, pooling=info.pooling, max_tokens=info.max_length)

    @router.get(
        "/v1/corpus/export",
        responses={200: {"content": {"application/x-ndjson": {}}}, **error_responses(*ADMIN_STATUSES)},
        response_class=StreamingResponse,
        dependencies=ADMIN,
        summary="Every passage in ingest.py's JSONL format ({content, biz_id} per line).",
    )
    async def export_corpus(stores: StoresDep) -> StreamingResponse:
        store = stores.corpus
        batches = await stores.links.corpus.call(lambda: store.iter_passages(batch_size=500))

        async def lines() -> AsyncIterator[str]:
            while True:  # one batch per thread hop: the loop never waits on Milvus
                batch = await asyncio.to_thread(next, batches, None)
                if batch is None:
                    return
                yield "".join(
                    json.dumps({"content": p.content, "biz_id": p.biz_id}, ensure_ascii=False) + "\n" for p in batch
                )

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @router.get(
        "/v1/corpus/{passage_id:int}",
        response_model=PassageOut,
        responses=error_responses(404, *ADMIN_STATUSES),
        dependencies=ADMIN,
    )
    async def get_passage(stores: StoresDep, passage_id: int = row_id()) -> PassageOut:
        store = stores.corpus
        rows = await stores.links.corpus.call(lambda: store.get_passages([passage_id]))
        if not rows:
            raise NotFound(f"no passage with id {passage_id}")
        return PassageOut(**rows[0])

    @router.get(
        "/v1/corpus", response_model=PassageList, responses=error_responses(*ADMIN_STATUSES), dependencies=ADMIN
    )
    async def list_passages(
        stores: StoresDep,
        biz_id: str | None = Query(None, max_length=MAX_BIZ_ID_CHARS, pattern=BIZ_ID_PATTERN),
        text: str | None = Query(
            None, min_length=1, max_length=200, pattern=BIZ_ID_PATTERN, description="Passages holding this text."
        ),
        limit: int = Query(20, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=QUERY_WINDOW - 1),
    ) -> PassageList:
        if offset + limit > QUERY_WINDOW:
            raise InvalidRequest(f"offset + limit must not exceed {QUERY_WINDOW}")
        store = stores.corpus
        rows, total = await stores.links.corpus.call(
            lambda: store.find_passages(biz_id=biz_id, text=text, limit=limit, offset=offset)
        )
        return PassageList(items=[PassageOut(**r) for r in rows], limit=limit, offset=offset, total=total)

    @router.put(
        "/v1/corpus/{passage_id:int}",
        response_model=PassageEdited,
        responses=error_responses(404, 409, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Edit a passage: the new text is embedded and stored under a new id; the old row goes.",
    )
    async def edit_passage(
        request: Request, stores: StoresDep, changes: ChangesDep, body: PassageEdit, passage_id: int = row_id()
    ) -> PassageEdited:
        new = make_passage(body.model_dump())
        store, corpus = stores.corpus, stores.links.corpus
        writer = corpus_writer(request)
        before = await corpus.call(lambda: store.get_passages([passage_id]))
        if not before:
            raise NotFound(f"no passage with id {passage_id}")
        old = stored_passage(before[0])
        if old == new:
            return PassageEdited(id=passage_id, previous_id=passage_id, duplicate=True)
        await corpus.call(lambda: writer.check_free(passage_id, old, new))  # 409 before anything is journaled
        actor, target = actor_of(request), str(passage_id)
        intent = {"before": before[0], "after": {"biz_id": new.biz_id, "content": new.content}}
        entry = await changes.begin(actor, "corpus.edit", target, intent)
        result = await corpus.call(lambda: writer.replace(passage_id, old, new))
        new_id = result.ids[0]
        detail = {"before": before[0], "after": {"id": new_id, "biz_id": new.biz_id, "content": new.content}}
        await changes.finish(entry, actor, "corpus.edit", target, {"id": new_id}, detail)
        return PassageEdited(id=new_id, previous_id=passage_id, duplicate=result.duplicate[0])

    @router.post(
        "/v1/corpus/import",
        response_model=ImportResult,
        responses=error_responses(409, 413, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Import JSONL passages: idempotent by content hash; bad lines are reported by line number.",
    )
    async def import_passages(
        request: Request, links: LinksDep, changes: ChangesDep, body: ImportRequest
    ) -> ImportResult:
        first_line = body.first_line
        problems: list[Problem] = []
        passages = list(read_jsonl(io.StringIO(body.jsonl), "jsonl", problems, first_line))
        if len(passages) > MAX_IMPORT_LINES:
            raise InvalidRequest(f"at most {MAX_IMPORT_LINES} passages per request; send the file in parts")
        result = (await journaled_add(request, links, changes, "corpus.import", passages))[0] if passages else None
        return ImportResult(
            read=len(passages) + len(problems),
            inserted=result.inserted if result else 0,
            skipped=result.skipped if result else 0,
            errors=[ImportLineError(line=p.line or first_line, message=p.message) for p in problems],
        )

    @router.delete(
        "/v1/corpus/{passage_id:int}",
        response_model=DeleteResponse,
        responses=error_responses(404, 409, *ADMIN_STATUSES),
        dependencies=ADMIN,
    )
    async def delete_passage(
        request: Request, stores: StoresDep, changes: ChangesDep, passage_id: int = row_id()
    ) -> DeleteResponse:
        store = stores.corpus
        before = await stores.links.corpus.call(lambda: store.get_passages([passage_id]))
        if not before:
            raise NotFound(f"no passage with id {passage_id}")
        deleted = await journaled_delete(request, stores, changes, str(passage_id), before)
        if not deleted:
            raise NotFound(f"no passage with id {passage_id}")
        return DeleteResponse(deleted=deleted)

    @router.delete(
        "/v1/corpus", response_model=DeleteResponse, responses=error_responses(409, *ADMIN_STATUSES), dependencies=ADMIN
    )
    async def delete_by_biz_id(
        request: Request,
        stores: StoresDep,
        changes: ChangesDep,
        biz_id: str = Query(..., min_length=1, max_length=MAX_BIZ_ID_CHARS, pattern=BIZ_ID_PATTERN),
    ) -> DeleteResponse:
        store = stores.corpus
        before = await stores.links.corpus.call(lambda: store.passages_of(biz_id))
        deleted = await journaled_delete(request, stores, changes, f"biz_id={biz_id}", before) if before else 0
        return DeleteResponse(deleted=deleted)

    @router.post("/v1/search", response_model=SearchResponse, responses=error_responses())
    async def search(request: Request, stores: StoresDep, core: CoreDep, body: SearchRequest) -> SearchResponse:
        store = stores.corpus
        prompt = valid_prompt(request, body.prompt)
        query = await request.app.state.batcher.embed_query(prompt, flow_of_request(request))
        matches = await stores.links.corpus.call(lambda: store.search(query.vector, body.top_k))
        guard, threshold = core.judge.guard, core.curated.threshold

        def verdicts() -> list[str | None]:
            if guard is None:
                return [None] * len(matches)
            checked = [guard.check(prompt, m.content, "curated") for m in matches]
            return ["pass" if v.ok else f"rejected:{v.reason}" for v in checked]

        return SearchResponse(
            threshold=threshold,
            matches=[
                SearchMatch(
                    id=m.id,
                    biz_id=m.biz_id,
                    similarity=m.similarity,
                    content=m.content,
                    above_threshold=m.similarity >= threshold,
                    guard=verdict,
                )
                for m, verdict in zip(matches, await asyncio.to_thread(verdicts), strict=True)
            ],
        )

    return router
