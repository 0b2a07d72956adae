"""Tuning at run time, for admins: the thresholds in force (shared by every worker and replica, kept
across restarts, over the environment's defaults; ``writing.core.tuning``) and calibration runs over
the labelled pairs plus what feedback has taught since (``writing.core.calibration``, calibrate.py's measures)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Depends, Query, Request

from writing.api.auth import require_admin
from writing.api.deps import ChangesDep, CoreDep, SettingsDep, StoresDep, actor_of
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
from writing.core import calibration, evidence
from writing.core.corpus import chunks_by_tokens
from writing.core.tuning import ANSWER_TIER, CURATED_TIER, SETTING_NAMES, RuntimeThresholds
from writing.core.undo.service import ChangeLog
from writing.core.undo.thresholds import stored_values
from writing.errors import InvalidRequest
from writing.text import estimate_tokens
from writing.wiring import Stores, build_guard

ADMIN = [Depends(require_admin)]
MAX_KNOWN_VECTORS = 50_000  # calibration prompts' vectors kept between runs (~75 MB at 384 dims)


def thresholds_of(request: Request) -> RuntimeThresholds:
    return request.app.state.thresholds


async def refresh_thresholds(state) -> None:
    """Read the stored overrides and apply them (start-up, every RUNTIME_SETTINGS_REFRESH_INTERVAL, and
    right after this worker changed them)."""
    stored = await state.stores.links.settings.call(state.stores.runtime_settings.all)
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


async def begin_settings_change(
    stores: Stores, changes: ChangeLog, actor: str, action: str, target: str, leaves: dict[str, object]
) -> int:
    """Journal a settings change: the stored values before, and what the change leaves (None: removed)."""
    store = stores.runtime_settings
    before = await stores.links.settings.call(lambda: stored_values(store, list(leaves)))
    return await changes.begin(actor, action, target, {"stored_before": before, "leaves": leaves})


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
    async def put_thresholds(
        request: Request, stores: StoresDep, changes: ChangesDep, body: ThresholdUpdate
    ) -> Thresholds:
        state = request.app.state
        thresholds = thresholds_of(request)
        wanted = {CURATED_TIER: body.curated, ANSWER_TIER: body.answer}
        wanted = {tier: thresholds.check(tier, v) for tier, v in wanted.items() if v is not None}
        if ANSWER_TIER in wanted and stores.answers is None:
            raise InvalidRequest("the answer cache is off (ANSWER_CACHE=false): there is no answer threshold to set")
        before = _view(thresholds).model_dump()
        actor, target = actor_of(request), ",".join(wanted)
        leaves = {SETTING_NAMES[tier]: value for tier, value in wanted.items()}
        entry = await begin_settings_change(stores, changes, actor, "settings.threshold", target, leaves)

        def store() -> None:
            for tier, value in wanted.items():
                stores.runtime_settings.put(SETTING_NAMES[tier], value, actor)

        await stores.links.settings.call(store)
        await refresh_thresholds(state)
        after = _view(thresholds)
        detail = {"before": before, "set": wanted}
        await changes.finish(entry, actor, "settings.threshold", target, {"set": wanted}, detail)
        return after

    @router.delete(
        "/v1/settings/threshold",
        response_model=Thresholds,
        responses=error_responses(*ADMIN_STATUSES),
        summary="Back to the environment's threshold (one tier, or both).",
    )
    async def reset_thresholds(
        request: Request,
        stores: StoresDep,
        changes: ChangesDep,
        tier: str | None = Query(None, pattern="^(curated|answer)$"),
    ) -> Thresholds:
        state = request.app.state
        tiers = [tier] if tier else list(SETTING_NAMES)
        before = _view(thresholds_of(request)).model_dump()
        actor, target = actor_of(request), ",".join(tiers)
        leaves = {SETTING_NAMES[t]: None for t in tiers}
        entry = await begin_settings_change(stores, changes, actor, "settings.threshold_reset", target, leaves)

        def remove() -> list[str]:
            return [t for t in tiers if stores.runtime_settings.remove(SETTING_NAMES[t])]

        removed = await stores.links.settings.call(remove)
        await refresh_thresholds(state)
        outcome = {"removed": removed}
        await changes.finish(entry, actor, "settings.threshold_reset", target, outcome, {"before": before})
        return _view(thresholds_of(request))

    @router.post(
        "/v1/calibration/runs",
        response_model=CalibrationResult,
        responses=error_responses(*ADMIN_STATUSES),
        summary="Measure precision and hit rate per threshold on the labelled pairs plus feedback; recommend.",
    )
    async def run_calibration(
        request: Request, stores: StoresDep, core: CoreDep, settings: SettingsDep, body: CalibrationRequest
    ) -> CalibrationResult:
        state = request.app.state
        batcher = state.batcher

        def load() -> tuple[list, list[dict]]:
            pairs = calibration.load_pairs(Path(settings.calibration_pairs))
            answer_path = Path(settings.calibration_answer_pairs)
            answer_pairs = calibration.load_answer_pairs(answer_path) if answer_path.exists() else []
            return pairs, answer_pairs

        learned = evidence.Evidence()
        try:
            pairs, answer_pairs = await asyncio.to_thread(load)
            if body.include_feedback:  # the records' domain: read only when asked for
                learned = await stores.links.records.call(lambda: _learned(stores))
                pairs += [calibration.parse_pair(json.dumps(p, ensure_ascii=False), 0) for p in learned.curated]
                answer_pairs += learned.answers
        except calibration.PairsError as exc:
            raise InvalidRequest(f"the labelled pairs cannot be read: {exc}") from None

        embedder, store = batcher.embedder, stores.corpus
        known: dict[str, np.ndarray] = state.calibration_vectors  # the labelled files' prompts, embedded once

        def embed(texts: list[str]):
            missing = [t for t in dict.fromkeys(texts) if t not in known]
            if missing:
                if len(known) + len(missing) > MAX_KNOWN_VECTORS:
                    known.clear()
                # admin work: low priority on the embedding queue, a chunk at a time between prompts
                for idx in chunks_by_tokens(missing, state.settings.embedding_admin_chunk_tokens):
                    part = [missing[i] for i in idx]
                    cost = sum(estimate_tokens(t) for t in part)
                    vectors = batcher.run_blocking(lambda part=part: embedder.embed_queries(part), cost)
                    known.update(zip(part, vectors, strict=True))
            return np.stack([known[t] for t in texts])

        def top1(vectors):
            return [(m[0].similarity, m[0].biz_id, m[0].content) if m else None for m in store.search_many(vectors, 1)]

        def run() -> list:
            guard = core.judge.guard or build_guard()  # the service's own keeps its analyses of stored texts
            return calibration.live_tiers(embed, top1, guard, pairs, answer_pairs, body.target_precision)

        reports = await stores.links.corpus.call(run)
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
                labelled=len(pairs) + len(answer_pairs) - learned.confirmed - learned.relabelled,
                feedback=learned.confirmed,
                relabelled=learned.relabelled,
                open_reports=learned.open,
            ),
            tiers=tiers,
            current=current,
        )

    return router


def _learned(stores: Stores) -> evidence.Evidence:
    """The pairs that count as evidence (``writing.core.evidence``: confirmed reports and relabels; open
    reports counted apart), read on a worker thread through the records' link."""
    return evidence.gather(stores.feedback, stores.labels.iter_pairs)
