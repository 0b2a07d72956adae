"""Who the client is behind a proxy: ``X-Forwarded-For`` trusted from the proxies in ``FORWARDED_ALLOW_IPS`` only.

Behind a load balancer every connection comes from the proxy. The client's address (the fair share of
model time and slots without keys, the feedback limit, logs) is then the proxy's ``X-Forwarded-For``:
read from the right, the first address that is not a trusted proxy. A peer that is not a trusted proxy
is its own client, whatever it sends (a forged header changes nothing). Applied by the request
middleware, so ``python app.py`` and ``uvicorn app:app`` behave alike (``python app.py`` turns uvicorn's
own proxy handling off; see docs/deployment.md for ``uvicorn app:app``).

With no keys set, loopback clients are admins. A request that a proxy relays usually carries a forwarding
header: it is never taken as loopback then (``forwarded``), so an open service put behind such a proxy by
mistake does not hand admin routes to the world (a proxy that adds no header hides every client behind
its own address: no code can tell). Behind a declared proxy keys are required (start-up refuses).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from writing.settings import Network

FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def parse_address(entry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """One hop of ``X-Forwarded-For`` (or a peer): ``1.2.3.4``, ``1.2.3.4:5``, ``2001:db8::1``,
    ``[2001:db8::1]:443``; an IPv4-mapped IPv6 address as its IPv4 one; None when it is none of these."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1 : entry.find("]")] if "]" in entry else ""
    elif entry.count(":") == 1:  # an IPv4 address with a port
        entry = entry.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    def trusts(self, host: str | None) -> bool:
        address = parse_address(host) if host and self.networks else None
        return address is not None and any(address in net for net in self.networks)

    def client(self, peer: tuple | None, headers: dict[str, str]) -> tuple | None:
        """The client of a request from ``peer`` (host, port): the peer itself, or when it is a trusted
        proxy the right-most address of ``X-Forwarded-For`` that is not one (port 0). An entry that is no
        address ends the walk: the last trusted hop is the client then (what lies left of it is anyone's)."""
        if peer is None or not self.trusts(peer[0]):
            return peer
        chain = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
        last = peer
        for entry in reversed(chain):
            address = parse_address(entry)
            if address is None:
                return last
            last = (str(address), 0)
            if not self.trusts(entry):
                return last
        return last  # every hop is a trusted proxy: the first one is the client


def forwarded(headers: dict[str, str]) -> bool:
    """Whether a proxy relayed this request (it names a client of its own)."""
    return any(h in headers for h in FORWARDING_HEADERS)
