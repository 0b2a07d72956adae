"""What besides the prompt decides what the LLM writes: the rule for serving a stored answer.

A stored answer is served only where the LLM could have given it to this request:

- the same served model (``model``);
- the same instructions: system/developer messages and, when multi-turn retrieval is on, the earlier
  turns (everything but the last user message), compared after whitespace normalisation;
- the same content-changing fields: ``response_format``, ``tools``/``tool_choice``, ``logit_bias``,
  ``seed``, the presence/frequency penalties and any pass-through field not listed in
  ``NON_CONTENT_FIELDS`` (vLLM's ``top_k``, ``min_p`` ...);
- temperature and top_p are not part of the key, with one exception: a greedy request (temperature 0)
  gets only answers that were made greedily, and a sampled one only sampled answers. Any sampled
  answer is one the model could have produced at another non-zero temperature; a greedy answer is the
  one answer the model gives, so a sampled answer is no stand-in for it;
- it fits: the answer's length in tokens is at most the request's ``max_tokens``;
- stop sequences: it was made under no stop sequence the request lacks (else the LLM would have
  written on), and it contains none of the request's (else the LLM would have stopped earlier).

All of the key but the stop rule and ``max_tokens`` is one fingerprint, so the store filters on it
exactly; the in-flight sharing key (``flight_key``) is built from the same parts, so requests share
one LLM call only where the stored answer would be served to each of them.

Curated passages are written for plain requests: they answer only when there is no system message (or
one listed in ``ALLOWED_SYSTEM_PROMPTS``), no tools and text output; otherwise ``curated_skip`` says
why and only the answer tier applies.
"""

from __future__ import annotations

import functools
import hashlib
import json

from writing.core.models import CacheContext, SamplingParams
from writing.text import normalise_text

INSTRUCTION_ROLES = ("system", "developer")
# request fields that do not change the text the LLM writes (who asks, how the answer is wrapped)
NON_CONTENT_FIELDS = frozenset({"user", "logprobs", "top_logprobs", "stream_options", "n", "metadata", "store"})
TEXT_FORMATS = (None, {"type": "text"})


def _stops(params: SamplingParams) -> tuple[str, ...]:
    stop = params.extra.get("stop")
    if stop is None:
        return ()
    items = [stop] if isinstance(stop, str) else list(stop)
    return tuple(sorted({s for s in items if isinstance(s, str) and s}))


def cache_context(
    messages: list[dict], params: SamplingParams, allowed_system_prompts: frozenset[str] = frozenset()
) -> CacheContext:
    """The context of a request whose last user message is the retrieval prompt."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=len(messages))
    context_messages = [
        {"role": m.get("role"), "content": normalise_text(_text(m.get("content"))), "name": m.get("name")}
        for i, m in enumerate(messages)
        if i != last_user
    ]
    fields = {k: v for k, v in params.extra.items() if k not in NON_CONTENT_FIELDS and k != "stop"}
    greedy = params.temperature == 0
    if context_messages or fields:
        fingerprint = _fingerprint(context_messages, fields, greedy)
    else:  # a bare prompt (every GET /generate): one of two constants, worked out once
        fingerprint = _bare_fingerprint(greedy)
    return CacheContext(
        fingerprint=fingerprint,
        stops=_stops(params),
        max_tokens=params.max_tokens,
        curated_skip=_curated_skip(messages, last_user, params, allowed_system_prompts),
    )


def _fingerprint(context_messages: list[dict], fields: dict, greedy: bool) -> str:
    blob = json.dumps(
        {"messages": context_messages, "fields": fields, "greedy": greedy},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@functools.cache
def _bare_fingerprint(greedy: bool) -> str:
    return _fingerprint([], {}, greedy)


def _curated_skip(messages: list[dict], last_user: int, params: SamplingParams, allowed: frozenset[str]) -> str | None:
    for i, m in enumerate(messages):
        if i == last_user:
            continue
        if m.get("role") in INSTRUCTION_ROLES:
            if normalise_text(_text(m.get("content"))) not in allowed:
                return "system_message"
        else:
            return "earlier_turns"
    if params.extra.get("tools") or params.extra.get("functions"):
        return "tools"
    if params.extra.get("response_format") not in TEXT_FORMATS:
        return "response_format"
    return None


def _text(content: object) -> str:
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


def flight_key(tenant: str, model: str, prompt: str, context: CacheContext, store: bool) -> str:
    """Identical misses in flight share one LLM call: the stored answer's key, plus exact length and stops."""
    blob = json.dumps(
        [tenant, model, normalise_text(prompt), context.fingerprint, context.max_tokens, context.stops, store],
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
