"""The model's load names its OS thread for the load only: threads started meanwhile keep the name (so
the tokenizer's and OpenMP's threads count as the model's), the loading thread gets its own back."""

from __future__ import annotations

import _thread
import sys
import threading

import pytest

from writing.adapters.embedding.os_thread import os_thread_name, os_thread_named

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OS thread names are Linux's here")


def comm(native_id: int) -> str:
    with open(f"/proc/self/task/{native_id}/comm") as f:
        return f.read().strip()


def test_threads_started_during_the_load_keep_its_name_and_the_loader_gets_its_own_back():
    seen: dict[str, str] = {}
    release = threading.Event()

    def loader() -> None:
        before = os_thread_name()
        with os_thread_named("embed-load"):
            assert os_thread_name() == "embed-load"
            # a bare thread, as the tokenizer's and OpenMP's are (threading may name its own for the OS)
            started = threading.Event()
            child_id: list[int] = []

            def child() -> None:
                child_id.append(threading.get_native_id())
                started.set()
                release.wait()

            _thread.start_new_thread(child, ())
            started.wait(10)
            seen["child"] = comm(child_id[0])
        seen["before"], seen["after"] = before, os_thread_name()
        release.set()

    t = threading.Thread(target=loader)
    t.start()
    t.join(10)
    assert seen["child"] == "embed-load"
    assert seen["after"] == seen["before"] and seen["before"] != "embed-load"


def test_the_name_comes_back_when_the_load_fails():
    before = os_thread_name()
    with pytest.raises(RuntimeError), os_thread_named("embed-load"):
        raise RuntimeError("the model did not load")
    assert os_thread_name() == before
