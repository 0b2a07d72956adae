"""Load through a fleet's proxy, by three kinds of caller, each counting what it saw (tests/e2e/test_fleet.py
and bench/fleet.py).

- ``sdk``: the official ``openai`` SDK, non-streaming chat completions with its default retries (2, on a
  connection error, 408, 409, 429 and 5xx); it counts the retries it made (``x-stainless-retry-count``
  is sent by the SDK itself; the proxy's log counts them too).
- ``plain``: httpx, ``POST /v1/generate``: a failure is any status but 200 or a transport error.
- ``stream``: httpx, a streaming chat completion read to ``data: [DONE]``; one that ends without it, or
  with a transport error, failed visibly.

``plain`` and ``stream`` send a request again once, and only, when the proxy closed a reused keep-alive
connection before any response (``resend_once``): an nginx worker retired by a reload (a drain) closes
its idle client connections, and a request the client had just sent on one reaches no replica (nginx's
access log has no line for it). The SDK retries those too. Any status, a 502 from a killed replica
included, and any error after the response's head, count as failures.

Every caller alternates a hit (a corpus passage) and a miss (``Cache-Control: no-cache, no-store``: the
LLM is called, the request stays in flight for the LLM's delay, and nothing is stored). Threads, one per caller, each with its own client.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

KINDS = ("sdk", "plain", "stream")
MISS = {"Cache-Control": "no-cache, no-store"}


@dataclass
class Outcome:
    kind: str
    ok: bool
    started: float  # time.monotonic()
    seconds: float
    error: str = ""


@dataclass
class Tally:
    """What the callers of one kind saw."""

    requests: int = 0
    failed: int = 0
    retries: int = 0  # requests sent again: the SDK's own retries; plain and stream: resend_once's
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class FleetLoad:
    """``with FleetLoad(url, key, hits, sdk=2, plain=2, stream=1) as load: ...; tallies = load.tally()``."""

    def __init__(
        self,
        url: str,
        key: str,
        hits: Sequence[str],
        *,
        sdk: int = 2,
        plain: int = 2,
        stream: int = 1,
        misses: bool = True,
        timeout: float = 60,
    ) -> None:
        self.url = url
        self.key = key
        self.hits = list(hits)
        self.counts = {"sdk": sdk, "plain": plain, "stream": stream}
        self.misses = misses  # False: hits only
        self.timeout = timeout
        self.outcomes: list[Outcome] = []
        self.retries = dict.fromkeys(KINDS, 0)  # requests sent again, per kind (Tally.retries)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> FleetLoad:
        for kind, n in self.counts.items():
            for i in range(n):
                t = threading.Thread(target=self._run, args=(kind, i), name=f"load-{kind}-{i}", daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 30)
        self._threads.clear()

    def since(self, t0: float) -> list[Outcome]:
        """The requests that started at ``t0`` or later."""
        with self._lock:
            return [o for o in self.outcomes if o.started >= t0]

    def ended_since(self, t0: float) -> list[Outcome]:
        """The requests that ended at ``t0`` or later: those in flight at ``t0`` included (a kill's victims)."""
        with self._lock:
            return [o for o in self.outcomes if o.started + o.seconds >= t0]

    def tally(self, outcomes: Sequence[Outcome] | None = None) -> dict[str, Tally]:
        with self._lock:
            seen = list(self.outcomes if outcomes is None else outcomes)
            retries = dict(self.retries)
        out = {kind: Tally() for kind in KINDS}
        for o in seen:
            t = out[o.kind]
            t.requests += 1
            t.latencies.append(o.seconds)
            if not o.ok:
                t.failed += 1
                t.errors.append(o.error)
        for kind in KINDS:
            out[kind].retries = retries[kind]
        return out

    def wait_for(self, n: int, timeout: float = 60) -> None:
        """Until ``n`` more requests have finished."""
        with self._lock:
            goal = len(self.outcomes) + n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.outcomes) >= goal:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"fewer than {n} requests finished in {timeout} s")

    # -- the callers -----------------------------------------------------------------------------------
    def _prompts(self, kind: str, i: int):
        for n in itertools.count():
            yield self.hits[(n + i) % len(self.hits)], {}
            if self.misses:
                yield f"请写一段话，主题编号 {kind}-{i}-{n}-{uuid.uuid4().hex[:8]}", MISS

    def _run(self, kind: str, i: int) -> None:
        call = {"sdk": self._sdk_caller, "plain": self._plain_caller, "stream": self._stream_caller}[kind]()
        try:
            for prompt, headers in self._prompts(kind, i):
                if self._stop.is_set():
                    return
                t0 = time.monotonic()
                try:
                    error = call(prompt, headers)
                except Exception as exc:  # every failure is counted, whatever it is
                    error = f"{type(exc).__name__}: {exc}"[:200]
                with self._lock:
                    self.outcomes.append(Outcome(kind, not error, t0, time.monotonic() - t0, error))
        finally:
            close = getattr(call, "close", None)
            if close:
                close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def _sdk_caller(self):
        import openai

        load = self

        class Counting(httpx.Client):
            def send(self, request, **kwargs):  # the SDK marks a retry with x-stainless-retry-count > 0
                if request.headers.get("x-stainless-retry-count", "0") != "0":
                    with load._lock:
                        load.retries["sdk"] += 1
                return super().send(request, **kwargs)

        client = openai.OpenAI(
            base_url=f"{self.url}/v1",
            api_key=self.key,
            timeout=self.timeout,
            http_client=Counting(timeout=self.timeout),
        )

        def call(prompt: str, headers: dict) -> str:
            messages = [{"role": "user", "content": prompt}]
            done = client.chat.completions.create(model="any", messages=messages, extra_headers=headers)
            return "" if done.choices and done.choices[0].message.content else "an empty answer"

        call.close = client.close  # type: ignore[attr-defined]
        return call

    def resend_once(self, kind: str, client: httpx.Client, request: httpx.Request) -> httpx.Response:
        """``request``'s response, streamed (its head read, its body not yet): sent again, once, when the
        connection failed before the head arrived (see the module's docstring)."""
        try:
            return client.send(request, stream=True)
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            with self._lock:
                self.retries[kind] += 1
            return client.send(request, stream=True)

    def _plain_caller(self):
        client = httpx.Client(base_url=self.url, timeout=self.timeout, headers=self._headers())

        def call(prompt: str, headers: dict) -> str:
            request = client.build_request("POST", "/v1/generate", json={"prompt": prompt}, headers=headers)
            r = self.resend_once("plain", client, request)
            try:
                r.read()
            finally:
                r.close()
            return "" if r.status_code == 200 and r.json().get("content") else f"HTTP {r.status_code}"

        call.close = client.close  # type: ignore[attr-defined]
        return call

    def _stream_caller(self):
        client = httpx.Client(base_url=self.url, timeout=self.timeout, headers=self._headers())

        def call(prompt: str, headers: dict) -> str:
            body = {"model": "any", "stream": True, "messages": [{"role": "user", "content": prompt}]}
            request = client.build_request("POST", "/v1/chat/completions", json=body, headers=headers)
            r = self.resend_once("stream", client, request)
            try:
                if r.status_code != 200:
                    return f"HTTP {r.status_code}"
                lines = [line for line in r.iter_lines() if line.startswith("data: ")]
            finally:
                r.close()
            if not lines or lines[-1] != "data: [DONE]":
                return "the stream ended without [DONE]"
            for line in lines[:-1]:
                if "error" in json.loads(line[6:]):
                    return "an error event in the stream"
            return ""

        call.close = client.close  # type: ignore[attr-defined]
        return call


