"""How many work items one claim takes, and when a claimed item's lease is renewed."""

from __future__ import annotations

from ferry.services.backfill.workitems import (
    CLAIM_DOCS,
    CLAIM_ITEMS,
    OPEN_END,
    WorkItem,
    claim_count,
    renewal_due,
)


def test_small_items_are_claimed_several_at_once_up_to_the_item_bound() -> None:
    assert claim_count([2] * 50, claimable=1000) == CLAIM_ITEMS
    assert claim_count([2] * 50, claimable=1000, most=3) == 3
    # Fewer candidates than the bound: all of them.
    assert claim_count([2] * 5, claimable=1000) == 5


def test_a_claim_holds_at_most_the_document_budget_and_always_one_item() -> None:
    # The first item alone is above the budget: it is still claimed, alone.
    assert claim_count([CLAIM_DOCS * 3, 1, 1], claimable=1000) == 1
    # Items are taken in claim order while they fit in the budget together.
    half = CLAIM_DOCS // 2
    assert claim_count([half, half, 1, 1], claimable=1000) == 2
    assert claim_count([half, half - 1, 1, 1], claimable=1000) == 3
    assert claim_count([], claimable=0) == 1


def test_a_claim_leaves_most_of_what_is_claimable_to_other_workers() -> None:
    # A quarter of the claimable items at most, but never none.
    assert claim_count([1] * 50, claimable=12) == 3
    assert claim_count([1] * 50, claimable=3) == 1
    assert claim_count([1] * 50, claimable=1) == 1


def item(lease_until: int) -> WorkItem:
    return WorkItem(id="i/0/0", index="i", target="t", shard=0, seq_from=0,
                    seq_to=OPEN_END, checkpoint=-1, lease_until=lease_until)


def test_a_waiting_claimed_item_is_renewed_once_half_its_lease_has_passed() -> None:
    lease = 60_000
    assert not renewal_due(item(lease_until=100_000 + lease), 100_000, lease)
    assert not renewal_due(item(lease_until=100_000 + lease // 2 + 1), 100_000, lease)
    assert renewal_due(item(lease_until=100_000 + lease // 2), 100_000, lease)
    assert renewal_due(item(lease_until=90_000), 100_000, lease)  # already over
