"""``last_value``: the lean lane's reading of ``?prompt=`` is Starlette's ``QueryParams.get`` exactly, for
any query string (a property test), while decoding the usual one in C."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from writing.api.query import last_value

# the bytes that matter to a query's reading, and some that do not
PIECES = st.sampled_from(
    [b"prompt", b"prompt=", b"%70rompt", b"pro+mpt", b"=", b"&", b"+", b"%", b"%2", b"%E5%86%99", b"%e5%86",
     b"%zz", b"%2B", b"%26", b"%3D", b"\\", b"\\x41", b"a", b"Z", b" ", b"\xe5\x86\x99", b"\xff", b"%00", b"%FF"]
)  # fmt: skip


def starlette(query: bytes) -> str | None:
    return QueryParams(query).get("prompt")


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=12).map(b"".join))
def test_any_query_reads_as_starlette_reads_it(query):
    assert last_value(query, b"prompt") == starlette(query)


@pytest.mark.parametrize(
    "query",
    [
        b"prompt=%E5%86%99%E4%B8%80%E7%AF%87",  # the usual: a Chinese prompt, escaped
        b"prompt=hello+world&x=1",
        b"prompt=a&prompt=b",  # the last one
        b"prompt",  # no "=": an empty prompt
        b"x=1",  # none
        b"",
        b"prompt=100%25",
        b"prompt=%E5%86",  # cut UTF-8: replacement characters
        b"prompt=%B9%E3%D6%DD",  # GBK: replacement characters (the routes then refuse it)
        b"prompt=50%",  # a bare "%": kept
        b"%70rompt=escaped+name",
        b"prompt=raw\xe5\x86\x99",  # raw non-ASCII: latin-1 characters, as unquote keeps them
        b"prompt=back\\slash\\x41",
    ],
)
def test_examples(query):
    assert last_value(query, b"prompt") == starlette(query)
