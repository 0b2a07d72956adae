"""FastAPI app of the retrieval-first writing service.

``create_app(settings)`` builds an app; the lifespan builds the embedder, the vector store and the LLM
client from those settings and puts them on ``app.state``. Importing this module is cheap: the
module-level ``app`` (for ``uvicorn app:app``) reads its settings from the environment at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from embedding_batcher import EmbeddingQueueFull
from schemas import ErrorResponse, GenerateRequest, GenerateResponse, MatchInfo
from service import GenerationResult, PromptError, WritingService
from settings import Settings, load_settings
from vllm_client import LLMError

logger = logging.getLogger("writing")
access_logger = logging.getLogger("writing.access")

ERROR_RESPONSES = {
    422: {"model": ErrorResponse, "description": "The prompt is empty, blank or too long."},
    502: {"model": ErrorResponse, "description": "The LLM is unreachable or answered with an error."},
    503: {"model": ErrorResponse, "description": "Overloaded; retry after the Retry-After seconds."},
    504: {"model": ErrorResponse, "description": "The LLM did not answer within LLM_TIMEOUT."},
}


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"code": code, "message": message}}, headers=headers
    )


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("writing").setLevel(level)
    for name in ("service", "embedding", "embedding_batcher", "milvus_server", "vllm_client", "ingest"):
        logging.getLogger(name).setLevel(level)


async def build_components(app: FastAPI, settings: Settings) -> None:
    """Everything heavy: the model, the store connection, the LLM client."""
    from components import build_embedder, build_llm, build_store
    from embedding_batcher import EmbeddingBatcher
    from milvus_server import VectorStoreError

    t0 = time.perf_counter()
    embedder = await asyncio.to_thread(build_embedder, settings)
    batcher = EmbeddingBatcher(
        embedder,
        max_batch_size=settings.embedding_max_batch_size,
        max_wait_ms=settings.embedding_batch_wait_ms,
        queue_size=settings.embedding_queue_size,
        cache_size=settings.embedding_cache_size,
    )
    store = build_store(settings)
    llm = build_llm(settings)
    service = WritingService(
        batcher=batcher,
        store=store,
        llm=llm,
        threshold=settings.similarity_threshold,
        max_prompt_chars=settings.max_prompt_chars,
    )
    app.state.batcher, app.state.store, app.state.llm, app.state.service = batcher, store, llm, service
    try:
        await service.open_store()  # DimensionMismatch propagates: start-up stops
    except VectorStoreError as exc:
        logger.warning("vector store unavailable at start-up, answering from the LLM until it returns: %s", exc)
    try:
        await llm.resolve_model()
    except LLMError as exc:
        logger.warning("LLM not reachable at start-up (%s); will retry per request", exc.code)
    logger.info(
        "ready in %.1fs: embedding=%s dim=%d device=%s store=%s collection=%s llm=%s model=%s threshold=%.2f",
        time.perf_counter() - t0,
        embedder.info.model,
        embedder.dim,
        embedder.info.device,
        store.kind,
        store.collection,
        llm.base_url,
        llm.model or "?",
        settings.similarity_threshold,
    )


async def close_components(app: FastAPI) -> None:
    if getattr(app.state, "llm", None) is not None:
        await app.state.llm.close()
    if getattr(app.state, "batcher", None) is not None:
        await asyncio.to_thread(app.state.batcher.close)
    if getattr(app.state, "store", None) is not None:
        await asyncio.to_thread(app.state.store.close)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.settings is None:
        app.state.settings = load_settings()
    settings: Settings = app.state.settings
    configure_logging(settings.log_level)
    try:
        await build_components(app, settings)
        yield
    finally:
        await close_components(app)


def result_headers(result: GenerationResult) -> dict[str, str]:
    headers = {"X-Writing-Source": result.source}
    if result.similarity is not None:
        headers["X-Similarity"] = f"{result.similarity:.4f}"
    if result.match is not None and result.source == "milvus":
        headers["X-Match-Id"] = str(result.match.id)
    timing = result.timings.header()
    if timing:
        headers["Server-Timing"] = timing
    return headers


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Retrieval-first writing service",
        version="1.0.0",
        description="Answers a writing prompt from a curated corpus when a passage is similar enough, "
        "otherwise from an LLM.",
        lifespan=lifespan,
    )
    app.state.settings = settings

    # -- errors ------------------------------------------------------------------------------
    @app.exception_handler(PromptError)
    async def _prompt_error(request: Request, exc: PromptError) -> JSONResponse:
        return error_response(422, "invalid_prompt", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
            parts.append(f"{where or 'request'}: {err.get('msg')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(LLMError)
    async def _llm_error(request: Request, exc: LLMError) -> JSONResponse:
        logger.error("LLM call failed: %s: %s", exc.code, exc)
        return error_response(exc.status_code, exc.code, exc.public_message)

    @app.exception_handler(EmbeddingQueueFull)
    async def _queue_full(request: Request, exc: EmbeddingQueueFull) -> JSONResponse:
        return error_response(503, "overloaded", "the embedding queue is full; retry shortly", {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return error_response(500, "internal_error", "internal error")

    # -- access log and request id -------------------------------------------------------------
    @app.middleware("http")
    async def _access_log(request: Request, call_next):
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id
        t0 = time.perf_counter()
        status, response = 500, None
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            access_logger.info(
                "request_id=%s method=%s route=%s status=%s source=%s similarity=%s timing=%r total_ms=%.1f",
                request_id,
                request.method,
                request.url.path,
                status,
                response.headers.get("x-writing-source", "-") if response is not None else "-",
                response.headers.get("x-similarity", "-") if response is not None else "-",
                response.headers.get("server-timing", "") if response is not None else "",
                (time.perf_counter() - t0) * 1000,
            )
        response.headers["X-Request-ID"] = request_id
        return response

    # -- routes -----------------------------------------------------------------------------------
    def service_of(request: Request) -> WritingService:
        return request.app.state.service

    @app.get(
        "/generate",
        response_model=str,
        responses=ERROR_RESPONSES,
        summary="Retrieval-first text for a prompt (the body is a JSON string, as in the reference).",
    )
    async def generate(request: Request, prompt: str = Query(..., description="The writing prompt.")):
        result = await service_of(request).generate(prompt)
        return JSONResponse(content=result.content, headers=result_headers(result))

    @app.post("/v1/generate", response_model=GenerateResponse, responses=ERROR_RESPONSES)
    async def generate_v1(request: Request, body: GenerateRequest):
        result = await service_of(request).generate(body.prompt, body.threshold)
        payload = GenerateResponse(
            content=result.content,
            source=result.source,
            similarity=result.similarity,
            match=MatchInfo(id=result.match.id, biz_id=result.match.biz_id) if result.match and result.source == "milvus" else None,
            model=result.model,
        )
        return JSONResponse(content=payload.model_dump(), headers=result_headers(result))

    @app.get(
        "/chat",
        responses={200: {"content": {"text/plain": {}}}, **ERROR_RESPONSES},
        response_class=StreamingResponse,
        summary="Text streamed straight from the LLM as it is generated.",
    )
    async def chat(request: Request, prompt: str = Query(..., description="The writing prompt.")):
        chunks = service_of(request).chat_stream(prompt)
        # wait for the first chunk so that an LLM that is down gets a proper 502/504, not a 200
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            first = ""
        request_id = request.state.request_id

        async def body() -> AsyncIterator[str]:
            n = 0
            try:
                if first:
                    n += 1
                    yield first
                async for chunk in chunks:
                    n += 1
                    yield chunk
            except LLMError as exc:
                logger.error("request_id=%s /chat stream broke after %d chunks: %s: %s", request_id, n, exc.code, exc)
                yield f"\n[error] {exc.public_message}; the text above is incomplete\n"
            except asyncio.CancelledError:
                logger.info("request_id=%s /chat client went away after %d chunks; upstream cancelled", request_id, n)
                raise
            finally:
                await chunks.aclose()

        return StreamingResponse(body(), media_type="text/plain; charset=utf-8")

    return app


app = create_app()


def main() -> None:
    import uvicorn

    settings = load_settings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower())


if __name__ == "__main__":
    main()
