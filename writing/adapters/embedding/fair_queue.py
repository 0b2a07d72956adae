"""Whose text the embedding model runs next (pure logic): fair queuing over tokens, by flow.

A *flow* is whoever pays for the model time: an API key (tenants are keys), a client address in open
mode, or the admin work (imports, re-embeds, calibration). Every item carries a *cost* in tokens (an
estimate made before tokenizing: ``writing.text.estimate_tokens``), so a key that sends long prompts pays for them.

The order is self-clocked fair queuing (SCFQ, Golestani 1994), the cheap form of weighted fair queuing:
an item's tag is ``max(V, the tag of its flow's previous item) + cost / weight``, where ``V`` (the
virtual time) is the tag of the item taken last, and the smallest tag goes first. So a flow that has a
backlog has its next items tagged far ahead, while a flow that was idle starts at ``V`` (no credit is
saved up while idle) and is served next: a key's load raises its own latency, not others'. A flow
with a backlog still gets every turn nobody else wants (work conserving), and, between backlogged
flows, model time in proportion to their weights. Admin work runs as one flow with a low weight.

``take`` builds one batch: items in tag order, of similar cost (a short prompt never waits for a long
one's forward pass in the same batch), within an item and a token budget, leaving out flows the caller
says are busy (the batcher keeps each flow off at least one of its workers). Not thread-safe: the
batcher holds a lock around every call.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

# a batch holds items whose cost is at most this many times its cheapest item's (see the module doc);
# the floor lets short prompts of different lengths share a pass
SIMILAR_COST = 4
SIMILAR_FLOOR = 64


class QueueFull(Exception):
    """The queue holds ``capacity`` items already."""


@dataclass
class _Item(Generic[T]):
    value: T
    cost: int
    tag: float


@dataclass
class _Flow(Generic[T]):
    weight: float
    items: deque = field(default_factory=deque)
    last_tag: float = 0.0


class FairQueue(Generic[T]):
    """Items by flow, taken in fair order (see the module doc). Bounded: ``put`` beyond ``capacity`` items,
    or beyond half of them for one flow, raises QueueFull."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.flow_capacity = max(1, capacity // 2)
        self.virtual_time = 0.0
        self._flows: dict[str, _Flow[T]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def queued(self, flow: str) -> int:
        f = self._flows.get(flow)
        return len(f.items) if f is not None else 0

    def ready(self, busy: frozenset[str] | set[str] = frozenset()) -> bool:
        """Whether ``take`` with this ``busy`` set would take something."""
        return any(f.items and name not in busy for name, f in self._flows.items())

    def put(self, value: T, flow: str, cost: int, weight: float = 1.0) -> float:
        """Queue ``value`` for ``flow``; returns its tag. ``weight`` is the flow's share relative to others
        (1 for a caller); it is the flow's from its first item until it has nothing queued."""
        if self._size >= self.capacity:
            raise QueueFull(f"{self._size} items are queued")
        if self.queued(flow) >= self.flow_capacity:  # one flow cannot fill the queue for everyone
            raise QueueFull(f"{flow} has {self.flow_capacity} items queued")
        if weight <= 0:
            raise ValueError("weight must be positive")
        f = self._flows.get(flow)
        if f is None:
            f = self._flows[flow] = _Flow(weight)
        tag = max(self.virtual_time, f.last_tag) + max(cost, 1) / f.weight
        f.last_tag = tag
        f.items.append(_Item(value, max(cost, 1), tag))
        self._size += 1
        return tag

    def take(
        self,
        max_items: int,
        max_cost: int,
        busy: frozenset[str] | set[str] = frozenset(),
        single: frozenset[str] | set[str] = frozenset(),
    ) -> list[tuple[str, T]]:
        """The next batch, in tag order: (flow, value) pairs. Items of flows in ``busy`` are left; an item
        of a flow in ``single`` is a batch alone (other work, not a prompt). The first item is always taken
        (whatever its cost); the rest only while they fit ``max_items`` and ``max_cost`` and cost at most
        ``SIMILAR_COST`` times the cheapest (or ``SIMILAR_FLOOR``). Empty when nothing may be taken."""
        out: list[tuple[str, T]] = []
        total, cheapest = 0, 0
        skipped: set[str] = set(busy)
        while len(out) < max_items:
            name = self._next_flow(skipped)
            if name is None:
                break
            f = self._flows[name]
            head: _Item[T] = f.items[0]
            if out:
                similar = head.cost <= max(SIMILAR_COST * cheapest, SIMILAR_FLOOR)
                if name in single or total + head.cost > max_cost or not similar:
                    skipped.add(name)  # its flow waits for another batch; later flows may still fit
                    continue
            f.items.popleft()
            self._size -= 1
            self.virtual_time = max(self.virtual_time, head.tag)
            out.append((name, head.value))
            total += head.cost
            cheapest = head.cost if len(out) == 1 else min(cheapest, head.cost)
            if not f.items:
                self._forget_if_idle(name)
            if name in single:
                break
        return out

    def drain(self) -> list[T]:
        """Everything queued, in no particular order; the queue is empty afterwards."""
        out = [item.value for f in self._flows.values() for item in f.items]
        self._flows.clear()
        self._size = 0
        return out

    def _next_flow(self, skipped: set[str]) -> str | None:
        best: tuple[float, str] | None = None
        for name, f in self._flows.items():
            if f.items and name not in skipped and (best is None or f.items[0].tag < best[0]):
                best = (f.items[0].tag, name)
        return best[1] if best is not None else None

    def _forget_if_idle(self, name: str) -> None:
        """A flow with nothing queued keeps its last tag only while it is ahead of the virtual time (it
        would start there anyway); forgetting it keeps the table as small as the flows with work."""
        f = self._flows[name]
        if not f.items and f.last_tag <= self.virtual_time:
            del self._flows[name]
