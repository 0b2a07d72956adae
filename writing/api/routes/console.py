"""The web console: static files shipped in the package (``writing/api/console/static``), no build step.

``/console`` and its assets need no key: they hold no data. The page asks for the admin key once, keeps
it in the browser tab's ``sessionStorage`` and sends it as ``Authorization: Bearer`` on every API call
(never a cookie, so no request can ride on it from another site); with no keys configured the admin
routes answer loopback clients only, the console included. Everything it shows is untrusted text,
written into the page as text nodes, and the page is served with a strict Content-Security-Policy (no
inline script or style, no other origin, no framing).

The script is a set of native ES modules (``console.js`` the entry, ``pages/*.js`` one per page) that
import each other by relative paths. The page itself is never cached; it names every asset under one
folder named by a hash of all of them, ``/console/static/<hash>/console.js``, so a module's relative
imports land in the same folder, a change to any file gives every file a new URL, and each is cached for
a year: a browser that opened the console before loads only the page and its data. A URL with another
hash (a page from before a deploy, or from a worker of another version) still gets today's file, but
not cached, since that name promised other content.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter
from fastapi.responses import Response

from writing.errors import NotFound

STATIC = resources.files("writing.api.console") / "static"
PAGE = "index.html"
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
OTHER_VERSION_CACHING = {"Cache-Control": "no-cache"}
SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # a file or folder name: no leading dot, no slash
ASSET_REF = re.compile(r'"/console/static/([A-Za-z0-9_./-]+)"')


@dataclass(frozen=True)
class Assets:
    version: str  # a hash of every asset's path and bytes
    files: dict[str, bytes]  # path under static/ ("pages/corpus.js") -> bytes; the page is not among them


def _suffix(name: str) -> str:
    return name[name.rfind(".") :] if "." in name else ""


def _walk(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if not SEGMENT.fullmatch(entry.name):
            continue
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
        elif entry.is_file() and _suffix(entry.name) in TYPES:
            found[prefix + entry.name] = entry.read_bytes()
    return found


def scan(root: Traversable) -> Assets:
    """Every file under ``root`` of a type in TYPES (subfolders included, dot-files left out) but the page,
    and one hash over all of them."""
    files = {path: body for path, body in sorted(_walk(root).items()) if path != PAGE}
    digest = hashlib.sha256()
    for path, body in files.items():
        digest.update(b"%s\0%d\0" % (path.encode("utf-8"), len(body)))
        digest.update(body)
    return Assets(digest.hexdigest()[:16], files)


@functools.lru_cache(maxsize=1)
def _assets() -> Assets:
    """The shipped files, read once (they are small and never change while the process runs)."""
    return scan(STATIC) if STATIC.is_dir() else Assets("missing", {})


def render_page(html: str, version: str) -> str:
    """index.html with each asset it names (``"/console/static/NAME"``) moved into the version's folder."""
    return ASSET_REF.sub(lambda m: f'"/console/static/{version}/{m.group(1)}"', html)


@functools.lru_cache(maxsize=1)
def _page() -> bytes:
    page = STATIC / PAGE
    if not page.is_file():
        raise NotFound(f"the console is not installed (writing/api/console/static/{PAGE} is missing)")
    return render_page(page.read_text(encoding="utf-8"), _assets().version).encode("utf-8")


def _response(body: bytes, name: str, caching: dict[str, str]) -> Response:
    return Response(body, media_type=TYPES[_suffix(name)], headers={**SECURITY_HEADERS, **caching})


def build_router() -> APIRouter:
    router = APIRouter(tags=["console"], include_in_schema=False)

    @router.get("/console")
    @router.get("/console/")
    async def console() -> Response:
        return _response(_page(), PAGE, PAGE_CACHING)

    @router.get("/console/static/{version}/{name:path}")
    async def static(version: str, name: str) -> Response:
        assets = _assets()
        body = assets.files.get(name)
        if body is None:
            raise NotFound(f"no console file {name!r}")
        return _response(body, name, ASSET_CACHING if version == assets.version else OTHER_VERSION_CACHING)

    return router
