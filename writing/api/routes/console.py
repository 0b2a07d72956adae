"""The web console: static files shipped in the package (``writing/api/console/static``), no build step.

``/console`` and its assets need no key: they hold no data. The page asks for the admin key once, keeps
it in the browser tab's ``sessionStorage`` and sends it as ``Authorization: Bearer`` on every API call
(never a cookie, so no request can ride on it from another site); with no keys configured the admin
routes answer loopback clients only, the console included. Everything it shows is untrusted text,
written into the page as text nodes, and the page is served with a strict Content-Security-Policy (no
inline script or style, no other origin, no framing).

The page itself is never cached; the assets it names carry a hash of their content (``?v=``) and are
cached for a year, so a browser that opened the console before loads only the page and its data.
"""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

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
}
PAGE_CACHING = {"Cache-Control": "no-cache"}
ASSET_CACHING = {"Cache-Control": "public, max-age=31536000, immutable"}
ASSET_REF = re.compile(r'"/console/static/([A-Za-z0-9_.-]+)"')


@functools.lru_cache(maxsize=64)
def _read(name: str) -> bytes | None:
    """A shipped file's bytes, read once (the files are small and never change while the process runs)."""
    if "/" in name or name.startswith(".") or name[name.rfind(".") :] not in TYPES:
        return None
    path = STATIC / name
    return path.read_bytes() if path.is_file() else None


@functools.lru_cache(maxsize=1)
def _page() -> bytes:
    """index.html with each asset it names versioned by a hash of the asset's content."""
    html = _read("index.html")
    if html is None:
        raise NotFound("the console is not installed (writing/api/console/static/index.html is missing)")

    def versioned(m: re.Match) -> str:
        body = _read(m.group(1))
        digest = hashlib.sha256(body).hexdigest()[:12] if body is not None else "missing"
        return f'"/console/static/{m.group(1)}?v={digest}"'

    return ASSET_REF.sub(versioned, html.decode("utf-8")).encode("utf-8")


def _response(body: bytes, name: str, caching: dict[str, str]) -> Response:
    return Response(body, media_type=TYPES[name[name.rfind(".") :]], headers={**SECURITY_HEADERS, **caching})


def build_router() -> APIRouter:
    router = APIRouter(tags=["console"], include_in_schema=False)

    @router.get("/console")
    @router.get("/console/")
    async def console() -> Response:
        return _response(_page(), "index.html", PAGE_CACHING)

    @router.get("/console/static/{name}")
    async def static(name: str) -> Response:
        body = _read(name)
        if body is None or name == "index.html":
            raise NotFound(f"no console file {name!r}")
        return _response(body, name, ASSET_CACHING)

    return router
