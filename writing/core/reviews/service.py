"""Feedback as a core service: callers report a wrong (or good) answer, admins confirm, dismiss, resolve,
relabel and export. The HTTP routes (``writing.api.routes.feedback``) make one call each.

Every store call goes through its own failure domain's link (``writing.core.links``): reports, labels
and the audit log through ``links.records``, the curated corpus through ``links.corpus``, the stored
answers through ``links.answers``; so a failing records store fails a review (503) and nothing else.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from writing.core.corpus import CorpusWriter
from writing.core.feedback import TOKEN_PROMPT_CHARS, Blocklist, FeedbackTokens, InvalidToken, similarity_band
from writing.core.links import StoreLinks
from writing.core.ports import (
    AuditTrail,
    LabelRepository,
    QueryEncoder,
    ReportRepository,
    ReviewedAnswers,
    ReviewedCorpus,
)
from writing.core.reports import CONFIRMED, DISMISSED, OPEN, LabelledPair, Report, new_report_id
from writing.core.reviews.actions import (
    Resolution,
    delete_entry,
    entry_before_delete,
    promote,
    promoted_passage,
    relabel_pair,
)
from writing.core.reviews.blocks import apply_block
from writing.core.reviews.limits import RateLimiter
from writing.core.undo.service import ChangeLog
from writing.errors import Conflict, InvalidRequest, NotFound, TooManyRequests

DECISIONS = ("feedback.confirm", "feedback.dismiss", "feedback.block")  # status changes alone
# resolutions that change another store as well (the corpus, the answers, the labels)
RESOLUTIONS = ("feedback.delete_entry", "feedback.promote", "feedback.relabel")

logger = logging.getLogger(__name__)
EXPORT_PAGE = 1000  # reports per store call while exporting


@dataclass(frozen=True)
class Reporter:
    """Who reports: the tenant the answer was for, the caller's label, and what the rate limit counts."""

    tenant: str
    actor: str
    limit_key: str  # the API key's id, or the client's address without keys


@dataclass(frozen=True)
class Ack:
    report_id: int
    tier: str
    blocked_for: str  # "tenant" | "nobody"


@dataclass(frozen=True)
class Resolved:
    report: Report
    action: str
    detail: dict


def public(report: Report) -> dict:
    """A report as the API and the audit log show it (its prompt hash is internal)."""
    out = dataclasses.asdict(report)
    del out["prompt_hash"]
    return out