@dataclass
class FaultReport:
    """What the callers saw from a ``kill -9`` of one replica to its restart, and over a rolling restart."""

    killed: dict[str, Tally]
    rolled: dict[str, Tally]
    restart_seconds: list[float]  # per replica in the rolling restart
    proxy_retries: int  # requests nginx passed to a second replica (its access log)

    def lines(self) -> list[str]:
        out = []
        for label, tallies in (("kill -9, then restart", self.killed), ("rolling restart", self.rolled)):
            parts = [f"{k} {t.requests} requests / {t.failed} failed" for k, t in tallies.items()]
            sent_again = ", ".join(f"{k} {t.retries}" for k, t in tallies.items())
            out.append(f"{label}: " + ", ".join(parts) + f"; sent again: {sent_again}")
            for kind, t in tallies.items():
                out += [f"  {kind}: {e}" for e in sorted(set(t.errors))[:3]]
        out.append(f"rolling restart per replica: {', '.join(f'{s:.1f} s' for s in self.restart_seconds)}")
        out.append(f"retries by the proxy: {self.proxy_retries}")
        return out


def faults_under_load(fleet, key: str, hits: Sequence[str], *, sdk=3, plain=3, stream=2, kill=1) -> FaultReport:
    """Under load through ``fleet`` (``writing.devtools.fleet.Fleet``): ``kill -9`` replica ``kill``, let
    the load run on the others, start it again; then a rolling restart of every replica."""
    retries_before = fleet.access_log_retries()
    with FleetLoad(fleet.url, key, hits, sdk=sdk, plain=plain, stream=stream) as load:
        load.wait_for(40)
        retries_at_kill, t_kill = dict(load.retries), time.monotonic()
        fleet.kill(kill)
        load.wait_for(60)  # nginx marks it failed at its first error; the load carries on over the others
        fleet.start_replica(kill)
        load.wait_for(30)
        retries_at_roll, t_roll = dict(load.retries), time.monotonic()
        # every request that ended from the kill on, those in flight on the killed replica included
        killed = load.tally([o for o in load.ended_since(t_kill) if o.started + o.seconds < t_roll])
        took = fleet.rolling_restart()
        load.wait_for(30)
        rolled = load.tally(load.ended_since(t_roll))
        retries_end = dict(load.retries)
    for kind in KINDS:
        killed[kind].retries = retries_at_roll[kind] - retries_at_kill[kind]
        rolled[kind].retries = retries_end[kind] - retries_at_roll[kind]
    return FaultReport(killed, rolled, took, fleet.access_log_retries() - retries_before)
