"""The exact tier's index alone (``writing.core.exact``) and its reloads (``writing.core.exact_sync``):
keys, removals, a reload that must not undo this worker's own changes, changes reported from threads."""

from __future__ import annotations

import asyncio
import threading

from tests.support.fakes import InMemoryAnswers, InMemoryCorpus
from writing.core.exact import ANSWERS, CORPUS, KEY_HASH_CHARS, ExactAnswer, ExactIndex, ExactRow
from writing.core.exact_sync import ExactSync
from writing.core.links import Link
from writing.text import content_hash

H = content_hash("写一首关于春天的诗")


def answer(i: int, prompt_hash: str = H, tenant: str = "t", model: str = "m", context: str = "c") -> ExactAnswer:
    return ExactAnswer(i, prompt_hash, tenant, model, context, (), 10, 0, f"答案{i}")


def test_answers_are_found_under_their_whole_key_only():
    index = ExactIndex()
    entries = index.answer_entries
    entries.add([answer(1), answer(2), answer(3, tenant="other"), answer(4, context="c2")])
    assert [a.id for a in index.answers(H, "t", "m", "c")] == [1, 2]
    assert [a.id for a in index.answers(H, "other", "m", "c")] == [3]
    assert index.answers(H, "t", "m2", "c") == () and index.answers(content_hash("别的"), "t", "m", "c") == ()
    entries.remove([1, 99])
    assert [a.id for a in index.answers(H, "t", "m", "c")] == [2]
    entries.remove([2])
    assert index.answers(H, "t", "m", "c") == () and index.sizes()["answers"] == 2


def test_a_passage_is_found_by_its_text_and_by_its_retrieval_keys():
    index = ExactIndex()
    text, prompt = "春天的诗。", "写一首关于春天的诗"
    index.corpus_entries.add(
        [
            ExactRow(1, content_hash(text)[:KEY_HASH_CHARS], 1, "b1", text),
            ExactRow(2, content_hash(prompt)[:KEY_HASH_CHARS], 1),  # a key of passage 1
            ExactRow(3, content_hash(prompt)[:KEY_HASH_CHARS], 7),  # a key of a passage not (yet) loaded
        ]
    )
    assert [(p.id, via_key) for p, via_key in index.curated(content_hash(text))] == [(1, False)]
    assert [(p.id, p.content, via_key) for p, via_key in index.curated(content_hash(prompt))] == [(1, text, True)]
    assert index.sizes() == {"answers": 0, "passages": 1, "retrieval_keys": 2}
    index.corpus_entries.remove([2])
    assert index.curated(content_hash(prompt)) == []
    index.corpus_entries.add([ExactRow(4, content_hash(text)[:KEY_HASH_CHARS], 1)])  # a key equal to the text
    assert [(p.id, via_key) for p, via_key in index.curated(content_hash(text))] == [(1, False)]


async def test_a_reload_keeps_what_this_worker_changed_meanwhile():
    store = InMemoryAnswers()
    index = ExactIndex()
    index.bind(asyncio.get_running_loop())
    entries = index.answer_entries
    entries.add([answer(1), answer(2)])
    since = entries.begin()
    entries.add([answer(3)])  # written here while the reload reads: the reload did not see it
    entries.remove([2])  # deleted here while the reload reads: the reload still saw it
    entries.reconcile_removed({1, 2}, since)
    entries.reconcile_added([answer(2)], since)
    entries.end()
    assert sorted(entries.ids()) == [1, 3]
    assert entries.changed == {} and store.calls == 0


async def test_changes_reported_from_a_thread_apply_on_the_loop_before_the_caller_resumes():
    index = ExactIndex()
    index.bind(asyncio.get_running_loop())
    watcher = index.watcher(ANSWERS)
    applied_in: list[str] = []
    original = index.answer_entries.put

    def put(rows):
        applied_in.append(threading.current_thread().name)
        original(rows)

    index.answer_entries.put = put

    def store_write() -> None:  # what an adapter does in Link.call's worker thread
        watcher.added([answer(5)])

    await asyncio.to_thread(store_write)
    assert index.answer_entries.ids() == {5}  # already there when the awaiting caller resumes
    assert applied_in == [threading.main_thread().name]


async def test_sync_fills_then_brings_other_workers_changes():
    corpus, answers = InMemoryCorpus(), InMemoryAnswers()
    first = corpus.add("一段春天的文字。", "b1", quiet=True)
    corpus.add("一段秋天的文字。", "b2", quiet=True)
    index = ExactIndex()
    links = [Link(n, lambda: None, retry_interval=1) for n in ("corpus", "answers")]
    sync = ExactSync(index, [(CORPUS, corpus, links[0]), (ANSWERS, answers, links[1])])
    assert await sync.sync_all() and index.filled == {ANSWERS: True, CORPUS: True}
    assert index.sizes()["passages"] == 2
    # another worker: adds a passage and a retrieval key, deletes one (this worker is not told)
    third = corpus.add("一段冬天的文字。", "b3", quiet=True)
    corpus.add_key(third, "写冬天", quiet=True)
    corpus.remove(first, quiet=True)
    assert index.curated(content_hash("写冬天")) == []
    assert await sync.sync_all()
    assert [p.id for p, _ in index.curated(content_hash("写冬天"))] == [third]
    assert index.curated(content_hash("一段春天的文字。")) == []
    assert index.sizes() == {"answers": 0, "passages": 2, "retrieval_keys": 1}


async def test_a_store_that_is_down_is_reloaded_later_and_the_index_keeps_answering():
    corpus = InMemoryCorpus()
    corpus.add("一段春天的文字。", "b1", quiet=True)
    index = ExactIndex()
    sync = ExactSync(index, [(CORPUS, corpus, Link("corpus", lambda: None, retry_interval=0.01))])
    assert await sync.sync_all()
    corpus.down = True
    assert not await sync.sync_all()
    assert len(index.curated(content_hash("一段春天的文字。"))) == 1
    corpus.down = False
    await asyncio.sleep(0.02)
    assert await sync.sync_all()
