"""bench/server_floor.py's pure parts: perf's report read as shares by group, strace's summary as calls
per request, and the replayed answer."""

from __future__ import annotations

import asyncio
import base64

import pytest

from bench.server_floor import perf_split, replay_app, strace_counts

REPORT = """\
# Samples: 30K of event 'cpu-clock'
#
# Overhead  Shared Object
# ........  ..........................
#
    74.50%  libpython3.11.so.1.0
    13.40%  [kernel.kallsyms]
     4.40%  libc.so.6
     3.10%  libcrypto.so.3
     2.80%  loop.cpython-311-x86_64-linux-gnu.so
     0.60%  parser.cpython-311-x86_64-linux-gnu.so
     0.40%  url_parser.cpython-311-x86_64-linux-gnu.so
     0.20%  [vdso]
     0.60%  orjson.cpython-311-x86_64-linux-gnu.so
"""


def test_perf_report_is_read_as_shares_by_group():
    split = perf_split(REPORT)
    assert split == pytest.approx(
        {
            "python": 0.745,
            "kernel": 0.134,
            "libc": 0.046,
            "libcrypto": 0.031,
            "uvloop": 0.028,
            "httptools": 0.010,
            "other": 0.006,
        }  # fmt: skip
    )
    assert perf_split("# nothing sampled\n") == {}


def test_the_replay_answers_every_request_with_the_recorded_answer():
    answer = {"status": 200, "headers": [("x-cache", "HIT")], "body": base64.b64encode(b'{"a":1}').decode()}
    app, sent = replay_app(answer), []

    async def send(message):
        sent.append(message)

    async def run():
        for _ in range(2):
            await app({"type": "http", "method": "GET", "path": "/generate"}, None, send)

    asyncio.run(run())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"] * 2
    assert sent[0]["headers"] == [(b"x-cache", b"HIT")] and sent[1]["body"] == b'{"a":1}'


STRACE = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 61.20    0.051000          25      2000           write
 30.00    0.025000          12      2000        12 read
  8.80    0.007333          44       166           epoll_pwait
------ ----------- ----------- --------- --------- ----------------
100.00    0.083333          20      4166        12 total
"""


def test_strace_summary_is_read_as_calls_per_request():
    assert strace_counts(STRACE, 2000) == {"write": 1.0, "read": 1.0, "epoll_pwait": 0.083}
    assert list(strace_counts(STRACE, 2000)) == ["write", "read", "epoll_pwait"]
