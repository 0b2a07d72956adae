"""The lean lane (writing.api.lane): what it serves itself, what it hands to FastAPI untouched (the body
replayed), and the responses it sends. A stub app stands behind it; the full app (``create_app``, no
lifespan, no model) checks that a fall-through ends in FastAPI's own 422 envelope."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import httpx
import pytest
from starlette.responses import JSONResponse, PlainTextResponse

from writing.api.app import create_app
from writing.api.lane import AnsweringLane, LaneRoute, _model
from writing.api.protocol.generate import GenerateRequest
from writing.api.responses import RawJSONResponse
from writing.api.serving import generate as serving_generate
from writing.api.serving import openai as serving_openai
from writing.errors import InvalidRequest, LLMTimeout
from writing.settings import Settings

APP = SimpleNamespace(state=SimpleNamespace(core=SimpleNamespace(answering="answering"), settings="settings"))
JSON = {"content-type": "application/json"}
CHAT_BODY = b'{"messages":[{"role":"user","content":"hi"}]}'


class Inner:
    """The app behind the lane (FastAPI in the service): records each request and the body it read."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes, bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        body, more = b"", scope["method"] == "POST"
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.seen.append((scope["method"], scope["path"], scope["query_string"], body))
        await PlainTextResponse("inner")(scope, receive, send)