class Reviews:
    def __init__(
        self,
        *,
        links: StoreLinks,
        reports: ReportRepository,
        labels: LabelRepository,
        audit: AuditTrail,
        blocklist: Blocklist,
        tokens: FeedbackTokens,
        limiter: RateLimiter,
        encoder: QueryEncoder,
        corpus: ReviewedCorpus,
        answers: ReviewedAnswers | None,
        writer: CorpusWriter,
        on_report: Callable[[str, str, str], None] | None = None,
        changes: ChangeLog | None = None,
    ) -> None:
        self.links = links
        self.reports = reports
        self.labels = labels
        self.audit = audit
        self.blocklist = blocklist
        self.tokens = tokens
        self.limiter = limiter
        self.encoder = encoder
        self.corpus = corpus
        self.answers = answers
        self.writer = writer
        self.on_report = on_report  # (verdict, tier, similarity band): counted in metrics
        self.changes = changes  # the undo journal (None: audited only, as in the unit tests)

    # -- callers --------------------------------------------------------------------------------------------
    async def report(self, reporter: Reporter, request_id: str, token: str, verdict: str, note: str | None) -> Ack:
        """Record a report on an answer this tenant was served; a wrong hit stops being served for that
        prompt to the tenant at once. One report per request and tenant: a retry replaces it (a changed
        verdict is audited) while it is open; once an admin has decided it, Conflict (409)."""
        if not self.limiter.allow(reporter.limit_key):
            raise TooManyRequests(
                f"at most {self.limiter.per_minute} feedback reports a minute per key "
                "(FEEDBACK_RATE_PER_MINUTE); retry later"
            )
        try:
            served = self.tokens.verify(token)
        except InvalidToken as exc:
            raise InvalidRequest(f"token: {exc}; send the X-Feedback-Token of the answer you report") from None
        if served.request_id != request_id or served.tenant != reporter.tenant:
            raise NotFound(f"no answer with request id {request_id} for your tenant")
        previous = await self.links.records.call(lambda: self.reports.find(served.tenant, served.request_id))
        rid = previous.id if previous is not None else new_report_id()
        if previous is not None and previous.status != OPEN:  # an admin's decision is not the caller's to undo
            raise Conflict(f"report {rid} was {previous.status} by an admin; it can no longer be changed")
        query = await self.encoder.embed_query(served.prompt, reporter.limit_key)
        entry = Report(
            id=rid,
            ts=int(time.time()),
            request_id=served.request_id,
            tenant=served.tenant,
            actor=reporter.actor,
            tier=served.tier,
            entry_id=served.entry_id,
            similarity=served.similarity,
            verdict=verdict,
            note=note or "",
            prompt=served.prompt,
            prompt_hash=served.prompt_hash,
            matched=served.matched,
            status=OPEN,
        )
        await self.links.records.call(lambda: self.reports.save(entry, query.vector))
        if previous is not None and previous.verdict != verdict:  # a caller changed its open report: audited
            await self._audit(
                reporter.actor, "feedback.verdict", str(rid), {"before": previous.verdict, "after": verdict}
            )
        # a prompt longer than the token carries is known by its hash only: its report blocks nothing
        complete = len(served.prompt) < TOKEN_PROMPT_CHARS
        block = apply_block(self.blocklist, entry, query.vector if complete else None)
        logger.debug("feedback report %d: %s on a %s answer", entry.id, verdict, served.tier)
        if self.on_report is not None:
            self.on_report(verdict, served.tier, similarity_band(served.similarity))
        return Ack(entry.id, served.tier, "tenant" if block is not None else "nobody")

    # -- admins ---------------------------------------------------------------------------------------------
    async def list_reports(
        self,
        *,
        status: str | None = None,
        tier: str | None = None,
        verdict: str | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> tuple[list[Report], int | None]:
        return await self.links.records.call(
            lambda: self.reports.list_reports(status=status, tier=tier, verdict=verdict, after=after, limit=limit)
        )

    async def confirm(self, rid: int, actor: str) -> Report:
        """The entry stops being served for that prompt to every tenant."""
        return await self.set_status(rid, CONFIRMED, actor)

    async def dismiss(self, rid: int, actor: str) -> Report:
        """Any block the report put in place is lifted."""
        return await self.set_status(rid, DISMISSED, actor)

    async def set_status(self, rid: int, status: str, actor: str) -> Report:
        """Change a report's status (confirm, dismiss), apply its block (or lift it) here at once, and audit
        it; journaled for undo: the status before, then the outcome."""
        action = "feedback.confirm" if status == CONFIRMED else "feedback.dismiss"
        entry = None
        if self.changes is not None:
            found = await self.links.records.call(lambda: self.reports.get(rid))
            if found is None:
                raise NotFound(f"no feedback report with id {rid}")
            intent = {"report": rid, "status_before": found[0].status, "status": status}
            entry = await self.changes.begin(actor, action, str(rid), intent)
        return await self._decide(rid, status, actor, action, {}, entry)

    async def _decide(
        self,
        rid: int,
        status: str,
        actor: str,
        action: str,
        detail: dict,
        entry: int | None,
        outcome: dict | None = None,
    ) -> Report:
        """Store the report's new status, apply its block, and audit (or finish the journal entry)."""

        def update() -> tuple[Report, list[float]] | None:
            found = self.reports.get(rid)
            if found is None:
                return None
            report, vector = found
            changed = dataclasses.replace(report, status=status)
            self.reports.save(changed, vector)
            return changed, vector

        done = await self.links.records.call(update)
        if done is None:
            raise NotFound(f"no feedback report with id {rid}")
        changed, vector = done
        apply_block(self.blocklist, changed, vector)
        audit_detail = {"report": public(changed), **detail}
        if entry is None or self.changes is None:
            await self._audit(actor, action, str(rid), audit_detail)
        else:
            await self.changes.finish(
                entry, actor, action, str(rid), {"status": status, **(outcome or {})}, audit_detail
            )
        return changed

    async def resolve(self, rid: int, resolution: Resolution, actor: str) -> Resolved:
        """Delete the served entry, block it, dismiss the report, promote a better passage, or relabel;
        every action but dismiss (and a relabel that finds the entry right) confirms the report. Journaled
        for undo with what reverses it: the status before, and the deleted entry, the promoted passage (and
        whether it was stored before) or the label the relabel replaced."""
        found = await self.links.records.call(lambda: self.reports.get(rid))
        if found is None:
            raise NotFound(f"no feedback report with id {rid}")
        report, vector = found
        action = f"feedback.{resolution.action}"
        status = CONFIRMED
        before: dict = {}  # what reverses the resolution's change to another store
        pair = passage = None
        if resolution.action == "dismiss":
            status = DISMISSED
        elif resolution.action == "delete_entry":
            before = await entry_before_delete(self.links, self.corpus, self.answers, report)
        elif resolution.action == "promote":
            passage = promoted_passage(resolution)
            h = passage.content_hash
            existing = await self.links.corpus.call(lambda: self.corpus.ids_by_hash([h]))
            before = {"passage": {"content": passage.content, "biz_id": passage.biz_id}, "prompt": report.prompt}
            before["existing"] = existing.get(h)
        elif resolution.action == "relabel":
            pair, right = relabel_pair(report, resolution, actor)
            previous = await self.links.records.call(lambda: self.labels.get(pair.id))
            status = DISMISSED if right else CONFIRMED
            before = {"label": dataclasses.asdict(pair)}
            before["label_before"] = dataclasses.asdict(previous) if previous is not None else None
        elif resolution.action != "block":
            raise InvalidRequest(f"unknown action {resolution.action!r}")
        entry = None
        if self.changes is not None:
            intent = {"report": rid, "status_before": report.status, "status": status, **before}
            entry = await self.changes.begin(actor, action, str(rid), intent)
        detail: dict = {}
        if resolution.action == "delete_entry":
            detail = await delete_entry(self.links, self.corpus, self.answers, report, before)
        elif passage is not None:
            detail = await promote(self.links, self.corpus, self.writer, report, vector, passage)
        elif pair is not None:
            saved = pair
            await self.links.records.call(lambda: self.labels.save(saved))
            detail = {"label_id": pair.id, "pair": pair.as_pair()}
        outcome = {k: v for k, v in detail.items() if k not in ("deleted", "deleted_answer", "pair")}
        changed = await self._decide(rid, status, actor, action, detail, entry, outcome)
        return Resolved(changed, resolution.action, detail)

    async def list_labels(
        self, *, tier: str | None = None, after: int = 0, limit: int = 50
    ) -> tuple[list[LabelledPair], int | None]:
        return await self.links.records.call(lambda: self.labels.list_pairs(tier=tier, after=after, limit=limit))

    async def delete_label(self, label_id: int, actor: str) -> None:
        """Delete a labelled pair; journaled (the whole pair) for undo when there is a journal."""
        pair = await self.links.records.call(lambda: self.labels.get(label_id))
        if pair is None:
            raise NotFound(f"no labelled pair with id {label_id}")
        whole = dataclasses.asdict(pair)
        entry = None
        if self.changes is not None:
            entry = await self.changes.begin(actor, "labels.delete", str(label_id), {"label": whole})
        if not await self.links.records.call(lambda: self.labels.delete(label_id)):
            raise NotFound(f"no labelled pair with id {label_id}")
        if entry is None:
            await self._audit(actor, "labels.delete", str(label_id), {"label": whole})
        else:
            await self.changes.finish(entry, actor, "labels.delete", str(label_id), {"deleted": 1}, {"label": whole})

    async def export(self, tier: str) -> AsyncIterator[dict]:
        """The tier's open and confirmed reports as labelled pairs (``Report.as_pair``), fetched one page
        at a time. The first page is read here, so a store that is down fails the call (503) before
        anything is sent; the rest are read as the pairs are consumed."""
        first = await self._export_page(tier, 0)
        return self._pairs(tier, first)

    async def _export_page(self, tier: str, after: int) -> tuple[list[Report], int | None]:
        return await self.links.records.call(
            lambda: self.reports.report_page(tier=tier, statuses=(OPEN, CONFIRMED), after=after, limit=EXPORT_PAGE)
        )

    async def _pairs(self, tier: str, page: tuple[list[Report], int | None]) -> AsyncIterator[dict]:
        items, cursor = page
        while True:
            for r in items:
                yield r.as_pair()
            if cursor is None:
                return
            items, cursor = await self._export_page(tier, cursor)

    async def _audit(self, actor: str, action: str, target: str, detail: dict) -> None:
        await self.links.records.call(lambda: self.audit.record(actor, action, target, detail))
