"""The app under test: in-process (httpx over ASGI) or served by a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import uvicorn

from writing.devtools.processes import free_port


@contextlib.asynccontextmanager
async def running_app(settings):
    """The app with its lifespan run, and an httpx client talking to it in-process (``client.app``)."""
    from writing.api.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=120) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


class LiveServer:
    """The app served by a real uvicorn on 127.0.0.1 in a thread (for streaming and real-socket tests)."""

    def __init__(self, settings) -> None:
        from writing.api.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
