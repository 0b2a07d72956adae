"""Validating passages before anything is embedded or stored."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"content": 3}, "'content' must be a non-empty string"),
        ({"content": "好", "biz_id": {"x": 1}}, "'biz_id' must be a string or an integer"),
        ({"content": "好", "biz_id": "x" * 300}, "longer than 256"),
        ({"content": "好" * 20000}, "the limit is 16000"),
    ],
)
def test_invalid_records_say_what_to_fix(record, message):
    from writing.core.corpus import InvalidPassage, make_passage

    with pytest.raises(InvalidPassage, match=message):
        make_passage(record)
