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
from collections.abc import AsyncIterator

import openai

from writing.core.models import Completion, Delta, SamplingParams
from writing.errors import LLMEmptyAnswer, LLMError, LLMTimeout, LLMUnavailable, LLMUpstreamError

logger = logging.getLogger(__name__)


def _translate(exc: BaseException) -> LLMError:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, openai.APITimeoutError)):
        return LLMTimeout(str(exc) or "timeout")
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailable(str(exc))
    if isinstance(exc, openai.APIStatusError):
        return LLMUpstreamError(f"HTTP {exc.status_code}: {exc.message}")
    return LLMError(f"{type(exc).__name__}: {exc}")


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

    async def complete(self, messages: list[dict], params: SamplingParams | None = None) -> Completion:
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
