"""How one batch is cut into forward passes (``plan_passes``: pure logic, no model)."""

from __future__ import annotations

from writing.adapters.embedding.passes import plan_passes


def padded(groups: list[list[int]], lengths: list[int]) -> list[int]:
    return [len(g) * max(lengths[i] for i in g) for g in groups]


def test_similar_lengths_within_the_budget_or_no_budget_are_one_pass_in_length_order():
    lengths = [12, 9, 15, 9]
    assert plan_passes(lengths, 1024) == [[1, 3, 0, 2]]
    assert plan_passes([150] * 16, 0) == [list(range(16))]
    assert plan_passes([150, 12, 140], 0) == [[1, 2, 0]]
    assert plan_passes([], 1024) == []
    assert plan_passes([140, 131, 150, 137, 128, 145, 139, 142], 2048) == [[4, 1, 3, 6, 0, 7, 5, 2]]


def test_short_prompts_in_a_batch_of_passages_run_apart():
    lengths = [150, 12, 140, 9, 149, 15, 130, 11]
    groups = plan_passes(lengths, 2048)
    assert [sorted(g) for g in groups] == [[1, 3, 5, 7], [0, 2, 4, 6]]
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))


def test_every_row_is_in_exactly_one_pass_and_each_pass_keeps_to_the_budget():
    lengths = [150, 12, 140, 9, 149, 15, 130, 11, 145, 10, 138, 14, 147, 13, 133, 12]
    groups = plan_passes(lengths, 1024)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(size <= 1024 for size in padded(groups, lengths))
    assert set(groups[0]) == {i for i, n in enumerate(lengths) if n < 20}


def test_the_fewest_passes_the_budget_allows_with_the_largest_as_small_as_it_can_be():
    groups = plan_passes([140] * 16, 1024)  # 7 rows fit in one pass: 7 + 7 + 2 by greed
    assert max(len(g) for g in groups) == 6 and len(groups) == 3
    assert len(plan_passes([150] * 16, 2048)) == 2


def test_a_row_longer_than_the_budget_is_a_pass_alone():
    groups = plan_passes([512, 20, 30], 256)
    assert [0] in groups and sorted(i for g in groups for i in g) == [0, 1, 2]
