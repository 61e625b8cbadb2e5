"""`InboxBounds.may_hold` never says "empty" for an interval a stored message could be in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hearth.storage.to_device import InboxBounds

positions = st.integers(min_value=0, max_value=50)


@given(newest=positions, acked=positions, after=positions, upto=positions, message=positions)
def test_a_possible_message_in_the_interval_means_maybe(
    newest: int, acked: int, after: int, upto: int, message: int
) -> None:
    # A message can only be stored above the acknowledged position and at or below the newest.
    if acked < message <= newest and after < message <= upto:
        assert InboxBounds(newest, acked).may_hold(after, upto)


def test_empty_cases() -> None:
    assert not InboxBounds(newest=0, acked=0).may_hold(0, 10)  # nothing ever stored
    assert not InboxBounds(newest=5, acked=5).may_hold(0, 10)  # everything acknowledged
    assert not InboxBounds(newest=5, acked=0).may_hold(5, 10)  # nothing newer than `after`
    assert not InboxBounds(newest=9, acked=4).may_hold(0, 4)  # the interval was acknowledged
    assert not InboxBounds(newest=9, acked=0).may_hold(3, 3)  # an empty interval
    assert InboxBounds(newest=9, acked=4).may_hold(0, 5)
