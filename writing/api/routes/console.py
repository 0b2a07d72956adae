"""The web console: static files shipped in the package (``writing/api/console/static``), no build step.

``/console`` and its assets need no key: they hold no data. The page asks for the admin key once, keeps
it in the browser tab's ``sessionStorage`` and sends it as ``Authorization: Bearer`` on every API call
(never a cookie, so no request can ride on it from another site); with no keys configured the admin
routes answer loopback clients only, the console included. Everything it shows is untrusted text,
written into the page as text nodes, and the page is served with a strict Content-Security-Policy (no
inline script or style, no other origin, no framing).
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from writing.errors import NotFound

STATIC = resources.files("writing.api.console") / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


@functools.lru_cache(maxsize=64)
def _read(name: str) -> bytes | None:
    """A shipped file's bytes, read once (the files are small and never change while the process runs)."""
    path = STATIC / name
    return path.read_bytes() if path.is_file() else None


def _file(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    body = _read(name) if suffix in TYPES and "/" not in name and not name.startswith(".") else None
    if body is None:
        raise NotFound(f"no console file {name!r}")
    return Response(body, media_type=TYPES[suffix], headers=SECURITY_HEADERS)


def build_router() -> APIRouter:
    router = APIRouter(tags=["console"], include_in_schema=False)

    @router.get("/console")
    async def console() -> Response:
        return _file("index.html")

    @router.get("/console/")
    async def console_slash() -> RedirectResponse:
        return RedirectResponse("/console", status_code=308)

    @router.get("/console/static/{name}")
    async def static(name: str) -> Response:
        return _file(name)

    return router
