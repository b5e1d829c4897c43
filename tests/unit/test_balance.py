"""The share rule on real shared-memory slots, with the clock passed in."""

from __future__ import annotations

from hybridserve.worker.balance import DEFER_MAX_S, REFRESH_S, STALE_S, Share, slack
from hybridserve.worker.slots import BOOTING, DRAINING, READY, Slots

NOW = 1000.0


def sibling(
    slots: Slots, index: int, connections: int, *, state: int = READY, accepting: bool = True
) -> None:
    slots.write(index, beat=NOW, pid=100 + index, state=state, generation=1)
    slots.publish_load(index, connections, accepting)


def test_alone_a_worker_never_defers() -> None:
    share = Share(Slots(8), 0)
    assert not share.should_defer(1000, NOW)


def test_a_worker_over_its_share_defers_to_the_least_loaded_sibling() -> None:
    slots = Slots(8)
    sibling(slots, 1, 10)
    sibling(slots, 2, 3)
    share = Share(slots, 0)
    assert not share.should_defer(3, NOW)  # 3 < 3 + slack(3): ours to take
    assert share.should_defer(4, NOW)
    assert slack(32) == 3  # a 64-connection burst on 2 workers ends within 35 / 29


def test_siblings_that_cannot_take_it_are_not_waited_for() -> None:
    slots = Slots(8)
    sibling(slots, 1, 0, state=BOOTING)
    sibling(slots, 2, 0, state=DRAINING)
    sibling(slots, 3, 0, accepting=False)  # full: no room
    slots.write(4, beat=NOW - STALE_S - 1, pid=104, state=READY, generation=1)  # loop stuck
    slots.publish_load(4, 0, True)
    slots.publish_load(7, 0, True)  # the master's slot holds no worker
    assert not Share(slots, 0).should_defer(50, NOW)


def test_a_sibling_booting_at_the_last_look_is_looked_at_again_before_the_next_accept() -> None:
    slots = Slots(8)
    sibling(slots, 1, 0, state=BOOTING)
    share = Share(slots, 0)
    assert not share.should_defer(5, NOW)  # nobody ready: ours
    sibling(slots, 1, 0)  # ready a moment later, well within REFRESH_S
    assert share.should_defer(5, NOW + REFRESH_S / 100)  # a burst now is shared


def test_a_connection_nobody_else_takes_is_taken_after_a_while() -> None:
    slots = Slots(8)
    sibling(slots, 1, 0)
    share = Share(slots, 0)
    assert share.should_defer(5, NOW)
    assert share.should_defer(5, NOW + DEFER_MAX_S / 2)
    later = NOW + DEFER_MAX_S * 1.05
    assert not share.should_defer(5, later)
    share.taken()
    assert share.should_defer(6, later)  # the next connection: a new wait


def test_a_sibling_taking_connections_keeps_the_wait_going() -> None:
    slots = Slots(8)
    sibling(slots, 1, 0)
    share = Share(slots, 0)
    assert share.should_defer(5, NOW)
    slots.publish_load(1, 2, True)  # the sibling is working through the burst
    assert share.should_defer(5, NOW + DEFER_MAX_S * 1.05)


def test_a_cleared_slot_is_forgotten() -> None:
    slots = Slots(8)
    sibling(slots, 1, 0)
    share = Share(slots, 0)
    assert share.should_defer(5, NOW)
    slots.clear(1)  # the master reaped it
    assert not share.should_defer(5, NOW + 1)


def test_only_a_clear_excess_is_handed_over() -> None:
    slots = Slots(8)
    sibling(slots, 1, 0)
    share = Share(slots, 0)
    assert share.excess(64, NOW) == 32  # a new sibling: half of ours should move
    assert share.excess(2, NOW) == 0  # within what the accept rule allows: no churn
    slots.publish_load(1, 30, True)
    assert share.excess(30 + 2 * slack(30), NOW) == 0
    assert share.excess(40, NOW) == 5
    slots.publish_load(1, 0, False)  # the sibling has no room: keep ours
    assert share.excess(64, NOW) == 0


def test_without_room_a_connection_is_taken_only_when_no_sibling_has_room() -> None:
    slots = Slots(8)
    alone = Share(slots, 0)
    assert alone.may_take_when_full(500, NOW)  # no sibling: nobody else will take it
    sibling(slots, 1, 40, accepting=True)
    share = Share(slots, 0)
    assert not share.may_take_when_full(0, NOW)  # a sibling with room takes it
    sibling(slots, 1, 40, accepting=False)
    share = Share(slots, 0)
    assert share.may_take_when_full(40, NOW)  # both full: within our share
    assert not share.may_take_when_full(40 + slack(40), NOW)  # both full, we hold more
    sibling(slots, 1, 0, state=DRAINING, accepting=False)
    assert Share(slots, 0).may_take_when_full(500, NOW)  # a draining sibling doesn't count
