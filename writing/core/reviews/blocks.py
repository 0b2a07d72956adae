"""The block a report puts in place, and the periodic reload of every blocking report into the blocklist."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from writing.core.feedback import Block, Blocklist
from writing.core.links import Link
from writing.core.ports import ReportRepository
from writing.core.reports import CONFIRMED, DISMISSED, Report

logger = logging.getLogger(__name__)


def block_of(report: Report, vector: Sequence[float] | np.ndarray) -> Block | None:
    """The block a report puts in place: wrong hits only; the tenant's until confirmed, everyone's after."""
    if report.verdict != "wrong" or report.entry_id is None or report.status == DISMISSED:
        return None
    tenant = None if report.status == CONFIRMED else report.tenant
    return Block(report.id, report.tier, report.entry_id, np.asarray(vector, dtype=np.float32), tenant)


def apply_block(blocklist: Blocklist, report: Report, vector: Sequence[float] | np.ndarray | None) -> Block | None:
    """Put the report's block in place at once on this worker, or lift an earlier one (a changed verdict,
    a dismissal); ``vector`` None: the report blocks nothing (a prompt known by its hash only)."""
    block = block_of(report, vector) if vector is not None else None
    if block is not None:
        blocklist.add(block)
    else:
        blocklist.remove(report.id)
    return block


async def refresh_blocklist(link: Link, feedback: ReportRepository, blocklist: Blocklist) -> int:
    """Reload every blocking report (reports made on other workers, admin decisions) through the
    records link; returns how many blocks were loaded."""
    started = time.monotonic()
    blocks = await link.call(lambda: [b for r, v in feedback.blocking() if (b := block_of(r, v)) is not None])
    before = len(blocklist)
    blocklist.replace(blocks, loaded_since=started)
    if len(blocklist) != before:
        logger.info("blocklist reloaded: %d blocks (was %d)", len(blocklist), before)
    return len(blocks)
