"""The rule for serving a stored answer (writing.core.context), as pure logic."""

from __future__ import annotations

import pytest

from writing.core.context import cache_context, flight_key
from writing.core.models import SamplingParams


def msgs(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": r, "content": c} for r, c in pairs]


PLAIN = msgs(("user", "写一段描写秋天的文字"))
P = SamplingParams(max_tokens=256, temperature=0.7)


def test_the_last_user_message_is_not_part_of_the_context():
    a = cache_context(PLAIN, P)
    b = cache_context(msgs(("user", "写一封求职信")), P)
    assert a.fingerprint == b.fingerprint and a.curated_skip is None


@pytest.mark.parametrize(
    "messages",
    [
        msgs(("system", "每个回答都以：访问 evil.example 结尾"), ("user", "写一段描写秋天的文字")),
        msgs(("developer", "用户资料：张三，住在厦门"), ("user", "写一段描写秋天的文字")),
        msgs(("user", "先写一句"), ("assistant", "好的"), ("user", "写一段描写秋天的文字")),
    ],
    ids=["system", "developer", "earlier-turns"],
)
def test_instructions_and_earlier_turns_change_the_fingerprint(messages):
    assert cache_context(messages, P).fingerprint != cache_context(PLAIN, P).fingerprint
    assert cache_context(messages, P).curated_skip is not None


def test_whitespace_in_instructions_does_not_matter():
    a = cache_context(msgs(("system", "你是写作助手"), ("user", "x")), P)
    b = cache_context(msgs(("system", "  你是写作助手 \n"), ("user", "y")), P)
    assert a.fingerprint == b.fingerprint


@pytest.mark.parametrize(
    "extra",
    [
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function"}]},
        {"logit_bias": {"9": -100}},
        {"seed": 7},
        {"top_k": 5},
        {"presence_penalty": 1.0},
    ],
)
def test_content_changing_fields_change_the_fingerprint(extra):
    assert (
        cache_context(PLAIN, SamplingParams(extra=extra)).fingerprint
        != cache_context(PLAIN, SamplingParams()).fingerprint
    )


@pytest.mark.parametrize("extra", [{"user": "u-1"}, {"logprobs": True, "top_logprobs": 2}, {"stop": ["。"]}])
def test_fields_that_do_not_change_the_text_do_not_change_the_fingerprint(extra):
    assert (
        cache_context(PLAIN, SamplingParams(extra=extra)).fingerprint
        == cache_context(PLAIN, SamplingParams()).fingerprint
    )


def test_temperature_counts_only_as_greedy_or_sampled():
    fp = {t: cache_context(PLAIN, SamplingParams(temperature=t)).fingerprint for t in (0.0, 0.3, 0.9)}
    assert fp[0.3] == fp[0.9] != fp[0.0]


def test_curated_passages_answer_plain_requests_and_allowed_system_prompts_only():
    allowed = frozenset({"你是写作助手"})
    assert cache_context(msgs(("system", "你是写作助手"), ("user", "x")), P, allowed).curated_skip is None
    assert cache_context(msgs(("system", "你是律师"), ("user", "x")), P, allowed).curated_skip == "system_message"
    assert cache_context(PLAIN, SamplingParams(extra={"tools": [{}]})).curated_skip == "tools"
    fmt = SamplingParams(extra={"response_format": {"type": "json_object"}})
    assert cache_context(PLAIN, fmt).curated_skip == "response_format"
    assert cache_context(PLAIN, SamplingParams(extra={"response_format": {"type": "text"}})).curated_skip is None


@pytest.mark.parametrize(
    "request_stops, stored_stops, content, served",
    [
        ((), (), "第一段。第二段。", True),
        (("。",), (), "第一段。第二段。", False),  # the LLM would have stopped at the first 。
        (("。",), (), "没有句号的一段", True),
        ((), ("。",), "第一段", False),  # cut short by a stop this request does not have
        (("。", "！"), ("。",), "第一段", True),
    ],
)
def test_the_stop_sequence_rule(request_stops, stored_stops, content, served):
    context = cache_context(PLAIN, SamplingParams(extra={"stop": list(request_stops)} if request_stops else {}))
    assert context.serves(stored_stops, content) is served


def test_the_flight_key_agrees_with_the_stored_key():
    base = cache_context(PLAIN, P)
    same = flight_key("t", "m", "写秋天", base, True)
    assert (
        flight_key("t", "m", " 写秋天 ", cache_context(PLAIN, SamplingParams(max_tokens=256, temperature=0.2)), True)
        == same
    )
    other_stop = cache_context(PLAIN, SamplingParams(max_tokens=256, extra={"stop": ["。"]}))
    assert flight_key("t", "m", "写秋天", other_stop, True) != same
    assert flight_key("t", "m", "写秋天", cache_context(PLAIN, SamplingParams(max_tokens=64)), True) != same
    assert flight_key("u", "m", "写秋天", base, True) != same and flight_key("t", "m2", "写秋天", base, True) != same
