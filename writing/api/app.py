"""The FastAPI app: ``create_app(settings)``, its lifespan, and ``main()`` for ``python app.py``.

The lifespan builds the embedder, the vector store and the LLM client from the settings
(``writing.wiring``) and puts them on ``app.state``; creating the app is cheap, so the module-level
``app`` of ``app.py`` (for ``uvicorn app:app``) reads its settings from the environment at start-up.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from writing import __version__
from writing.api.auth import KeyRing, is_loopback
from writing.api.errors import install_error_handlers
from writing.api.lane import AnsweringLane
from writing.api.middleware import RequestContextMiddleware
from writing.api.openapi import openapi_with_limits
from writing.api.proxy import TrustedProxies
from writing.api.routes import (
    answers,
    audit,
    budget,
    console,
    corpus,
    docs,
    explain,
    feedback,
    generate,
    openai,
    ops,
    stats,
    tuning,
)
from writing.api.routes.ops import Readiness
from writing.api.routes.tuning import refresh_thresholds
from writing.core.budget.service import BudgetService
from writing.core.budget.verifier import OUTCOMES
from writing.core.corpus import CorpusWriter
from writing.core.feedback import Blocklist, FeedbackTokens
from writing.core.jobs import Jobs
from writing.core.links import StoreLinks
from writing.core.reviews import RateLimiter, Reviews, refresh_blocklist
from writing.errors import LLMError, VectorStoreError
from writing.observability.history import StatsHistory
from writing.observability.logs import configure_logging
from writing.observability.metrics import Metrics
from writing.settings import Settings, load_settings

logger = logging.getLogger(__name__)


async def build_components(app: FastAPI, settings: Settings) -> None:
    """Everything heavy: the model, the store connections, the LLM client; then the periodic jobs."""
    from writing import wiring

    t0 = time.perf_counter()
    state = app.state
    embedder = await asyncio.to_thread(wiring.build_embedder, settings)
    batcher = wiring.build_batcher(settings, embedder)
    state.batcher = batcher
    metrics: Metrics = state.metrics
    metrics.bind_batcher(lambda: batcher.queue_depth, lambda: batcher.stats)
    store = wiring.build_store(settings)
    llm = wiring.build_llm(settings)
    state.llm = llm
    stores = state.stores = wiring.build_stores(settings, store, batcher.dim, metrics)
    blocklist = Blocklist(settings.feedback_block_similarity)
    jobs = state.jobs = Jobs()
    core = state.core = wiring.build_core(
        settings,
        encoder=batcher,
        stores=stores,
        llm=llm,
        metrics=metrics,
        jobs=jobs,
        blocklist=blocklist,
        fits=wiring.window_check(settings, embedder),
    )
    if core.exact is not None:  # the stores' threads hand their changes to this loop
        core.exact.index.bind(asyncio.get_running_loop())
    if core.judge.guard is not None:
        await asyncio.to_thread(core.judge.guard.warm)
    state.readiness = Readiness(
        state,
        interval=settings.readiness_probe_interval,
        ready_when_llm_down=settings.ready_when_llm_down,
        metrics=metrics,
    )
    state.thresholds = wiring.build_thresholds(settings, core.curated, core.answers)
    state.calibration_vectors = {}  # prompt -> vector, for repeated calibration runs
    state.stats_history = StatsHistory(
        metrics, interval=settings.stats_history_interval, points=settings.stats_history_points
    )
    state.feedback_tokens = FeedbackTokens(settings.feedback_key())
    writer = CorpusWriter(
        embedder, stores.corpus, run_model=batcher.run_blocking, chunk_tokens=settings.embedding_admin_chunk_tokens
    )
    state.changes, state.undoer = wiring.build_undo(
        settings,
        stores,
        writer=writer,
        encoder=batcher,
        refresh_thresholds=lambda: refresh_thresholds(state),
        blocklist=blocklist,
    )
    state.budget = build_budget(state, settings)
    state.reviews = Reviews(
        links=stores.links,
        reports=stores.feedback,
        labels=stores.labels,
        audit=stores.audit,
        blocklist=blocklist,
        tokens=state.feedback_tokens,
        limiter=RateLimiter(settings.feedback_rate_per_minute),
        encoder=batcher,
        corpus=stores.corpus,
        answers=stores.answers,
        writer=writer,
        changes=state.changes,
        on_report=lambda verdict, tier, band: metrics.feedback_reports.labels(verdict, tier, band).inc(),
    )
    await open_stores(stores.links)
    try:
        await refresh_thresholds(state)  # an admin's run-time thresholds outlive restarts
    except VectorStoreError as exc:
        logger.warning("run-time thresholds not read at start-up (the environment's apply until then): %s", exc)
    try:
        await llm.resolve_model()
    except LLMError as exc:
        logger.warning("LLM not reachable at start-up (%s); will retry per request", exc.code)
    if core.answers is not None:
        answers = core.answers
        jobs.every(settings.answer_cache_maintenance_interval, lambda: answers.maintain(metrics), "answer cache upkeep")
    if core.exact is not None and core.exact_sync is not None:  # filled in the background, then reloaded
        metrics.bind_exact(core.exact.index.sizes)
        refresh = settings.exact_refresh_interval if settings.milvus_uri else 0.0  # Lite: one process
        jobs.spawn(core.exact_sync.run(refresh, settings.milvus_retry_interval))
        if not await core.exact_sync.wait_filled():  # a large store goes on loading in the background
            logger.info("exact index: still loading in the background")
    jobs.every(
        settings.feedback_refresh_interval,
        lambda: refresh_blocklist(stores.links.records, stores.feedback, blocklist),
        "blocklist refresh",
    )
    jobs.every(settings.runtime_settings_refresh_interval, lambda: refresh_thresholds(state), "threshold refresh")
    keeper = state.budget.keeper
    if keeper is not None:
        jobs.every(settings.error_budget_interval, keeper.replan, "error budget")
        try:
            await keeper.replan()
        except VectorStoreError as exc:
            logger.warning("error budget not planned at start-up (the configured thresholds apply): %s", exc)
    if state.budget.verifier is not None:
        jobs.spawn(state.budget.verifier.run())
    jobs.every(settings.stats_history_interval, state.stats_history.sample, "stats history")
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
        "keys" if settings.auth_enabled else "none (admin routes: loopback only)",
    )


def build_budget(state, settings: Settings) -> BudgetService:
    """Verification (VERIFY) and the error budget's keeper (ERROR_BUDGET_*), each only when switched on."""
    from writing import wiring

    core, stores, metrics = state.core, state.stores, state.metrics
    verifier = None
    if settings.verify:
        verifier = wiring.build_verifier(settings, stores, state.llm, core.judge, core.answering)
        core.answering.observers.append(verifier.observe)
        metrics.bind_verifier(lambda: verifier.outcomes, OUTCOMES)
    keeper = wiring.build_keeper(
        settings, stores, thresholds=state.thresholds, judge=core.judge, verifier=verifier, metrics=metrics
    )
    return BudgetService(
        keeper=keeper, verifier=verifier, evidence=stores.evidence, link=stores.links.records, changes=state.changes
    )


