"""What resolving a report does besides deciding its status: relabel it, delete the served entry, or
promote a better passage. Each store call goes through its own domain's link."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from writing.core.corpus import CorpusWriter, make_passage
from writing.core.links import StoreLinks
from writing.core.models import CURATED, GENERATED, Passage
from writing.core.ports import ReviewedAnswers, ReviewedCorpus
from writing.core.reports import LabelledPair, Report
from writing.errors import InvalidRequest


@dataclass(frozen=True)
class Resolution:
    """An admin's decision on a report (``POST /v1/feedback/{id}/resolve``)."""

    action: str  # delete_entry | block | dismiss | promote | relabel
    content: str | None = None  # promote: the passage that should answer the prompt
    biz_id: str | None = None  # promote: its biz_id
    expected_biz_id: str | None = None  # relabel a curated report: the biz_id that should answer (None: none)
    label: str | None = None  # relabel a generated report: same | different


def relabel_pair(report: Report, resolution: Resolution, actor: str) -> tuple[LabelledPair, bool]:
    """The pair a relabel adds to the evaluation set, and whether the served entry was right after all."""
    if report.tier == CURATED:
        expected = resolution.expected_biz_id.strip() if resolution.expected_biz_id else ""
        label = "answer" if expected else "none"
        right = bool(expected) and expected == report.matched
    elif report.tier == GENERATED:
        if resolution.label is None:
            raise InvalidRequest("relabel of a generated hit needs 'label': same or different")
        expected, label, right = report.matched, resolution.label, resolution.label == "same"
    else:
        raise InvalidRequest("relabel needs a hit to label: the LLM answered this request")
    pair = LabelledPair(
        id=report.id,  # one label per report: relabelling again replaces it
        ts=int(time.time()),
        actor=actor,
        tier=report.tier,
        prompt=report.prompt,
        expected=expected,
        label=label,
        report_id=report.id,
    )
    return pair, right


async def entry_before_delete(
    links: StoreLinks, corpus: ReviewedCorpus, answers: ReviewedAnswers | None, report: Report
) -> dict:
    """The passage or stored answer the report is about, whole, as a delete would remove it: the journal's
    intent for undo (``{"passages": rows}`` or ``{"answers": rows}``, empty lists when it is gone)."""
    entry_id = report.entry_id
    if entry_id is None or report.tier not in (CURATED, GENERATED):
        raise InvalidRequest("this report names no stored entry (the LLM answered): nothing to delete")
    if report.tier == CURATED:
        return {"passages": await links.corpus.call(lambda: corpus.get_passages([entry_id]))}
    if answers is None:
        raise InvalidRequest("the answer cache is off (ANSWER_CACHE=false): there is no stored answer to delete")
    return {"answers": await links.answers.call(lambda: answers.export_rows(ids=[entry_id]))}


async def delete_entry(
    links: StoreLinks, corpus: ReviewedCorpus, answers: ReviewedAnswers | None, report: Report, before: dict
) -> dict:
    """Delete the passage or stored answer the report is about (``before``: ``entry_before_delete``);
    what was deleted."""
    entry_id = report.entry_id
    assert entry_id is not None  # entry_before_delete refused a report without one
    if "passages" in before:
        rows = before["passages"]
        deleted = await links.corpus.call(lambda: corpus.delete_passages(ids=[entry_id])) if rows else 0
        return {"deleted": rows, "count": deleted}
    assert answers is not None
    rows = before["answers"]
    removed = await links.answers.call(lambda: answers.delete_answer(entry_id)) if rows else False
    return {"deleted_answer": rows[0] if rows else None, "count": int(removed)}


def promoted_passage(resolution: Resolution) -> Passage:
    if resolution.content is None:
        raise InvalidRequest("promote needs 'content': the passage that should answer this prompt")
    return make_passage({"content": resolution.content, "biz_id": resolution.biz_id or ""})


async def promote(
    links: StoreLinks,
    corpus: ReviewedCorpus,
    writer: CorpusWriter,
    report: Report,
    vector: Sequence[float],
    passage: Passage,
) -> dict:
    """Add the better passage to the curated corpus, and make the reported prompt one of its retrieval
    keys, so that this prompt finds it from now on."""

    def add() -> dict:
        added = writer.add([passage])
        key_id = corpus.add_retrieval_key(added.ids[0], report.prompt, vector)
        return {"passage_id": added.ids[0], "duplicate": added.duplicate[0], "retrieval_key_id": key_id}

    return await links.corpus.call(add)
