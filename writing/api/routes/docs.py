"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from files this service ships, under a strict CSP.

FastAPI's own pages load their scripts from a CDN (a floating version, no integrity check) on the
console's origin, where the admin key sits in ``sessionStorage``: a compromised CDN file could read it.
Here the scripts come from the pinned PyPI package ``fastapi-offline`` (Swagger UI 5, ReDoc 2; only its
files are used), the pages hold no inline script (Swagger UI starts from ``docs-init.js``, below), and
the Content-Security-Policy allows scripts from this origin only. Both pages and their files are open
(no key), as before: they hold no data; "Try it out" sends the key the reader types.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from writing.errors import NotFound

ASSETS_PREFIX = "/docs/assets/"
TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# Swagger UI sets inline styles; ReDoc also runs a web worker from a blob and inline styles
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; worker-src 'self' blob:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
INIT_JS = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""
SWAGGER_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API docs</title>
<link rel="icon" type="image/png" href="{ASSETS_PREFIX}favicon.png">
<link rel="stylesheet" href="{ASSETS_PREFIX}swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{ASSETS_PREFIX}swagger-ui-bundle.js"></script>
<script src="{ASSETS_PREFIX}docs-init.js"></script></body></html>
"""
REDOC_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API docs (ReDoc)</title>
<link rel="icon" type="image/png" href="{ASSETS_PREFIX}favicon.png"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS_PREFIX}redoc.standalone.js"></script></body></html>
"""


OAUTH2_PAGE = f"""<!doctype html>
<html lang="en-US"><head><title>Swagger UI: OAuth2 Redirect</title></head>
<body><script src="{ASSETS_PREFIX}oauth2-redirect.js"></script></body></html>
"""


@functools.lru_cache(maxsize=len(TYPES))
def _asset(name: str) -> bytes:
    return (resources.files("fastapi_offline") / "static" / name).read_bytes()


@functools.lru_cache(maxsize=1)
def _oauth2_script() -> bytes:
    """FastAPI's redirect page's script, served as a file (the CSP allows no inline script)."""
    from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html

    page = bytes(get_swagger_ui_oauth2_redirect_html().body).decode()
    return page[page.index("<script>") + len("<script>") : page.rindex("</script>")].encode()


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger() -> HTMLResponse:
        return HTMLResponse(SWAGGER_PAGE, headers={**HEADERS, "Cache-Control": "no-cache"})

    @router.get("/docs/oauth2-redirect")
    async def oauth2_redirect() -> HTMLResponse:
        return HTMLResponse(OAUTH2_PAGE, headers={**HEADERS, "Cache-Control": "no-cache"})

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return HTMLResponse(REDOC_PAGE, headers={**HEADERS, "Cache-Control": "no-cache"})

    @router.get(ASSETS_PREFIX + "{name}")
    async def asset(name: str) -> Response:
        if name == "docs-init.js":
            body, media = INIT_JS.encode(), "text/javascript; charset=utf-8"
        elif name == "oauth2-redirect.js":
            body, media = _oauth2_script(), "text/javascript; charset=utf-8"
        elif name in TYPES:
            body, media = _asset(name), TYPES[name]  # read once, from the installed package
        else:
            raise NotFound(f"no docs asset named {name!r}")
        return Response(body, media_type=media, headers={**HEADERS, "Cache-Control": "public, max-age=86400"})

    return router
