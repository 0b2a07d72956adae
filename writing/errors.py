"""One exception hierarchy for the whole service.

Every error a caller can see is a ``ServiceError``: it carries the HTTP status, a stable machine-readable
``code``, the OpenAI error ``type`` and a ``public_message`` that is safe to send. The exception's own
text (``str(exc)``) is for the logs only: it may hold upstream details that never reach a client. The
HTTP layer maps every ``ServiceError`` to one JSON envelope (``writing.api.errors``); the core and the
adapters raise these classes and know nothing about HTTP beyond the status number they carry.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: ``status`` and ``code`` choose the response, ``public_message`` is what the caller reads."""

    status: int = 500
    code: str = "internal_error"
    type: str = "server_error"  # the OpenAI error type
    public_message: str = "internal error"
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(self, detail: str = "", *, public_message: str | None = None) -> None:
        super().__init__(detail or public_message or self.public_message)
        if public_message is not None:
            self.public_message = public_message

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


# -- the caller's fault (4xx): the message says what to fix and is always public -------------------------
class ClientError(ServiceError):
    status = 400
    code = "bad_request"
    type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, public_message=message)


class InvalidRequest(ClientError):
    """Input the service cannot use as given (HTTP 422)."""

    status = 422
    code = "invalid_request"


class NotFound(ClientError):
    status = 404
    code = "not_found"


class Unauthorized(ClientError):
    status = 401
    code = "unauthorized"
    type = "authentication_error"


class Forbidden(ClientError):
    """Authenticated, but this role may not do this; the message names the setting that grants it."""

    status = 403
    code = "forbidden"
    type = "permission_error"


class TooManyRequests(ClientError):
    status = 429
    code = "rate_limited"
    type = "rate_limit_error"


class MethodNotAllowed(ClientError):
    status = 405
    code = "method_not_allowed"


class RequestTimeout(ClientError):
    """The client did not send its request body in time (HTTP 408)."""

    status = 408
    code = "request_timeout"


class Conflict(ClientError):
    """The request cannot be carried out in the resource's present state (HTTP 409); the message says why."""

    status = 409
    code = "conflict"


class BodyTooLarge(ClientError):
    status = 413
    code = "body_too_large"


# -- the service cannot answer now (503): retry later -----------------------------------------------------
class Overloaded(ServiceError):
    status = 503
    code = "overloaded"
    type = "overloaded_error"
    public_message = "the service is overloaded; retry shortly"
    retry_after = 1
    reason = "overloaded"  # the label of writing_rejected_total


class VectorStoreError(ServiceError):
    """The vector store could not be reached or answered with an error."""

    status = 503
    code = "vector_store_unavailable"
    public_message = "the vector store is unavailable; retry shortly"
    retry_after = 5


# -- the LLM (502/504) ----------------------------------------------------------------------------------
class LLMError(ServiceError):
    status = 502
    code = "llm_error"
    type = "upstream_error"
    public_message = "the language model failed to answer"


class LLMUnavailable(LLMError):
    code = "llm_unavailable"
    public_message = "the language model is unreachable"


class LLMUpstreamError(LLMError):
    code = "llm_upstream_error"
    public_message = "the language model answered with an error"


class LLMEmptyAnswer(LLMError):
    code = "llm_empty_answer"
    public_message = "the language model returned no text"


class LLMToolCall(LLMEmptyAnswer):
    """The LLM answered a request with tools by calling one: this service relays text answers only."""

    code = "llm_tool_call"
    public_message = (
        "the language model answered with a tool call, which this service does not relay; "
        'send tool_choice "none" to get a text answer'
    )


class LLMTimeout(LLMError):
    status = 504
    code = "llm_timeout"
    public_message = "the language model did not answer in time"


# -- configuration: raised at start-up, stops the process with a message saying what to change -----------
class ConfigurationError(ServiceError):
    code = "configuration_error"


class DimensionMismatch(ConfigurationError):
    """The collection was built for another embedding dimension (or lacks the service's fields)."""


class StoreLocked(ConfigurationError):
    """Another process owns the Milvus Lite file."""
