"""FastAPI app of the retrieval-first writing service.

``create_app(settings)`` builds an app; the lifespan builds the embedder, the vector store and the LLM
client from those settings and puts them on ``app.state``. Importing this module is cheap: the
module-level ``app`` (for ``uvicorn app:app``) reads its settings from the environment at start-up.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from embedding_batcher import EmbeddingQueueFull
from http_common import (
    ERROR_RESPONSES,
    answer_headers,
    build_answer_request,
    error_response,
    service_of,
)
from metrics import Metrics
from middleware import RequestContextMiddleware
from milvus_server import VectorStoreError
from schemas import GenerateRequest, GenerateResponse, MatchInfo
from service import PromptError, VectorStoreUnavailable
from settings import Settings, load_settings
from vllm_client import Delta, LLMError

logger = logging.getLogger("writing")

OUR_LOGGERS = ("writing", "service", "embedding", "embedding_batcher", "milvus_server", "vllm_client", "answer_cache")


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)


async def build_components(app: FastAPI, settings: Settings) -> None:
    """Everything heavy: the model, the store connection, the LLM client."""
    from answer_cache import AnswerCache
    from components import build_batcher, build_embedder, build_llm, build_store
    from service import WritingService

    t0 = time.perf_counter()
    embedder = await asyncio.to_thread(build_embedder, settings)
    batcher = build_batcher(settings, embedder)
    app.state.batcher = batcher
    metrics: Metrics = app.state.metrics
    metrics.bind_batcher(
        lambda: batcher.queue_depth, lambda: batcher.stats.cache_hits, lambda: batcher.stats.cache_misses
    )
    store = build_store(settings)
    llm = build_llm(settings)
    app.state.store, app.state.llm = store, llm
    service = WritingService(
        batcher=batcher,
        store=store,
        llm=llm,
        threshold=settings.similarity_threshold,
        threshold_range=(settings.similarity_threshold_min, settings.similarity_threshold_max),
        max_prompt_chars=settings.max_prompt_chars,
        answer_cache=(
            AnswerCache(store, threshold=settings.answer_cache_threshold, ttl_seconds=settings.answer_cache_ttl)
            if settings.answer_cache
            else None
        ),
        shadow_mode=settings.shadow_mode,
        retrieve_long_prompts=settings.retrieve_long_prompts,
        fail_without_store=settings.on_vector_store_error == "fail",
        metrics=metrics,
        store_retry_interval=settings.milvus_retry_interval,
    )
    app.state.service = service
    try:
        await service.open_store()  # DimensionMismatch and StoreLocked propagate: start-up stops
    except VectorStoreError as exc:
        logger.warning("vector store unavailable at start-up, answering from the LLM until it returns: %s", exc)
    try:
        await llm.resolve_model()
    except LLMError as exc:
        logger.warning("LLM not reachable at start-up (%s); will retry per request", exc.code)
    logger.info(
        "ready in %.1fs: embedding=%s dim=%d device=%s dtype=%s store=%s collection=%s answer_cache=%s "
        "llm=%s model=%s threshold=%.2f shadow=%s auth=%s",
        time.perf_counter() - t0,
        embedder.info.model,
        embedder.dim,
        embedder.info.device,
        embedder.info.dtype,
        store.kind,
        store.collection,
        settings.answer_cache,
        llm.base_url,
        llm.model or "?",
        settings.similarity_threshold,
        settings.shadow_mode,
        bool(settings.api_key_list),
    )


async def close_components(app: FastAPI) -> None:
    state = app.state
    if getattr(state, "service", None) is not None:
        await state.service.close()
    if getattr(state, "llm", None) is not None:
        await state.llm.close()
    if getattr(state, "batcher", None) is not None:
        await asyncio.to_thread(state.batcher.close)
    if getattr(state, "store", None) is not None:
        await asyncio.to_thread(state.store.close)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.settings is None:
        app.state.settings = load_settings()
    settings: Settings = app.state.settings
    configure_logging(settings.log_level)
    app.state.started = int(time.time())
    app.state.middleware_config.update(
        max_body_bytes=settings.max_body_bytes, max_in_flight=settings.max_in_flight, api_keys=settings.api_key_list
    )
    try:
        await build_components(app, settings)
        # everything built at start-up lives as long as the process: keep it out of the cyclic GC's
        # full collections, which otherwise stall the loop and the batcher (~300 ms measured)
        gc.collect()
        gc.freeze()
        yield
    finally:
        await close_components(app)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PromptError)
    async def _prompt_error(request: Request, exc: PromptError) -> JSONResponse:
        return error_response(422, "invalid_request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where or 'request'}: {err.get('msg')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(LLMError)
    async def _llm_error(request: Request, exc: LLMError) -> JSONResponse:
        logger.error("request_id=%s LLM call failed: %s: %s", request.state.request_id, exc.code, exc)
        return error_response(exc.status_code, exc.code, exc.public_message)

    @app.exception_handler(EmbeddingQueueFull)
    async def _queue_full(request: Request, exc: EmbeddingQueueFull) -> JSONResponse:
        request.app.state.metrics.rejected.labels("embedding_queue_full").inc()
        return error_response(503, "overloaded", "the embedding queue is full; retry shortly", {"Retry-After": "1"})

    @app.exception_handler(VectorStoreUnavailable)
    @app.exception_handler(VectorStoreError)
    async def _store_down(request: Request, exc: Exception) -> JSONResponse:
        logger.error("request_id=%s vector store unavailable: %s", request.state.request_id, exc)
        return error_response(
            503, "vector_store_unavailable", "the vector store is unavailable; retry shortly", {"Retry-After": "5"}
        )



def add_core_routes(app: FastAPI) -> None:
    @app.get(
        "/generate",
        response_model=str,
        responses=ERROR_RESPONSES,
        summary="Retrieval-first text for a prompt (the body is a JSON string, as in the reference).",
    )
    async def generate(request: Request, prompt: str = Query(..., description="The writing prompt.")):
        answer = await service_of(request).answer(build_answer_request(request, prompt))
        return JSONResponse(content=answer.content, headers=answer_headers(answer))

    @app.post("/v1/generate", response_model=GenerateResponse, responses=ERROR_RESPONSES)
    async def generate_v1(request: Request, body: GenerateRequest):
        answer = await service_of(request).answer(build_answer_request(request, body.prompt, threshold=body.threshold))
        d = answer.decision
        payload = GenerateResponse(
            content=answer.content,
            source=answer.source,
            similarity=d.similarity,
            match=MatchInfo(id=d.match.id, biz_id=d.match.biz_id) if d.hit else None,
            model=answer.model,
            cache=d.status,
            match_source=d.match_source if d.hit else None,
        )
        return JSONResponse(content=payload.model_dump(), headers=answer_headers(answer))

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
            first = Delta("")
        request_id = request.state.request_id

        async def body() -> AsyncIterator[str]:
            n = 0
            try:
                if first.text:
                    n += 1
                    yield first.text
                async for delta in chunks:
                    if delta.text:
                        n += 1
                        yield delta.text
            except LLMError as exc:
                logger.error("request_id=%s /chat stream broke after %d chunks: %s: %s", request_id, n, exc.code, exc)
                yield f"\n[error] {exc.public_message}; the text above is incomplete\n"
            except asyncio.CancelledError:
                logger.info("request_id=%s /chat client went away after %d chunks; upstream cancelled", request_id, n)
                raise
            finally:
                await chunks.aclose()

        return StreamingResponse(body(), media_type="text/plain; charset=utf-8", headers={"X-Writing-Source": "llm"})


def add_ops_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process is alive (no auth).")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Model loaded, Milvus answers, the LLM answers /v1/models (no auth).",
        responses={503: {"description": "Something is down; the body names it."}},
    )
    async def readyz(request: Request):
        state = request.app.state
        checks: dict[str, str] = {"embedding_model": "ok" if getattr(state, "batcher", None) else "not loaded"}

        async def check_store() -> str:
            service = state.service
            if not await service.ensure_store():
                return "unavailable"
            try:
                await asyncio.wait_for(asyncio.to_thread(state.store.ping), 5)
            except (VectorStoreError, asyncio.TimeoutError) as exc:
                logger.warning("readyz: vector store: %s", exc)
                return "unavailable"
            return "ok"

        async def check_llm() -> str:
            try:
                await asyncio.wait_for(state.llm.list_models(), 5)
            except (LLMError, asyncio.TimeoutError) as exc:
                logger.warning("readyz: LLM: %s", exc)
                return "unavailable"
            return "ok"

        checks["vector_store"], checks["llm"] = await asyncio.gather(check_store(), check_llm())
        down = [name for name, value in checks.items() if value != "ok"]
        body = {"status": "ok" if not down else "unavailable", "checks": checks, "down": down}
        return JSONResponse(body, status_code=503 if down else 200)

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=PlainTextResponse,
        summary="Prometheus metrics.",
    )
    async def metrics(request: Request):
        return PlainTextResponse(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


def create_app(settings: Settings | None = None) -> FastAPI:
    import corpus_api
    import openai_api

    app = FastAPI(
        title="Retrieval-first writing service",
        version="1.0.0",
        description="Answers a writing prompt from a curated corpus when a passage is similar enough, "
        "otherwise from an LLM.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    # the middleware reads its limits from here once the lifespan knows the settings
    app.state.middleware_config = {"max_body_bytes": 256 * 1024, "max_in_flight": 256, "api_keys": []}
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics, config=app.state.middleware_config)
    install_error_handlers(app)
    add_core_routes(app)
    app.include_router(openai_api.build_router())
    app.include_router(corpus_api.build_router())
    add_ops_routes(app)
    return app


app = create_app()


def main() -> None:
    import uvicorn

    settings = load_settings()
    configure_logging(settings.log_level)
    if settings.workers > 1:  # a fresh app per worker process, each reading the environment
        uvicorn.run("app:app", host=settings.host, port=settings.port, workers=settings.workers,
                    log_level=settings.log_level.lower())
    else:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower())


if __name__ == "__main__":
    main()
