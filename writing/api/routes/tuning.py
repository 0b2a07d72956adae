"""Tuning at run time, for admins: the thresholds in force (shared by every worker and replica, kept
across restarts, over the environment's defaults; ``writing.core.tuning``) and calibration runs over
the labelled pairs plus what feedback has taught since (``writing.core.calibration``, calibrate.py's measures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Depends, Query, Request

from writing.api.auth import require_admin
from writing.api.deps import record_audit, service_of
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.console import (
    CalibrationRecommendation,
    CalibrationRequest,
    CalibrationResult,
    CalibrationRow,
    CalibrationSources,
    CalibrationTier,
    ThresholdOut,
    Thresholds,
    ThresholdUpdate,
)
from writing.core import calibration
from writing.core.guard import HitGuard
from writing.core.models import CURATED, GENERATED
from writing.core.tuning import ANSWER_TIER, CURATED_TIER, SETTING_NAMES, RuntimeThresholds
from writing.errors import InvalidRequest

ADMIN = [Depends(require_admin)]
MAX_KNOWN_VECTORS = 50_000  # calibration prompts' vectors kept between runs (~75 MB at 384 dims)


def thresholds_of(request: Request) -> RuntimeThresholds:
    return request.app.state.thresholds


async def refresh_thresholds(state) -> None:
    """Read the stored overrides and apply them (start-up, every RUNTIME_SETTINGS_REFRESH_INTERVAL, and
    right after this worker changed them)."""
    stored = await state.service.run_store_op(state.runtime_settings.all)
    state.thresholds.apply(stored)


def _view(thresholds: RuntimeThresholds) -> Thresholds:
    return Thresholds(**{tier: ThresholdOut(**vars(s)) for tier, s in thresholds.state().items()})


def _rows(report) -> list[CalibrationRow]:
    return [
        CalibrationRow(
            threshold=off.threshold,
            precision=off.precision,
            recall=off.recall,
            hit_rate=off.hit_rate,
            guarded_precision=on.precision,
            guarded_hit_rate=on.hit_rate,
        )
        for off, on in zip(report.rows_off, report.rows_on, strict=True)
    ]


def _recommendation(report, guarded: bool) -> CalibrationRecommendation:
    rec = report.rec_on if guarded else report.rec_off
    row = rec.row
    return CalibrationRecommendation(
        threshold=rec.threshold,
        precision=row.precision if row else None,
        hit_rate=row.hit_rate if row else None,
        recall=row.recall if row else None,
        guarded=guarded,
        message=rec.message,
    )


def build_router() -> APIRouter:
    router = APIRouter(tags=["tuning"], dependencies=ADMIN)

    @router.get("/v1/settings/threshold", response_model=Thresholds, responses=error_responses(*ADMIN_STATUSES))
    async def get_thresholds(request: Request) -> Thresholds:
        await refresh_thresholds(request.app.state)
        return _view(thresholds_of(request))

    @router.put(
        "/v1/settings/threshold",
        response_model=Thresholds,
        responses=error_responses(*ADMIN_STATUSES),
        summary="Set a threshold at run time: every worker and replica, until reset; survives restarts.",
    )
    async def put_thresholds(request: Request, body: ThresholdUpdate) -> Thresholds:
        state = request.app.state
        thresholds = thresholds_of(request)
        wanted = {CURATED_TIER: body.curated, ANSWER_TIER: body.answer}
        wanted = {tier: thresholds.check(tier, v) for tier, v in wanted.items() if v is not None}
        if ANSWER_TIER in wanted and service_of(request).answer_cache is None:
            raise InvalidRequest("the answer cache is off (ANSWER_CACHE=false): there is no answer threshold to set")
        before = _view(thresholds).model_dump()
        actor = request.state.caller.label

        def store() -> None:
            for tier, value in wanted.items():
                state.runtime_settings.put(SETTING_NAMES[tier], value, actor)

        await service_of(request).run_store_op(store)
        await refresh_thresholds(state)
        after = _view(thresholds)
        await record_audit(request, "settings.threshold", ",".join(wanted), {"before": before, "set": wanted})
        return after

    @router.delete(
        "/v1/settings/threshold",
        response_model=Thresholds,
        responses=error_responses(*ADMIN_STATUSES),
        summary="Back to the environment's threshold (one tier, or both).",
    )
    async def reset_thresholds(
        request: Request, tier: str | None = Query(None, pattern="^(curated|answer)$")
    ) -> Thresholds:
        state = request.app.state
        tiers = [tier] if tier else list(SETTING_NAMES)
        before = _view(thresholds_of(request)).model_dump()

        def remove() -> list[str]:
            return [t for t in tiers if state.runtime_settings.remove(SETTING_NAMES[t])]

        removed = await service_of(request).run_store_op(remove)
        await refresh_thresholds(state)
        if removed:
            await record_audit(request, "settings.threshold_reset", ",".join(removed), {"before": before})
        return _view(thresholds_of(request))

    @router.post(
        "/v1/calibration/runs",
        response_model=CalibrationResult,
        responses=error_responses(*ADMIN_STATUSES),
        summary="Measure precision and hit rate per threshold on the labelled pairs plus feedback; recommend.",
    )
    async def run_calibration(request: Request, body: CalibrationRequest) -> CalibrationResult:
        state = request.app.state
        settings, service, batcher = state.settings, service_of(request), state.batcher

        def load() -> tuple[list, list[dict], int, int]:
            pairs = calibration.load_pairs(Path(settings.calibration_pairs))
            answer_path = Path(settings.calibration_answer_pairs)
            answer_pairs = calibration.load_answer_pairs(answer_path) if answer_path.exists() else []
            feedback = relabelled = 0
            if body.include_feedback:
                extra_curated, extra_answers, feedback, relabelled = _learned(state)
                pairs += [calibration.parse_pair(json.dumps(p, ensure_ascii=False), 0) for p in extra_curated]
                answer_pairs += extra_answers
            return pairs, answer_pairs, feedback, relabelled

        try:
            pairs, answer_pairs, feedback, relabelled = await service.run_store_op(load)
        except calibration.PairsError as exc:
            raise InvalidRequest(f"the labelled pairs cannot be read: {exc}") from None

        embedder, store = batcher.embedder, state.store
        known: dict[str, np.ndarray] = state.calibration_vectors  # the labelled files' prompts, embedded once

        def embed(texts: list[str]):
            missing = [t for t in dict.fromkeys(texts) if t not in known]
            if missing:
                vectors = batcher.run_blocking(lambda: embedder.embed_queries(missing))
                if len(known) + len(missing) > MAX_KNOWN_VECTORS:
                    known.clear()
                known.update(zip(missing, vectors, strict=True))
            return np.stack([known[t] for t in texts])

        def top1(vectors):
            return [(m[0].similarity, m[0].biz_id, m[0].content) if m else None for m in store.search_many(vectors, 1)]

        def run() -> list:
            guard = service.guard or HitGuard()  # the service's own keeps its analyses of stored texts
            return calibration.live_tiers(embed, top1, guard, pairs, answer_pairs, body.target_precision)

        reports = await service.run_store_op(run)
        guarded = settings.hit_guard == "on"
        tiers = [
            CalibrationTier(
                tier=r.name,
                setting=r.setting,
                prompts=r.rows_off[0].prompts if r.rows_off else 0,
                recommendation=_recommendation(r, guarded),
                rows=_rows(r),
            )
            for r in reports
        ]
        current = {t: s.value for t, s in thresholds_of(request).state().items()}
        return CalibrationResult(
            target_precision=body.target_precision,
            sources=CalibrationSources(
                labelled=len(pairs) + len(answer_pairs) - feedback - relabelled,
                feedback=feedback,
                relabelled=relabelled,
            ),
            tiers=tiers,
            current=current,
        )

    return router


def _learned(state) -> tuple[list[dict], list[dict], int, int]:
    """Pairs from feedback reports (open or confirmed) and from relabelling (blocking; a worker thread)."""
    from writing.adapters.milvus.records import CONFIRMED, OPEN

    feedback_rows: dict[int, tuple[str, dict]] = {}
    state.feedback_store.open(state.batcher.dim)
    for page in state.feedback_store.iter_reports(f'status in ["{OPEN}", "{CONFIRMED}"] and entry_id >= 0'):
        for r, _ in page:
            if r.tier in (CURATED, GENERATED):
                feedback_rows[r.id] = (r.tier, r.as_pair())
    relabelled: set[int] = set()
    for tier in (CURATED, GENERATED):
        for pair in state.labels.iter_pairs(tier):
            feedback_rows[pair.report_id] = (tier, pair.as_pair())  # a relabel replaces the report's own label
            relabelled.add(pair.report_id)
    curated = [row for tier, row in feedback_rows.values() if tier == CURATED]
    answers = [row for tier, row in feedback_rows.values() if tier == GENERATED]
    return curated, answers, len(feedback_rows) - len(relabelled), len(relabelled)
