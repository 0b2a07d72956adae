"""Managing the curated corpus over HTTP, and a search endpoint for debugging decisions.

Adding shares one code path with ``ingest.py`` (``corpus.CorpusWriter``): idempotent by content hash.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator

from corpus import CorpusWriter, InvalidPassage, make_passage
from http_common import ERROR_RESPONSES, error_response, service_of
from milvus_server import MAX_BIZ_ID_CHARS, MAX_CONTENT_CHARS, QUERY_WINDOW
from service import PromptError

MAX_PASSAGES_PER_REQUEST = 256
BIZ_ID_PATTERN = r"^[^\x00-\x1f\x7f]*$"  # no control characters (line breaks included)


class PassageIn(BaseModel):
    content: str = Field(..., min_length=1, max_length=MAX_CONTENT_CHARS)
    biz_id: str = Field("", max_length=MAX_BIZ_ID_CHARS)


class CorpusAddRequest(BaseModel):
    """One passage (``content``, ``biz_id``) or many (``passages``)."""

    passages: list[PassageIn] | None = Field(None, min_length=1, max_length=MAX_PASSAGES_PER_REQUEST)
    content: str | None = Field(None, min_length=1, max_length=MAX_CONTENT_CHARS)
    biz_id: str = Field("", max_length=MAX_BIZ_ID_CHARS)

    @model_validator(mode="after")
    def _one_form(self) -> "CorpusAddRequest":
        if (self.passages is None) == (self.content is None):
            raise ValueError("send either 'passages' (a list) or one 'content'")
        return self

    def items(self) -> list[PassageIn]:
        return self.passages if self.passages is not None else [PassageIn(content=self.content, biz_id=self.biz_id)]


class CorpusAddResponse(BaseModel):
    ids: list[int]
    duplicate: list[bool]
    inserted: int
    skipped: int


class PassageOut(BaseModel):
    id: int
    biz_id: str
    content: str


class PassageList(BaseModel):
    items: list[PassageOut]
    limit: int
    offset: int


class DeleteResponse(BaseModel):
    deleted: int


class CorpusStats(BaseModel):
    collection: str
    store: str
    count: int
    dimension: int
    index_type: str | None
    metric_type: str | None
    model: str
    pooling: str
    max_tokens: int


class SearchRequest(BaseModel):
    prompt: str
    top_k: int = Field(5, ge=1, le=50)


class SearchMatch(BaseModel):
    id: int
    biz_id: str
    similarity: float
    content: str
    above_threshold: bool


class SearchResponse(BaseModel):
    threshold: float
    matches: list[SearchMatch]


def build_router() -> APIRouter:
    router = APIRouter(tags=["corpus"], responses=ERROR_RESPONSES)

    async def store_call(request: Request, method: str, *args, **kwargs):
        service = service_of(request)
        return await service.store_call(getattr(service.store, method), *args, **kwargs)

    @router.post("/v1/corpus", response_model=CorpusAddResponse)
    async def add_passages(request: Request, body: CorpusAddRequest) -> CorpusAddResponse:
        try:
            passages = [make_passage(p.model_dump()) for p in body.items()]
        except InvalidPassage as exc:
            raise PromptError(str(exc)) from None
        service = service_of(request)
        writer = CorpusWriter(service.batcher.embedder, service.store)  # ingest.py's code path
        result = await service.store_call(writer.add, passages)
        return CorpusAddResponse(
            ids=result.ids, duplicate=result.duplicate, inserted=result.inserted, skipped=result.skipped
        )

    @router.get("/v1/corpus/stats", response_model=CorpusStats)
    async def corpus_stats(request: Request) -> CorpusStats:
        stats = await store_call(request, "stats")
        info = service_of(request).batcher.embedder.info
        return CorpusStats(**stats, model=info.model, pooling=info.pooling, max_tokens=info.max_length)

    @router.get("/v1/corpus/{passage_id}", response_model=PassageOut, responses={404: {"description": "No such passage."}})
    async def get_passage(request: Request, passage_id: int):
        rows = await store_call(request, "get", [passage_id])
        if not rows:
            return error_response(404, "not_found", f"no passage with id {passage_id}")
        return PassageOut(**rows[0])

    @router.get("/v1/corpus", response_model=PassageList)
    async def list_passages(
        request: Request,
        biz_id: str | None = Query(None, max_length=MAX_BIZ_ID_CHARS, pattern=BIZ_ID_PATTERN),
        limit: int = Query(20, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=QUERY_WINDOW - 1),
    ) -> PassageList:
        if offset + limit > QUERY_WINDOW:
            raise PromptError(f"offset + limit must not exceed {QUERY_WINDOW}")
        rows = await store_call(request, "list", biz_id=biz_id, limit=limit, offset=offset)
        return PassageList(items=[PassageOut(**r) for r in rows], limit=limit, offset=offset)

    @router.delete("/v1/corpus/{passage_id}", response_model=DeleteResponse, responses={404: {"description": "No such passage."}})
    async def delete_passage(request: Request, passage_id: int):
        deleted = await store_call(request, "delete", ids=[passage_id])
        if not deleted:
            return error_response(404, "not_found", f"no passage with id {passage_id}")
        return DeleteResponse(deleted=deleted)

    @router.delete("/v1/corpus", response_model=DeleteResponse)
    async def delete_by_biz_id(
        request: Request, biz_id: str = Query(..., min_length=1, max_length=MAX_BIZ_ID_CHARS, pattern=BIZ_ID_PATTERN)
    ):
        return DeleteResponse(deleted=await store_call(request, "delete", biz_id=biz_id))

    @router.post("/v1/search", response_model=SearchResponse)
    async def search(request: Request, body: SearchRequest) -> SearchResponse:
        service = service_of(request)
        prompt = service.check_prompt(body.prompt)
        vector = await service.batcher.embed_query(prompt)
        matches = await store_call(request, "search", vector, body.top_k)
        return SearchResponse(
            threshold=service.threshold,
            matches=[
                SearchMatch(
                    id=m.id, biz_id=m.biz_id, similarity=m.similarity, content=m.content,
                    above_threshold=m.similarity >= service.threshold,
                )
                for m in matches
            ],
        )

    return router

