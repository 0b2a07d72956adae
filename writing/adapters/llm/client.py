"""The OpenAI-compatible LLM client: vLLM serving Qwen2-7B-Instruct in production, llama.cpp locally.

One ``openai.AsyncOpenAI`` per process. Every answer has an overall deadline (``LLM_TIMEOUT``);
connection errors and 5xx are retried with backoff by the SDK (``LLM_MAX_RETRIES``), inside that
deadline. Failures surface as ``LLMError`` subclasses (``writing.errors``) that carry the HTTP status the service
answers with (502 for an unreachable or failing LLM, 504 for one that does not answer in time); the
upstream exception text is logged, never sent to clients. Implements ``writing.core.ports.LLM``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai

from writing.core.models import Completion, Delta, SamplingParams
from writing.errors import LLMEmptyAnswer, LLMError, LLMTimeout, LLMToolCall, LLMUnavailable, LLMUpstreamError

logger = logging.getLogger(__name__)


def _translate(exc: BaseException) -> LLMError:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, openai.APITimeoutError)):
        return LLMTimeout(str(exc) or "timeout")
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailable(str(exc))
    if isinstance(exc, openai.APIStatusError):
        return LLMUpstreamError(f"HTTP {exc.status_code}: {exc.message}")
    return LLMError(f"{type(exc).__name__}: {exc}")


FAILING_AFTER = 3  # this many completion failures in a row, and no success since: the LLM is failing
HEALTH_WINDOW = 50  # outcomes remembered


@dataclass(frozen=True)
class CompletionHealth:
    """What the last completions did: an LLM that lists its models but fails every completion is not healthy."""

    recent: int
    recent_failures: int
    consecutive_failures: int
    last_failure_kind: str | None
    seconds_since_success: float | None

    @property
    def failing(self) -> bool:
        return self.consecutive_failures >= FAILING_AFTER

    def as_dict(self) -> dict:
        return {
            "recent_completions": self.recent,
            "recent_failures": self.recent_failures,
            "consecutive_failures": self.consecutive_failures,
            "last_failure": self.last_failure_kind,
            "seconds_since_success": None
            if self.seconds_since_success is None
            else round(self.seconds_since_success, 1),
        }


class CompletionOutcomes:
    """The last HEALTH_WINDOW completion outcomes (the event loop only: no lock needed)."""

    def __init__(self) -> None:
        self._outcomes: deque[str | None] = deque(maxlen=HEALTH_WINDOW)  # None = success, else the error code
        self._consecutive = 0
        self._last_success: float | None = None

    def success(self) -> None:
        self._outcomes.append(None)
        self._consecutive = 0
        self._last_success = time.monotonic()

    def failure(self, code: str) -> None:
        self._outcomes.append(code)
        self._consecutive += 1

    def snapshot(self) -> CompletionHealth:
        failures = [o for o in self._outcomes if o is not None]
        return CompletionHealth(
            recent=len(self._outcomes),
            recent_failures=len(failures),
            consecutive_failures=self._consecutive,
            last_failure_kind=failures[-1] if failures else None,
            seconds_since_success=None if self._last_success is None else time.monotonic() - self._last_success,
        )


class LLMClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str = "",
        timeout: float = 60.0,
        max_retries: int = 2,
        defaults: SamplingParams | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._defaults = defaults or SamplingParams()
        self._model = model
        self.outcomes = CompletionOutcomes()
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout, max_retries=max_retries
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def defaults(self) -> SamplingParams:
        return self._defaults

    async def list_models(self) -> list[str]:
        try:
            async with asyncio.timeout(self.timeout):
                page = await self._client.models.list()
        except Exception as exc:
            raise _translate(exc) from exc
        return [m.id for m in page.data]

    async def resolve_model(self) -> str:
        """The configured model, or the first one the server lists when none is configured."""
        if not self._model:
            models = await self.list_models()
            if not models:
                raise LLMUpstreamError("the LLM server lists no models")
            self._model = models[0]
            logger.info("LLM model discovered from %s: %s", self.base_url, self._model)
        return self._model

    def _params(self, params: SamplingParams | None) -> dict:
        p = params or self._defaults
        params = {"max_tokens": p.max_tokens, "temperature": p.temperature, "top_p": p.top_p}
        if p.extra:  # any other field goes into the JSON body as given (vLLM takes top_k, min_p, ...)
            params["extra_body"] = p.extra
        return params

    def health(self) -> CompletionHealth:
        return self.outcomes.snapshot()

    async def complete(self, messages: list[dict], params: SamplingParams | None = None) -> Completion:
        try:
            completion = await self._complete(messages, params)
        except LLMToolCall:
            self.outcomes.success()  # the LLM answered; this service just cannot relay that answer
            raise
        except LLMError as exc:
            self.outcomes.failure(exc.code)
            raise
        self.outcomes.success()
        return completion

    async def _complete(self, messages: list[dict], params: SamplingParams | None) -> Completion:
        try:
            async with asyncio.timeout(self.timeout):
                model = await self.resolve_model()
                resp = await self._client.chat.completions.create(
                    model=model, messages=messages, stream=False, **self._params(params)
                )
        except LLMError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc
        if not resp.choices:
            raise LLMEmptyAnswer("no choices in the LLM response")
        choice = resp.choices[0]
        text = choice.message.content or ""
        if not text.strip() and getattr(choice.message, "tool_calls", None):
            raise LLMToolCall(f"the LLM answered with {len(choice.message.tool_calls)} tool call(s)")
        if not text.strip():
            raise LLMEmptyAnswer(f"empty content, finish_reason={choice.finish_reason}")
        usage = resp.usage
        return Completion(
            text=text,
            finish_reason=choice.finish_reason,
            model=resp.model or model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )

    async def stream(self, messages: list[dict], params: SamplingParams | None = None) -> AsyncIterator[Delta]:
        """Yield deltas as they arrive. Closing the generator closes the upstream request."""
        inner = self._stream(messages, params)
        try:
            async for delta in inner:
                yield delta
        except LLMError as exc:
            self.outcomes.failure(exc.code)
            raise
        else:
            self.outcomes.success()
        finally:
            await inner.aclose()  # the upstream request ends with this generator, however it ends

    async def _stream(self, messages: list[dict], params: SamplingParams | None) -> AsyncIterator[Delta]:
        try:
            async with asyncio.timeout(self.timeout):
                model = await self.resolve_model()
                stream = await self._client.chat.completions.create(
                    model=model, messages=messages, stream=True, **self._params(params)
                )
        except LLMError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc
        chunks = stream.__aiter__()
        try:
            while True:
                # the deadline bounds the silence before each chunk, not the whole answer
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), self.timeout)
                except StopAsyncIteration:
                    return
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.delta.content or choice.finish_reason:
                    yield Delta(choice.delta.content or "", choice.finish_reason)
        except LLMError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc
        finally:
            await stream.close()

    async def close(self) -> None:
        await self._client.close()
