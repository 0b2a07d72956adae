"""Who the client is behind a proxy: ``X-Forwarded-For`` trusted from the proxies in ``FORWARDED_ALLOW_IPS`` only.

Behind a load balancer every connection comes from the proxy. The client's address (the fair share of
model time and slots without keys, the feedback limit, logs) is then the proxy's ``X-Forwarded-For``:
read from the right, the first address that is not a trusted proxy. A peer that is not a trusted proxy
is its own client, whatever it sends (a forged header changes nothing). Applied by the request
middleware, so ``python app.py`` and ``uvicorn app:app`` behave alike (``python app.py`` turns uvicorn's
own proxy handling off; see docs/deployment.md for ``uvicorn app:app``).

With no keys set, loopback clients are admins. A request that a proxy relays carries a forwarding header:
it is never taken as loopback then (``forwarded``), so an open service put behind a proxy by mistake
does not hand admin routes to the world. Behind a declared proxy keys are required (start-up refuses).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from writing.settings import Network

FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    def trusts(self, host: str | None) -> bool:
        if not host or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def client(self, peer: tuple | None, headers: dict[str, str]) -> tuple | None:
        """The client of a request from ``peer`` (host, port): the peer itself, or when it is a trusted
        proxy the right-most address of ``X-Forwarded-For`` that is not one (port 0)."""
        if peer is None or not self.trusts(peer[0]):
            return peer
        chain = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
        if not chain:
            return peer
        for address in reversed(chain):
            if not self.trusts(address):
                return (address, 0)
        return (chain[0], 0)  # every hop is a trusted proxy: the first one is the client


def forwarded(headers: dict[str, str]) -> bool:
    """Whether a proxy relayed this request (it names a client of its own)."""
    return any(h in headers for h in FORWARDING_HEADERS)
