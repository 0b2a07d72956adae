"""Operations: ``/healthz`` (alive), ``/readyz`` (dependencies answer), ``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from writing.api.auth import require_metrics
from writing.api.errors import error_responses
from writing.errors import LLMError, VectorStoreError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0


class Readiness:
    """``/readyz`` without amplification: Milvus and the LLM are probed at most once per
    ``READINESS_PROBE_INTERVAL`` (concurrent callers share one probe), and the answer is served from the
    last probe. Besides the LLM listing its models, the last completions must not all have failed (an LLM
    that lists models but fails every completion is not healthy).

    Ready means every request can be answered. With the LLM down, hits can still be served (``serves``
    says so) but misses get 502: the replica answers 503, unless ``READY_WHEN_LLM_DOWN`` is set, when it
    answers 200 with status ``degraded`` (for a fleet that shares one LLM, where taking every replica out
    would stop the hits too)."""

    def __init__(self, state, *, interval: float, ready_when_llm_down: bool, metrics) -> None:
        self.state = state
        self.interval = interval
        self.ready_when_llm_down = ready_when_llm_down
        self.metrics = metrics
        self._lock = asyncio.Lock()
        self._probed_at = -float("inf")
        self._probed: dict[str, str] = {}

    async def _probe_store(self) -> str:
        state = self.state
        if not await state.stores.links.corpus.ensure():
            return "unavailable"
        try:
            await asyncio.wait_for(asyncio.to_thread(state.stores.corpus.ping), PROBE_TIMEOUT)
        except (VectorStoreError, TimeoutError) as exc:
            logger.warning("readyz: vector store: %s", exc)
            return "unavailable"
        return "ok"

    async def _probe_llm(self) -> str:
        try:
            await asyncio.wait_for(self.state.llm.list_models(), PROBE_TIMEOUT)
        except (LLMError, TimeoutError) as exc:
            logger.warning("readyz: LLM: %s", exc.code if isinstance(exc, LLMError) else "timeout")
            return "unavailable"
        return "ok"

    async def _probes(self) -> tuple[dict[str, str], float]:
        async with self._lock:  # one probe at a time; who waited on it reads its result
            age = time.monotonic() - self._probed_at
            if age >= self.interval:
                store, llm = await asyncio.gather(self._probe_store(), self._probe_llm())
                self._probed = {"vector_store": store, "llm": llm}
                self._probed_at = time.monotonic()
                self.metrics.readiness_probes.inc()
                age = 0.0
            return dict(self._probed), age

    async def check(self) -> tuple[dict, bool]:
        state = self.state
        checks = {"embedding_model": "ok" if getattr(state, "batcher", None) else "not loaded"}
        probed, age = await self._probes()
        checks.update(probed)
        health = state.llm.health()
        if checks["llm"] == "ok" and health.failing:
            checks["llm"] = f"failing completions ({health.consecutive_failures} in a row)"
        self.metrics.llm_failing.set(1 if health.failing else 0)
        down = [name for name, value in checks.items() if value != "ok"]
        for name, value in checks.items():
            self.metrics.dependency_up.labels(name).set(1 if value == "ok" else 0)
        model_up, store_up, llm_up = (checks[k] == "ok" for k in ("embedding_model", "vector_store", "llm"))
        serves = {
            "hits": model_up and store_up,
            "misses": llm_up and (store_up or state.settings.on_vector_store_error == "llm"),
        }
        ready = not down or (down == ["llm"] and self.ready_when_llm_down)
        status = "ok" if not down else ("degraded" if ready else "unavailable")
        body = {
            "status": status,
            "checks": checks,
            "down": down,
            "serves": serves,
            "llm_completions": health.as_dict(),
            "probed_seconds_ago": round(age, 1),
        }
        return body, ready


def build_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive (no auth).")
    async def healthz() -> dict:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Model loaded, Milvus answers, the LLM answers and its completions succeed (no auth; cached).",
        responses={503: {"description": "Something is down; the body names it and says what can still be served."}},
    )
    async def readyz(request: Request):
        readiness: Readiness = request.app.state.readiness
        body, ready = await readiness.check()
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus metrics (admin and metrics keys).",
        responses=error_responses(base=(401, 403, 413, 500)),
        dependencies=[Depends(require_metrics)],
    )
    async def metrics(request: Request):
        return PlainTextResponse(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")

    return router
