"""Which stored answers the upkeep evicts (pure logic): a tenant's quota first, then the global cap."""

from __future__ import annotations

from writing.adapters.milvus.answer_rows import evictions


def test_a_tenants_quota_evicts_only_its_own_least_recently_used():
    rows = [(1, 10, "b")] + [(t, 100 + t, "a") for t in range(2, 27)]  # b's one answer is the oldest of all
    gone = evictions(rows, max_entries=100, max_per_tenant=5)
    assert len(gone) == 20 and 10 not in gone and gone == [100 + t for t in range(2, 22)]


def test_the_global_cap_still_applies_after_the_quotas():
    rows = [(1, 1, "a"), (2, 2, "b"), (3, 3, "a"), (4, 4, "b"), (5, 5, "c")]
    assert evictions(rows, max_entries=3, max_per_tenant=0) == [1, 2]  # no quota: as before
    assert evictions(rows, max_entries=3, max_per_tenant=1) == [1, 2]  # a and b over their quota
    assert evictions(rows, max_entries=2, max_per_tenant=1) == [1, 2, 3]
    assert evictions(rows, max_entries=0, max_per_tenant=0) == []