async def call(lane, method, path, *, query=b"", chunks=(b"",), headers=None):
    """One request through ``lane``: the status, headers and body sent, and the scope it ran with. The
    body arrives in ``chunks``; after them the server's receive waits (as for a disconnect), so a reader
    that asks for more hangs, and ``wait_for`` fails the test."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "app": APP,
        "state": {"request_id": "rid-1"},
    }
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()

    sent = []

    async def send(message):
        sent.append(message)

    await asyncio.wait_for(lane(scope, receive, send), 2)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body, scope


@pytest.fixture
def served(monkeypatch):
    """The serving calls replaced: each records its arguments and answers with the prompt it was given."""
    calls: list[tuple] = []

    def fake(name):
        async def serve(request, *args):
            calls.append((name, request, *args))
            return RawJSONResponse({"route": name}, [(b"x-cache", b"MISS")])

        return serve

    for name in ("generate", "chat", "generate_v1"):
        monkeypatch.setattr(serving_generate, name, fake(name))
    monkeypatch.setattr(serving_openai, "chat_completions", fake("chat_completions"))
    return calls


async def test_get_without_a_prompt_falls_through_unchanged(served):
    inner = Inner()
    for path in ("/generate", "/chat"):
        status, _, body, _ = await call(AnsweringLane(inner), "GET", path, query=b"q=1")
        assert (status, body) == (200, b"inner")
    assert inner.seen == [("GET", "/generate", b"q=1", b""), ("GET", "/chat", b"q=1", b"")]
    assert served == []


@pytest.mark.parametrize(
    "path, body, headers",
    [
        ("/v1/generate", b'{"prompt":"hi"}', {"content-type": "text/plain"}),
        ("/v1/generate", b'{"prompt":"hi"}', {}),
        ("/v1/generate", b'{"prompt": "hi"', JSON),
        ("/v1/generate", b'{"prompt":"hi","threshold":5}', JSON),
        ("/v1/generate", b'{"prompt":"\\ud800"}', JSON),
        ("/v1/generate", b"", JSON),
        ("/v1/chat/completions", b'{"messages":[]}', JSON),
        ("/v1/chat/completions", b'{"messages":[{"role":"user","content":"\\udfff"}]}', JSON),
    ],
)
async def test_a_body_not_well_formed_reaches_the_inner_app_byte_for_byte(served, path, body, headers):
    inner = Inner()
    status, _, sent, _ = await call(AnsweringLane(inner), "POST", path, chunks=(body,), headers=headers)
    assert (status, sent) == (200, b"inner")
    assert inner.seen == [("POST", path, b"", body)]
    assert served == []


async def test_a_body_in_chunks_is_replayed_whole(served):
    inner = Inner()
    chunks = (b'{"prompt":"hi",', b'"threshold":5}')
    await call(AnsweringLane(inner), "POST", "/v1/generate", chunks=chunks, headers=JSON)
    assert inner.seen == [("POST", "/v1/generate", b"", b"".join(chunks))]


@pytest.mark.parametrize(
    "method, path", [("HEAD", "/generate"), ("GET", "/v1/generate"), ("GET", "/healthz"), ("POST", "/generate")]
)
async def test_other_methods_and_paths_go_to_the_inner_app_untouched(served, method, path):
    inner = Inner()
    body = b'{"prompt":"hi"}' if method == "POST" else b""
    _, _, _, scope = await call(AnsweringLane(inner), method, path, query=b"prompt=hi", chunks=(body,), headers=JSON)
    assert inner.seen == [(method, path, b"prompt=hi", body)]
    assert "route" not in scope  # the lane did not claim it
    assert served == []


async def test_a_repeated_prompt_counts_by_its_last_value(served):
    status, headers, body, _ = await call(AnsweringLane(Inner()), "GET", "/generate", query=b"prompt=a&prompt=b%20c")
    assert status == 200 and json.loads(body) == {"route": "generate"}
    (name, _, answering, prompt) = served[0]
    assert (name, answering, prompt) == ("generate", "answering", "b c")
    assert headers[b"x-cache"] == b"MISS"


def test_only_a_lone_surrogate_keeps_a_body_from_the_lane():
    # pydantic's JSON parser refuses a lone surrogate escape itself; the lane's walk is the second net
    assert _model(GenerateRequest, b'{"prompt":"\\ud800"}') is None
    assert _model(GenerateRequest, b'{"prompt":"ok \\uDC00 here"}') is None
    assert _model(GenerateRequest, b'{"prompt":"\\ud83d\\ude00"}').prompt == "\U0001f600"
    assert _model(GenerateRequest, '{"prompt":"秋天 \U0001f600"}'.encode()).prompt == "秋天 \U0001f600"
    assert _model(GenerateRequest, b'{"prompt":"hi","threshold":0.9}').threshold == 0.9


async def test_an_escaped_surrogate_pair_is_served(served):
    body = b'{"prompt":"\\ud83d\\ude00","threshold":0.9}'
    inner = Inner()
    await call(AnsweringLane(inner), "POST", "/v1/generate", chunks=(body,), headers=JSON)
    assert inner.seen == []
    (name, _, answering, parsed) = served[0]
    assert (name, answering, parsed.prompt, parsed.threshold) == ("generate_v1", "answering", "\U0001f600", 0.9)


@pytest.mark.parametrize(
    "method, path, query, body, name",
    [
        ("GET", "/generate", b"prompt=hi", b"", "generate"),
        ("GET", "/chat", b"prompt=hi", b"", "chat"),
        ("POST", "/v1/generate", b"", b'{"prompt":"hi"}', "generate_v1"),
        ("POST", "/v1/chat/completions", b"", CHAT_BODY, "chat_completions"),
    ],
)
async def test_a_served_request_carries_its_route_template(served, method, path, query, body, name):
    headers = {"content-type": "application/json; charset=utf-8"}
    status, _, _, scope = await call(AnsweringLane(Inner()), method, path, query=query, chunks=(body,), headers=headers)
    assert status == 200 and served[0][0] == name
    assert scope["route"] == LaneRoute(path, name) and scope["route"].path == path
    if name == "chat_completions":
        assert served[0][2:4] == ("answering", "settings")


@pytest.mark.parametrize("exc", [InvalidRequest("prompt must not be blank"), LLMTimeout("read timeout at 10.0.0.3")])
async def test_a_service_error_becomes_the_envelope(monkeypatch, exc):
    async def failing(request, answering, prompt):
        raise exc

    monkeypatch.setattr(serving_generate, "generate", failing)
    inner = Inner()
    status, headers, body, _ = await call(AnsweringLane(inner), "GET", "/generate", query=b"prompt=%20")
    assert status == exc.status and headers[b"content-type"] == b"application/json"
    assert json.loads(body) == {
        "error": {"message": exc.public_message, "type": exc.type, "code": exc.code, "param": None}
    }
    assert inner.seen == []


def test_raw_json_response_writes_utf8_json_and_its_headers_last():
    content = {"content": "写一段描写秋天的文字", "similarity": 0.9512, "match": None, "ok": True, "n": [1, 2]}
    response = RawJSONResponse(content, [(b"x-cache", b"HIT"), (b"x-similarity", b"0.9512")], status_code=201)
    assert json.loads(response.body) == content
    assert response.body == JSONResponse(content).body  # what starlette's JSONResponse writes
    assert "秋天".encode() in response.body and b"\\u" not in response.body
    assert response.status_code == 201
    assert response.raw_headers == [
        (b"x-cache", b"HIT"),
        (b"x-similarity", b"0.9512"),
        (b"content-length", str(len(response.body)).encode()),
        (b"content-type", b"application/json"),
    ]
    assert json.loads(RawJSONResponse({1: float("nan")}, []).body) == {"1": None}


@pytest.fixture(scope="module")
def full_app():
    app = create_app(Settings())  # routes and middleware only: no lifespan, no model, no store
    app.state.core = SimpleNamespace(answering=object())
    return app


@pytest.mark.parametrize(
    "method, url, body, headers, param",
    [
        ("GET", "/generate", None, {}, "prompt"),
        ("GET", "/chat?q=1", None, {}, "prompt"),
        ("POST", "/v1/generate", b'{"prompt":"hi","threshold":5}', JSON, "threshold"),
        ("POST", "/v1/generate", b'{"prompt":"\\ud800"}', JSON, None),
        ("POST", "/v1/generate", b'{"prompt": "hi"', JSON, None),
        ("POST", "/v1/generate", b'{"prompt":"hi"}', {"content-type": "text/plain"}, None),
    ],
)
async def test_a_fall_through_gets_fastapis_422_envelope(served, full_app, method, url, body, headers, param):
    transport = httpx.ASGITransport(app=full_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await asyncio.wait_for(client.request(method, url, content=body, headers=headers), 10)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"} and error["code"] == "invalid_request"
    if param is not None:
        assert error["param"] == param
    if body and b"\\ud800" in body:
        assert "lone UTF-16 surrogate" in error["message"]
    assert response.headers["x-request-id"]
    assert served == []
