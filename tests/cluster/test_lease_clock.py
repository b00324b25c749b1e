"""Strict fencing's clock, one per node (issue 26): every held lease lets its session go at 3/4
of the membership's TTL unless a renewal made it good again; a record is kept again once near
its end; on trio's mock clock."""

from __future__ import annotations

import trio
import trio.testing

from supervisor._cluster._leases import Leases


async def test_every_lease_lapses_at_three_quarters_of_the_ttl_unless_renewed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    leases = Leases(lease_ttl=4.0)
    leases.won("s1", 1)
    leases.won("s2", 2)
    leases.opened("new")  # epoch 0: never written, so no lease anyone could take
    leases.renewed(start)
    lapsed: list[tuple[str, int, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            leases.watch, lambda sid, epoch: lapsed.append((sid, epoch, trio.current_time() - start))
        )
        await trio.sleep(2.0)
        leases.renewed(trio.current_time())  # good until 2 + 3
        await trio.sleep(1.5)
        leases.won("s3", 3)  # claimed at 3.5: it shares the node's deadline
        await trio.sleep(10.0)
        assert leases.overdue  # nothing renewed since 2.0
        nursery.cancel_scope.cancel()
    assert lapsed == [("s1", 1, 5.0), ("s2", 2, 5.0), ("s3", 3, 5.0)]
    assert "new" in leases and len(leases) == 1


async def test_a_renewal_in_time_keeps_every_lease(autojump_clock: trio.testing.MockClock) -> None:
    leases = Leases(lease_ttl=3.0)
    leases.won("s1", 1)
    leases.renewed(trio.current_time())
    lapsed: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(leases.watch, lambda sid, epoch: lapsed.append(sid))
        for _ in range(20):  # a round every third of the TTL, as the renewer makes them
            await trio.sleep(1.0)
            leases.renewed(trio.current_time())
        nursery.cancel_scope.cancel()
    assert lapsed == []
    assert not leases.overdue


async def test_a_lapse_then_a_renewal_arms_the_clock_again(autojump_clock: trio.testing.MockClock) -> None:
    leases = Leases(lease_ttl=4.0)
    leases.renewed(trio.current_time())
    lapsed: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(leases.watch, lambda sid, epoch: lapsed.append(sid))
        leases.won("s1", 1)
        await trio.sleep(5.0)  # lapsed at 3
        assert lapsed == ["s1"]
        leases.renewed(trio.current_time())
        leases.won("s2", 2)
        await trio.sleep(2.0)
        assert lapsed == ["s1"]
        await trio.sleep(2.0)  # 3 after the renewal at 5
        nursery.cancel_scope.cancel()
    assert lapsed == ["s1", "s2"]


async def test_records_are_kept_again_only_when_near_their_end() -> None:
    leases = Leases(lease_ttl=6.0)
    leases.opened("a")
    leases.opened("b")
    assert leases.written("a", 1, 10.0) and leases.written("b", 2, 20.0)
    assert leases.due_for_keep(kept_before=15.0) == [("a", 1)]
    assert leases.due_for_keep(kept_before=15.0) == []  # taken: kept again by the round that asked
    leases.kept("a", 30.0)
    leases.won("c", 5)  # a wake: kept at the next round, whatever the time
    assert leases.due_for_keep(kept_before=25.0) == [("c", 5), ("b", 2)]
    leases.drop("a")
    assert leases.due_for_keep(kept_before=1e9) == []  # a dropped session is never due
