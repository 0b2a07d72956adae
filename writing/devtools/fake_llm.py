"""A fault-injecting OpenAI-compatible server, for the failure tests only (errors, hangs, drops, delays).

Everything else runs against the real llama.cpp server. The fake runs uvicorn in a thread on
127.0.0.1 and counts what it saw, so tests can assert how many LLM calls were made and whether a
streaming request was cancelled upstream.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from writing.devtools.processes import free_port


@dataclass
class FakeState:
    mode: str = "ok"  # ok | error | hang | drop | slow_stream | endless (streams until the client goes) | tool_call
    delay: float = 0.0  # seconds before answering (mode ok)
    text: str = "这是一段由测试用语言模型生成的文字。"
    finish_reason: str = "stop"
    calls: int = 0
    cancelled: int = 0
    completed_streams: int = 0
    last_body: dict | None = None  # the last chat-completions request, as received
    model_listings: int = 0  # GET /v1/models calls
    judge_text: str = "是"  # the answer to a one-token request (a verification's judge call)
    judge_delay: float = 0.0  # seconds before answering one
    judge_calls: int = 0


def build_app(state: FakeState) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models():
        state.model_listings += 1
        return {"object": "list", "data": [{"id": "fake-llm", "object": "model", "owned_by": "tests"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        state.calls += 1
        state.last_body = body
        if state.mode == "error":
            return JSONResponse({"error": {"message": "injected failure"}}, status_code=500)
        if state.mode == "hang":
            await asyncio.sleep(3600)
        if body.get("max_tokens") == 1 and state.mode == "ok":  # the judge: 是 or 否
            state.judge_calls += 1
            if state.judge_delay:
                await asyncio.sleep(state.judge_delay)
            message = {"role": "assistant", "content": state.judge_text}
            return {
                "id": "chatcmpl-judge",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "fake-llm",
                "choices": [{"index": 0, "message": message, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 1, "total_tokens": 51},
            }
        if state.delay:
            await asyncio.sleep(state.delay)
        created = int(time.time())
        if not body.get("stream"):
            message, finish = {"role": "assistant", "content": state.text}, state.finish_reason
            if state.mode == "tool_call":  # the model calls a tool instead of writing text
                call = {"id": "call-1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
                message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": created,
                "model": "fake-llm",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 10, "total_tokens": 15},
            }

        def chunk(delta: dict, finish: str | None = None) -> str:
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": "fake-llm",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        async def stream():
            try:
                yield chunk({"role": "assistant", "content": ""})
                pieces = [state.text[i : i + 3] for i in range(0, len(state.text), 3)]
                while state.mode == "endless":  # as fast as the reader takes it, until it goes away
                    yield chunk({"content": state.text})
                    await asyncio.sleep(0)
                if state.mode == "slow_stream":
                    pieces = pieces * 100
                for n, piece in enumerate(pieces):
                    if state.mode == "drop" and n == 2:
                        raise ConnectionResetError("injected mid-stream drop")
                    if state.mode == "slow_stream":
                        await asyncio.sleep(0.1)
                    yield chunk({"content": piece})
                yield chunk({}, state.finish_reason)
                yield "data: [DONE]\n\n"
                state.completed_streams += 1
            except asyncio.CancelledError:
                state.cancelled += 1
                raise

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


class FakeLLM:
    """Context manager: ``with FakeLLM() as fake: fake.base_url; fake.state.mode = "error"``."""

    def __init__(self) -> None:
        self.state = FakeState()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        config = uvicorn.Config(build_app(self.state), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake LLM did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