async def open_stores(links: StoreLinks) -> None:
    """Connect every domain. The corpus's configuration errors (DimensionMismatch, StoreLocked) stop
    start-up; a domain that is merely unreachable is retried later, on its own."""
    try:
        await links.corpus.open()
    except VectorStoreError as exc:
        logger.warning("vector store unavailable at start-up, answering from the LLM until it returns: %s", exc)
    for link in (links.answers, links.records, links.settings):
        try:
            await link.open()
        except VectorStoreError as exc:
            if link is links.answers:
                link.failed()  # retried after MILVUS_RETRY_INTERVAL, not by the first request
            logger.warning("%s unavailable at start-up, retried later: %s", link.name, exc)


async def close_components(app: FastAPI) -> None:
    state = app.state
    if getattr(state, "jobs", None) is not None:
        await state.jobs.close()
    if getattr(state, "core", None) is not None:
        await state.core.answering.close()
        if state.core.answers is not None:  # after the last request: its hits are counted
            await state.core.answers.flush_hits()
    if getattr(state, "llm", None) is not None:
        await state.llm.close()
    if getattr(state, "batcher", None) is not None:
        await asyncio.to_thread(state.batcher.close)
    if getattr(state, "stores", None) is not None:
        await asyncio.to_thread(state.stores.close)


