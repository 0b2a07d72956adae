"""Operations: ``/healthz`` (alive), ``/readyz`` (dependencies answer), ``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from writing.api.auth import require_admin
from writing.api.errors import error_responses
from writing.errors import LLMError, VectorStoreError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0


def build_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive (no auth).")
    async def healthz() -> dict:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Model loaded, Milvus answers, the LLM answers /v1/models (no auth).",
        responses={503: {"description": "Something is down; the body names it."}},
    )
    async def readyz(request: Request):
        state = request.app.state
        checks: dict[str, str] = {"embedding_model": "ok" if getattr(state, "batcher", None) else "not loaded"}

        async def check_store() -> str:
            if not await state.service.ensure_store():
                return "unavailable"
            try:
                await asyncio.wait_for(asyncio.to_thread(state.store.ping), PROBE_TIMEOUT)
            except (VectorStoreError, TimeoutError) as exc:
                logger.warning("readyz: vector store: %s", exc)
                return "unavailable"
            return "ok"

        async def check_llm() -> str:
            try:
                await asyncio.wait_for(state.llm.list_models(), PROBE_TIMEOUT)
            except (LLMError, TimeoutError) as exc:
                logger.warning("readyz: LLM: %s", exc)
                return "unavailable"
            return "ok"

        checks["vector_store"], checks["llm"] = await asyncio.gather(check_store(), check_llm())
        down = [name for name, value in checks.items() if value != "ok"]
        body = {"status": "ok" if not down else "unavailable", "checks": checks, "down": down}
        return JSONResponse(body, status_code=503 if down else 200)

    @router.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus metrics.",
        responses=error_responses(base=(401, 403, 413, 500)),
        dependencies=[Depends(require_admin)],
    )
    async def metrics(request: Request):
        return PlainTextResponse(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")

    return router
