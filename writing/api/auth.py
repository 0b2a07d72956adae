"""Who is calling: API keys, roles and tenants.

Three roles. A *caller* (a key of ``API_KEYS``) uses the answering routes, ``/v1/search`` and
``/v1/feedback``; an *admin* (a key of ``ADMIN_API_KEYS``) can do everything a caller can, plus manage
the corpus, stored answers and feedback, read the audit log and ``/metrics``; a *metrics reader* (a key
of ``METRICS_API_KEYS``: Prometheus) reads ``/metrics`` and nothing else. With keys configured a
caller's tenant comes from its key (``KEY:TENANT``, else one tenant per key) and ``X-Tenant`` is
honoured from admin keys only. With no keys at all every client is an anonymous caller whose tenant is
its ``X-Tenant``, and admin routes answer loopback clients only.

The middleware authenticates (401 when a key is needed and missing or wrong, before anything else is
read), and refuses a metrics key on any other path (403); the routes authorise with ``require_admin``
and ``require_metrics`` (403 naming the setting that grants the right).
Keys are compared in constant time and never logged; a key is known by its ``key_id`` (a short hash).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from writing.core.models import DEFAULT_TENANT
from writing.errors import Forbidden, InvalidRequest

CALLER, ADMIN, METRICS = "caller", "admin", "metrics"
METRICS_PATH = "/metrics"
X_TENANT_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def key_id_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Caller:
    role: str  # caller | admin | metrics
    key_id: str | None  # None: no keys are configured (anonymous)
    tenant: str | None  # the key's own tenant, when it names one
    loopback: bool

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def label(self) -> str:
        """Who did it, for the audit log: a key id, or where an anonymous request came from."""
        return self.key_id or ("loopback" if self.loopback else "anonymous")


@dataclass(frozen=True)
class _Key:
    secret: bytes
    role: str
    tenant: str | None
    key_id: str


class KeyRing:
    """The configured keys; ``authenticate`` finds a request's caller or returns None (401)."""

    def __init__(
        self, caller_keys: list[tuple[str, str | None]], admin_keys: list[str], metrics_keys: Sequence[str] = ()
    ) -> None:
        self._keys = [_Key(k.encode("utf-8"), CALLER, t, key_id_of(k)) for k, t in caller_keys]
        self._keys += [_Key(k.encode("utf-8"), ADMIN, None, key_id_of(k)) for k in admin_keys]
        self._keys += [_Key(k.encode("utf-8"), METRICS, None, key_id_of(k)) for k in metrics_keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate(self, headers: dict[str, str], client_host: str | None) -> Caller | None:
        loopback = is_loopback(client_host)
        if not self._keys:
            return Caller(CALLER, None, None, loopback)
        auth = headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key", "")
        if not given:
            return None
        given_b = given.encode("utf-8")
        found: _Key | None = None
        for key in self._keys:  # every key, each in constant time: the timing tells nothing about which
            if hmac.compare_digest(given_b, key.secret) and found is None:
                found = key
        if found is None:
            return None
        return Caller(found.role, found.key_id, found.tenant, loopback)


def flow_of(caller: Caller | None, client: tuple | None) -> str:
    """Who pays for a request's model time and holds its slots: the API key, or without keys the client
    address (the embedding queue serves these in turn; MAX_IN_FLIGHT_SHARE counts by them)."""
    if caller is not None and caller.key_id:
        return f"key:{caller.key_id}"
    return f"addr:{client[0] if client else '-'}"


@functools.lru_cache(maxsize=4096)  # asked twice per request for the same few client addresses
def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(host_header: str | None) -> str:
    """The name in a Host header, lower-case, without its port or an IPv6 address's brackets."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def trusted_host(host_header: str | None, extra: frozenset[str] = frozenset()) -> bool:
    """Whether a loopback client's Host header names this machine (a loopback name, or one of
    TRUSTED_HOSTS). With no keys set loopback clients are admins, and a browser page from elsewhere can
    reach 127.0.0.1 under its own name by DNS rebinding: such a request carries the other name."""
    name = host_name(host_header)
    return name in LOOPBACK_NAMES or name.endswith(".localhost") or name in extra


def caller_of(request: Request) -> Caller:
    return request.state.caller


async def require_admin(request: Request) -> Caller:
    """A route dependency: admins only; with no keys configured, loopback clients only. A coroutine, so
    FastAPI calls it on the loop instead of hopping to a worker thread for a few attribute reads."""
    caller = caller_of(request)
    if caller.is_admin:
        return caller
    if caller.key_id is None:  # no keys configured at all
        if caller.loopback:
            return caller
        raise Forbidden(
            "admin routes answer loopback clients only while no keys are configured; set ADMIN_API_KEYS "
            "to manage the service from elsewhere"
        )
    raise Forbidden("this route needs an admin key (ADMIN_API_KEYS); caller keys (API_KEYS) may not use it")


async def require_metrics(request: Request) -> Caller:
    """``/metrics``: admins and metrics keys; with no keys configured, loopback clients only."""
    caller = caller_of(request)
    if caller.role == METRICS:
        return caller
    if caller.key_id is None or caller.is_admin:
        return await require_admin(request)
    raise Forbidden(
        "/metrics needs a metrics key (METRICS_API_KEYS) or an admin key (ADMIN_API_KEYS); caller keys "
        "(API_KEYS) may not read it"
    )


def tenant_of(request: Request) -> str:
    """The tenant whose stored answers a request may see and add to (see the module docstring)."""
    caller = caller_of(request)
    header = request.headers.get("x-tenant", "").strip()
    if caller.key_id is not None and not caller.is_admin:
        return caller.tenant or f"key-{caller.key_id}"  # X-Tenant from a caller key is not honoured
    if header and not X_TENANT_RE.match(header):
        raise InvalidRequest("X-Tenant must be 1-64 characters of letters, digits, '_', '.', ':' or '-'")
    return header or DEFAULT_TENANT