def warn_if_open(settings: Settings) -> None:
    """Without keys anyone who reaches the port is a caller: say so when it is reachable from elsewhere."""
    if not settings.auth_enabled and not is_loopback(settings.host):
        logger.warning(
            "no API_KEYS or ADMIN_API_KEYS are set and HOST=%s listens beyond loopback: any client can use "
            "the answering routes and choose its tenant with X-Tenant (admin routes still answer loopback "
            "clients only). Set API_KEYS and ADMIN_API_KEYS before exposing the service.",
            settings.host,
        )
    if settings.forwarded_allow_ips and not settings.feedback_secret.get_secret_value():
        logger.warning(
            "behind a proxy (FORWARDED_ALLOW_IPS) without FEEDBACK_SECRET: a feedback token made by one replica "
            "is accepted by another only while both have the same keys; set one FEEDBACK_SECRET for all replicas"
        )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.settings is None:
        app.state.settings = load_settings()
    settings: Settings = app.state.settings
    configure_logging(settings.log_level)
    app.state.started = int(time.time())
    app.state.middleware_config.update(
        max_body_bytes=settings.max_body_bytes,
        max_in_flight=settings.max_in_flight,
        max_in_flight_share=settings.max_in_flight_share,
        body_read_timeout=settings.body_read_timeout,
        stream_stall_timeout=settings.stream_stall_timeout,
        keyring=KeyRing(settings.caller_keys, settings.admin_keys, settings.metrics_keys),
        trusted_hosts=frozenset(h.lower() for h in settings.trusted_hosts),
        proxies=TrustedProxies(settings.trusted_proxies),
    )
    warn_if_open(settings)
    try:
        await build_components(app, settings)
        # everything built at start-up lives as long as the process: keep it out of the cyclic GC's
        # full collections, which otherwise stall the loop and the batcher (~300 ms measured)
        gc.collect()
        gc.freeze()
        yield
    finally:
        await close_components(app)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Retrieval-first writing service",
        version=__version__,
        description="Answers a writing prompt from a curated corpus when a passage is similar enough, "
        "otherwise from an LLM.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from writing.api.routes.docs: self-hosted, under a CSP
        redoc_url=None,
        # FastAPI's own OpenTelemetry bridge looks up three global providers on every request (~3% of a
        # hit's loop time); the service reports through /metrics and its logs instead
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    # the middleware reads its limits from here once the lifespan knows the settings
    app.state.middleware_config = {"max_body_bytes": 256 * 1024, "max_in_flight": 256, "keyring": KeyRing([], [])}
    app.add_middleware(AnsweringLane)  # inside: the answering routes' well-formed requests skip FastAPI's routing
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics, config=app.state.middleware_config)
    install_error_handlers(app)
    app.openapi = openapi_with_limits(app)  # the settings' limits, stated in the schema
    surfaces = (generate, openai, corpus, explain, answers, feedback, audit, tuning, budget, stats, ops, console, docs)
    for surface in surfaces:
        app.include_router(surface.build_router())
    return app


def main() -> None:
    from writing.api.server import serve  # uvicorn, bounded (issue 25): imported only to serve

    settings = load_settings()
    configure_logging(settings.log_level)
    if settings.workers > 1:  # a fresh app per worker process, each reading the environment
        serve("app:app", settings, workers=settings.workers)
    else:
        serve(create_app(settings), settings)
