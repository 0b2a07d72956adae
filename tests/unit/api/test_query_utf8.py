"""A prompt read from the query whose bytes are not UTF-8 (a GBK or Latin-1 client) is a 422 that says
so, not an answer to U+FFFD replacement characters (writing.validation.check_query_utf8)."""

from __future__ import annotations

import pytest

from writing.errors import InvalidRequest
from writing.validation import check_query_utf8

GBK_GUANGZHOU = b"%B9%E3%D6%DD"  # 广州 in GBK


@pytest.mark.parametrize(
    "query",
    [
        b"prompt=" + GBK_GUANGZHOU,
        b"a=1&prompt=" + GBK_GUANGZHOU + b"&b=2",
        b"prompt=%E5%B9%BF+%E5",  # UTF-8 cut short
        b"prompt=%ED%A0%80",  # a surrogate encoded as UTF-8 bytes: not UTF-8
        b"%70rompt=%FF",  # the name percent-encoded too
        b"prompt=ok&prompt=%FF",  # the last prompt= is the one the routes read
    ],
)
def test_a_prompt_whose_bytes_are_not_utf8_is_refused_with_what_to_fix(query):
    with pytest.raises(InvalidRequest, match="percent-encode the text's UTF-8 bytes"):
        check_query_utf8("\ufffd\ufffd", query)


@pytest.mark.parametrize(
    "prompt, query",
    [
        ("广州有什么好玩的", b"prompt=%FF"),  # no U+FFFD in the prompt: the query is not even read
        ("a \ufffd b", b"prompt=a+%EF%BF%BD+b"),  # U+FFFD sent as UTF-8: the caller's own text
        ("\ufffd", b"other=%FF&prompt=%EF%BF%BD"),  # another parameter's bytes are not the prompt's
        ("\ufffd", b""),  # the prompt came from a JSON body
        ("ok\ufffd", b"prompt=%FF&prompt=ok%EF%BF%BD"),  # the last prompt= is the one the routes read
    ],
)
def test_valid_utf8_and_prompts_from_elsewhere_pass(prompt, query):
    assert check_query_utf8(prompt, query) == prompt
