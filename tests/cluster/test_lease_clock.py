"""Strict fencing's clock: a held lease lets its session go at 3/4 of its TTL unless made good
again (a renewal round or its own claim), on trio's mock clock."""

from __future__ import annotations

import trio
import trio.testing

from supervisor._cluster._leases import LeaseClock


async def test_leases_lapse_at_three_quarters_of_the_ttl_unless_renewed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    clock = LeaseClock(lease_ttl=4.0)
    held = {"s1": 1, "s2": 2, "new": 0}  # epoch 0: never written, so no lease anyone could take
    clock.renewed(start, ["s1", "s2"])
    lapsed: list[tuple[str, float]] = []

    def lapse(session_id: str) -> None:
        lapsed.append((session_id, trio.current_time() - start))
        del held[session_id]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(clock.watch, held, lapse)
        await trio.sleep(2.0)
        clock.renewed(trio.current_time(), ["s1", "s2"])  # both now good until 2 + 3
        await trio.sleep(1.5)
        held["s3"] = 3
        clock.claimed("s3", trio.current_time())  # claimed at 3.5: its own deadline, 6.5
        await trio.sleep(10.0)
        assert clock.overdue  # nothing renewed since 2.0
        nursery.cancel_scope.cancel()
    assert lapsed == [("s1", 5.0), ("s2", 5.0), ("s3", 6.5)]
    assert held == {"new": 0}


async def test_a_renewal_in_time_keeps_every_lease(autojump_clock: trio.testing.MockClock) -> None:
    clock = LeaseClock(lease_ttl=3.0)
    held = {"s1": 1}
    clock.renewed(trio.current_time(), ["s1"])
    lapsed: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(clock.watch, held, lapsed.append)
        for _ in range(20):  # a round every third of the TTL, as the renewer makes them
            await trio.sleep(1.0)
            clock.renewed(trio.current_time(), ["s1"])
        nursery.cancel_scope.cancel()
    assert lapsed == []
    assert not clock.overdue


async def test_a_session_that_ends_leaves_no_deadline_behind() -> None:
    clock = LeaseClock(lease_ttl=6.0)
    clock.claimed("s1", 1.0)
    assert clock.next_lapse() == 1.0 + 4.5
    clock.forget("s1")
    assert clock.next_lapse() is None
