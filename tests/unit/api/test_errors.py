"""One error model: every ServiceError becomes the same OpenAI-shaped envelope with its status."""

from __future__ import annotations

import json

import pytest

from writing.adapters.embedding.batcher import EmbeddingQueueFull
from writing.api.errors import error_body, error_event, error_response, error_responses
from writing.core.corpus import InvalidPassage
from writing.errors import (
    BodyTooLarge,
    InvalidRequest,
    LLMTimeout,
    LLMUpstreamError,
    NotFound,
    ServiceError,
    Unauthorized,
    VectorStoreError,
)


@pytest.mark.parametrize(
    "exc, status, code, kind",
    [
        (InvalidRequest("prompt must not be empty"), 422, "invalid_request", "invalid_request_error"),
        (InvalidPassage("'content' must be a non-empty string"), 422, "invalid_request", "invalid_request_error"),
        (NotFound("no passage with id 3"), 404, "not_found", "invalid_request_error"),
        (Unauthorized("a valid API key is required"), 401, "unauthorized", "authentication_error"),
        (BodyTooLarge("too large"), 413, "body_too_large", "invalid_request_error"),
        (EmbeddingQueueFull("queue full"), 503, "overloaded", "overloaded_error"),
        (
            VectorStoreError("search failed: grpc UNAVAILABLE at 10.0.0.3"),
            503,
            "vector_store_unavailable",
            "server_error",
        ),
        (LLMUpstreamError("HTTP 500: secret upstream detail"), 502, "llm_upstream_error", "upstream_error"),
        (LLMTimeout("read timeout"), 504, "llm_timeout", "upstream_error"),
        (ServiceError("KeyError: 'x'"), 500, "internal_error", "server_error"),
    ],
)
def test_every_error_maps_to_its_status_and_one_envelope(exc, status, code, kind):
    response = error_response(exc)
    body = json.loads(response.body)
    assert response.status_code == status
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code", "param"}
    assert body["error"]["code"] == code and body["error"]["type"] == kind
    assert body["error"]["message"]
    if status >= 500:  # the exception's own text is for the log only
        assert body["error"]["message"] == exc.public_message
        assert str(exc) not in json.dumps(body, ensure_ascii=False) or str(exc) == exc.public_message
    else:  # a 4xx says what to fix
        assert body["error"]["message"] == str(exc)


def test_retry_after_comes_with_the_errors_that_should_be_retried():
    assert error_response(EmbeddingQueueFull("full")).headers["retry-after"] == "1"
    assert error_response(VectorStoreError("down")).headers["retry-after"] == "5"
    assert "retry-after" not in error_response(InvalidRequest("bad")).headers


def test_a_mid_stream_error_event_has_the_same_shape():
    event = error_event(LLMTimeout("read timeout"))
    assert event.startswith("data: ") and event.endswith("\n\n")
    assert json.loads(event[len("data: ") :]) == error_body(LLMTimeout("x"))


def test_openapi_responses_list_the_real_statuses():
    assert sorted(error_responses()) == [401, 408, 413, 422, 429, 500, 503]
    assert sorted(error_responses(404, 502)) == [401, 404, 408, 413, 422, 429, 500, 502, 503]
    assert sorted(error_responses(base=(401, 413, 500))) == [401, 413, 500]
