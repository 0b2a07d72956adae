"""The answering routes' JSON responses, built once: the body serialised by orjson (UTF-8, compact, as
starlette's ``JSONResponse`` writes it, at a fraction of ``json.dumps``'s cost), the headers handed
over as the raw ``(name, value)`` byte pairs the server writes, so nothing converts a dict of strings
per response. A ``starlette`` ``Response``: FastAPI's routes return it as it is, and the lean lane
(``writing.api.lane``) sends it the same way.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

RawHeaders = list[tuple[bytes, bytes]]
JSON_TYPE = (b"content-type", b"application/json")


def raw_headers(headers: dict[str, str]) -> RawHeaders:
    """A dict of headers as the server writes them: names in lower case, latin-1 (as starlette encodes)."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class RawJSONResponse(Response):
    """``content`` as JSON, with ``headers`` already raw; content-length and content-type follow them,
    in the order starlette's ``JSONResponse`` puts them."""

    media_type = "application/json"

    def __init__(self, content: Any, headers: RawHeaders, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        # OPT_NON_STR_KEYS: a dict keyed by ints serialises as json.dumps would; a float that is not
        # finite becomes null (json.dumps would refuse it with a 500)
        self.body = orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        self.raw_headers = [*headers, (b"content-length", str(len(self.body)).encode("latin-1")), JSON_TYPE]
