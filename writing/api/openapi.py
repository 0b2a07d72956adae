"""The OpenAPI document, with the limits the settings choose written into it.

FastAPI builds the schema from the request models, whose bounds are fixed in code. Some bounds are
settings (``MAX_PROMPT_CHARS``, ``MAX_MESSAGES``, ``MAX_COMPLETION_TOKENS``, the threshold range): a
client reading the schema (an SDK generator, schemathesis) must see the limits this deployment
enforces, so they are patched in here once the settings are known. The chat request's
``additionalProperties`` is false because fields outside it get a 422 unless ``ALLOWED_EXTRA_FIELDS``
lists them; the listed ones are added as free-form properties.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from writing.api.protocol.openai import VLLM_EXTRA_FIELDS
from writing.settings import Settings

PROMPT_FIELDS = {"GenerateRequest": "prompt", "SearchRequest": "prompt", "ExplainRequest": "prompt"}
PROMPT_QUERY_ROUTES = ("/generate", "/chat")
THRESHOLD_FIELDS = {
    "GenerateRequest": "threshold",
    "ChatCompletionRequest": "similarity_threshold",
    "ExplainRequest": "threshold",
    "ThresholdUpdate": "curated",
}


def openapi_with_limits(app: FastAPI) -> Callable[[], dict]:
    """A replacement for ``app.openapi``: FastAPI's document plus the settings' limits (cached once known)."""

    def build() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        settings: Settings | None = app.state.settings
        apply_limits(schema, settings if settings is not None else Settings.model_construct())
        if settings is not None:  # before the lifespan the defaults are shown; never cached
            app.openapi_schema = schema
        return schema

    return build


def _number(prop: dict) -> dict:
    """The schema of a nullable number field: the branch that is not null."""
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") in ("number", "integer"):
            return branch
    return prop


def apply_limits(schema: dict, settings: Settings) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for model, field in PROMPT_FIELDS.items():
        if model in components:
            components[model]["properties"][field]["maxLength"] = settings.max_prompt_chars
    for path in PROMPT_QUERY_ROUTES:
        for param in schema["paths"].get(path, {}).get("get", {}).get("parameters", []):
            if param["name"] == "prompt":
                param["schema"]["maxLength"] = settings.max_prompt_chars
    for model, field in THRESHOLD_FIELDS.items():
        if model in components:
            number = _number(components[model]["properties"][field])
            number.pop("exclusiveMinimum", None)
            number["minimum"] = settings.similarity_threshold_min
            number["maximum"] = settings.similarity_threshold_max
    update = components.get("ThresholdUpdate")
    if update is not None:  # the answer tier's run-time bounds (ANSWER_CACHE_THRESHOLD_MIN/_MAX)
        number = _number(update["properties"]["answer"])
        number.pop("exclusiveMinimum", None)
        number["minimum"] = settings.answer_cache_threshold_min
        number["maximum"] = settings.answer_cache_threshold_max
    chat = components.get("ChatCompletionRequest")
    if chat is not None:
        chat["additionalProperties"] = False
        props = chat["properties"]
        props["messages"]["maxItems"] = settings.max_messages
        for name in ("max_tokens", "max_completion_tokens"):
            _number(props[name])["maximum"] = settings.max_completion_tokens
        _number(props["min_tokens"])["maximum"] = settings.max_completion_tokens
        for name in VLLM_EXTRA_FIELDS:
            if name not in settings.allowed_extra_fields:
                props.pop(name, None)  # refused by this deployment
        for name in settings.allowed_extra_fields:
            props.setdefault(name, {"description": "Passed to the LLM as given (ALLOWED_EXTRA_FIELDS)."})
