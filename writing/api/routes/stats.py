"""``GET /v1/stats/history``: this worker's recent metrics as points over time (admins; the console's
stats page). ``writing.observability.history`` samples the Prometheus registry; ``/metrics`` remains
the source for fleet-wide dashboards."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from writing.api.auth import require_admin
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.console import StatsHistoryOut


def build_router() -> APIRouter:
    router = APIRouter(tags=["stats"], dependencies=[Depends(require_admin)])

    @router.get(
        "/v1/stats/history",
        response_model=StatsHistoryOut,
        responses=error_responses(*ADMIN_STATUSES),
        summary="Hit rate per tier, latency percentiles per stage, rejections, LLM calls and tokens avoided.",
    )
    async def history(
        request: Request, minutes: float = Query(60, gt=0, le=7 * 24 * 60, description="How far back.")
    ) -> StatsHistoryOut:
        return StatsHistoryOut(**request.app.state.stats_history.view(minutes))

    return router
