"""Behind a proxy: X-Forwarded-For is trusted from FORWARDED_ALLOW_IPS only, and a relayed request is never
loopback (so never an admin of an open service). The middleware runs around a stub app that shows what it
saw; the fleet test (tests/e2e/test_fleet.py) runs the same behind a real nginx."""

from __future__ import annotations

import httpx
import pytest

from writing.api.auth import KeyRing
from writing.api.middleware import RequestContextMiddleware
from writing.api.proxy import TrustedProxies
from writing.observability.metrics import Metrics
from writing.settings import SettingsError, load_settings, proxy_networks


def proxies(value: str) -> TrustedProxies:
    return TrustedProxies(proxy_networks(value))


@pytest.mark.parametrize(
    ("trusted", "peer", "xff", "client"),
    [
        ("", "127.0.0.1", "203.0.113.7", "127.0.0.1"),  # no proxy declared: the header means nothing
        ("127.0.0.1", "127.0.0.1", "203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", "198.51.100.9", "203.0.113.7", "198.51.100.9"),  # not from the proxy: a forgery
        ("127.0.0.1", "127.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the client's own entry is skipped
        ("10.0.0.0/8,127.0.0.1", "127.0.0.1", "6.6.6.6, 203.0.113.7, 10.1.2.3", "203.0.113.7"),  # two proxies
        ("127.0.0.1", "127.0.0.1", "", "127.0.0.1"),
        ("*", "192.0.2.1", "127.0.0.1", "127.0.0.1"),  # every hop trusted: the first one
        ("127.0.0.1", "127.0.0.1", "203.0.113.7:5123", "203.0.113.7"),  # a port is not part of the address
        ("127.0.0.1", "127.0.0.1", "[2001:db8::7]:443", "2001:db8::7"),
        ("10.0.0.0/8", "127.0.0.1", "203.0.113.7", "127.0.0.1"),  # the peer is no proxy of ours
        ("10.0.0.0/8", "::ffff:10.0.0.5", "203.0.113.7", "203.0.113.7"),  # an IPv4-mapped peer is IPv4
        ("10.0.0.0/8", "10.0.0.5", "6.6.6.6, 203.0.113.7, 10.0.0.3:443", "203.0.113.7"),  # a proxy with a port
        ("10.0.0.0/8", "10.0.0.5", "203.0.113.7, garbage, 10.0.0.3", "10.0.0.3"),  # no address: stop there
        ("10.0.0.0/8", "10.0.0.5", "garbage", "10.0.0.5"),
    ],
)
def test_the_client_is_the_rightmost_untrusted_address(trusted, peer, xff, client):
    headers = {"x-forwarded-for": xff} if xff else {}
    assert proxies(trusted).client((peer, 5000), headers)[0] == client


def test_settings_name_a_bad_proxy_and_refuse_an_open_service_behind_one():
    with pytest.raises(SettingsError, match="not-an-ip"):
        load_settings(forwarded_allow_ips="127.0.0.1, not-an-ip", api_keys="k")
    with pytest.raises(SettingsError, match="API_KEYS"):
        load_settings(forwarded_allow_ips="127.0.0.1")
    assert load_settings(forwarded_allow_ips=" 127.0.0.1 ", admin_api_keys="a").forwarded_allow_ips == "127.0.0.1"


async def echo(scope, receive, send):
    caller = scope["state"]["caller"]
    body = f"{scope['client'][0]} {caller.loopback}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def client_for(config: dict) -> httpx.AsyncClient:
    base = {"max_body_bytes": 1024, "max_in_flight": 8, "keyring": KeyRing([], []), **config}
    app = RequestContextMiddleware(echo, metrics=Metrics(), config=base)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app, client=("127.0.0.1", 4000)), base_url="http://localhost"
    )


async def test_a_relayed_request_is_never_loopback():
    async with client_for({}) as c:  # no keys, no proxy declared: loopback callers are admins ...
        assert (await c.get("/x")).text == "127.0.0.1 True"
        # ... but not one relayed by a proxy nobody declared (every client of it would be one)
        for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
            assert (await c.get("/x", headers={header: "127.0.0.1"})).text == "127.0.0.1 False"


async def test_the_middleware_takes_the_client_from_a_trusted_proxy_only():
    async with client_for({"proxies": proxies("127.0.0.1")}) as c:
        assert (await c.get("/x", headers={"X-Forwarded-For": "203.0.113.7"})).text == "203.0.113.7 False"
    async with client_for({"proxies": proxies("10.0.0.1")}) as c:
        assert (await c.get("/x", headers={"X-Forwarded-For": "203.0.113.7"})).text == "127.0.0.1 False"
