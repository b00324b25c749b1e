"""The session store's own rules against a real redis-server: claims, epochs, fencing, records.

Two `RedisStore`s on one Redis stand for two nodes. Whatever they race for, exactly one wins.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import attrs
import pytest
import trio

from actors import CloseReason
from actors._record import Principal, SessionRecord, new_record
from supervisor._cluster._claims import Claims
from supervisor._cluster._lease_values import Membership
from supervisor._cluster._leases import Leases
from supervisor._cluster._listener import Listener
from supervisor._cluster._redis_connect import open_store
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_health import StoreUnavailable
from supervisor._cluster._store_settings import StoreSettings
from supervisor._cluster._terms import Wake
from supervisor._cluster._writer import RecordWriter
from tests.support.cluster import CutLink, Redis, eventually, free_port, have_cluster_tools

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server"
)


@pytest.fixture
async def nodes(redis: Redis) -> AsyncIterator[list[RedisStore]]:
    settings = StoreSettings(redis_url=redis.url, lease_ttl=2.0)
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(open_store(settings, name)) for name in ("a", "b")]


def record(session_id: str = "a." + "1" * 32, who: str = "alice") -> SessionRecord:
    return new_record(session_id, Principal(who), {"protocolVersion": "2025-11-25", "capabilities": {}})


async def test_of_many_racing_claims_exactly_one_wins(nodes: list[RedisStore]) -> None:
    won: list[tuple[str, int]] = []

    async def claim(store: RedisStore) -> None:
        answer = await store.claim("s1", ttl=60)
        if answer.won:
            won.append((store.node_id, answer.epoch))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            for store in nodes:
                nursery.start_soon(claim, store)
    assert {node for node, _ in won} in ({"a"}, {"b"})
    assert {epoch for _, epoch in won} == {1}  # the winner's own repeats keep its epoch


async def test_a_steal_replaces_only_the_lease_it_saw_and_bumps_the_epoch(nodes: list[RedisStore]) -> None:
    a, b = nodes
    first = await a.claim("s2", ttl=60)
    refused = await b.claim("s2", ttl=60)
    assert first.won and not refused.won and refused.owner == "a"
    assert not (await b.claim("s2", ttl=60, replace="a 99")).won  # not what it saw: no steal
    stolen = await b.claim("s2", ttl=60, replace=refused.seen)
    assert stolen.won and stolen.epoch == first.epoch + 1
    # a's renewal now finds the lease lost: it must stop serving (fencing).
    assert await a.renew([("s2", first.epoch)], None) == (["s2"], [])
    assert await b.renew([("s2", stolen.epoch)], None) == ([], ["s2"])  # no record was ever written


async def test_a_record_is_written_only_under_its_lease(nodes: list[RedisStore]) -> None:
    a, b = nodes
    mine = record()
    epoch = await a.put(mine, 0, ttl=60)  # a new session: claimed as it is written
    assert epoch == 1
    assert await b.put(mine, 0, ttl=60) == 0  # someone else's new session: refused
    assert await b.put(mine, 7, ttl=60) == 0  # a stale epoch: refused
    loaded, owner = await b.load(mine.session_id)
    assert loaded == mine and owner == "a"
    assert await a.indexes.count_of(Principal("alice")) == 1
    await a.forget(mine)
    assert await b.load(mine.session_id) == (None, None)
    assert await a.indexes.count_of(Principal("alice")) == 0


async def test_a_first_write_tried_again_finds_its_own_lease(nodes: list[RedisStore], redis: Redis) -> None:
    """A new session's first write claims its lease. If that write landed but its answer never
    came back (a budget ran out on a busy node), the writer tries again with epoch 0: the lease
    is this process's own, so the write goes on under it, and the session is not taken for lost
    (the scale run fenced one of 100,000 sessions that way). Another node's, or another
    process's of the same node id, is still refused."""
    a, b = nodes
    mine = record("a." + "6" * 32)
    epoch = await a.put(mine, 0, ttl=60)
    again = attrs.evolve(mine, initialized=True)
    assert await a.put(again, 0, ttl=60) == epoch
    assert (await b.load(mine.session_id))[0] == again
    assert await b.put(mine, 0, ttl=60) == 0
    await redis.command("SET", f"mcp-supervisor:lease:{mine.session_id}", f"a other-process {epoch}")
    assert await a.put(mine, 0, ttl=60) == 0


async def test_a_client_id_finds_every_principal_it_came_with_on_any_node(nodes: list[RedisStore]) -> None:
    a, b = nodes
    u1, u2 = (Principal("acme", "https://issuer.example", user) for user in ("u1", "u2"))
    on_a = attrs.evolve(record("a." + "3" * 32), principal=u1)
    on_b = attrs.evolve(record("b." + "4" * 32), principal=u2)
    other = attrs.evolve(record("b." + "5" * 32), principal=Principal("zeta", None, "u1"))
    for store, mine in ((a, on_a), (b, on_b), (b, other)):
        assert await store.put(mine, 0, ttl=60)
    assert await a.principals_named("acme") == {u1, u2}
    await b.forget(on_b)
    assert await a.principals_named("acme") == {u1}
    assert await a.principals_named("nobody") == set()


async def test_many_records_load_in_one_round_trip(nodes: list[RedisStore]) -> None:
    a, b = nodes
    ids = [f"a.{digit * 32}" for digit in "678"]
    for sid in ids[:2]:
        assert await a.put(record(sid), 0, ttl=60)
    before = b.health().operations.get("load", 0)
    found = await b.load_many(ids)
    assert b.health().operations["load"] == before + 1
    assert [(loaded.session_id if loaded else None, owner) for loaded, owner in found] == [
        (ids[0], "a"),
        (ids[1], "a"),
        (None, None),
    ]
    listed = await b.listing.records(limit=10)
    assert {loaded.session_id for loaded, _ in listed} == set(ids[:2])


async def test_a_lapsed_lease_nobody_took_is_taken_back_on_renewal(
    nodes: list[RedisStore], redis: Redis
) -> None:
    a, _ = nodes
    claim = await a.claim("s3", ttl=60)
    await redis.command("DEL", "mcp-supervisor:lease:s3")  # as if it expired during an outage
    assert await a.renew([("s3", claim.epoch)], None) == ([], ["s3"])
    assert await redis.command("GET", "mcp-supervisor:lease:s3") == f"{a.holder} {claim.epoch}"


async def test_a_redis_that_lost_everything_keeps_the_holders_leases(
    nodes: list[RedisStore], redis: Redis
) -> None:
    a, _ = nodes
    mine = record("a." + "2" * 32)
    epoch = await a.put(mine, 0, ttl=60)
    await redis.command("FLUSHALL")  # as a restart without persistence
    lost, missing = await a.renew([(mine.session_id, epoch)], None)
    assert lost == [] and missing == [mine.session_id]  # the holder writes the record again
    assert await a.put(mine, epoch, ttl=60) == epoch


async def test_a_stopped_redis_is_reported_within_the_budget(redis: Redis) -> None:
    settings = StoreSettings(redis_url=redis.url, budget=0.2)
    async with open_store(settings, "a") as store:
        await store.ping()
        assert store.up
        await redis.stop()
        with trio.fail_after(2):
            with pytest.raises(StoreUnavailable):
                await store.ping()
        assert not store.up and store.health().errors == 1
        await redis.start()
        await store.ping()
        assert store.up


async def test_a_store_that_never_answers_counts_as_down_within_the_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A listener that accepts and never answers: Redis hung, or a black-holed network. coredis logs
    # the failed connection; a handler that renders its traceback slowly (the SDK's MCPServer
    # installs a rich one) must not hold the event loop inside the budget: the trace is dropped.
    port = free_port()
    listener = await trio.open_tcp_listeners(port, host="127.0.0.1")
    slow = _SlowOnTracebacks()
    logging.getLogger().addHandler(slow)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, _hang, listener)
            settings = StoreSettings(redis_url=f"redis://127.0.0.1:{port}/0", budget=0.3)
            async with open_store(settings, "a") as store:
                with trio.fail_after(3), pytest.raises(StoreUnavailable, match="within the budget"):
                    await store.ping()
            nursery.cancel_scope.cancel()
    finally:
        logging.getLogger().removeHandler(slow)
    failed = [each for each in caplog.records if each.name == "coredis"]
    assert failed and all(each.exc_info is None for each in failed)
    assert "Connection attempt failed" in failed[0].getMessage()


class _SlowOnTracebacks(logging.Handler):
    """A handler as slow as a rich traceback render on a busy machine, for records with one."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            time.sleep(4)


async def _hang(stream: trio.SocketStream) -> None:
    await trio.sleep_forever()


async def test_the_first_read_after_a_link_heals_is_answered_on_a_fresh_connection(redis: Redis) -> None:
    # Mending a cut link closes every connection the client still held, half-spoken; the read that
    # finds its connection closed is tried once more at once, so no request pays for the heal.
    async with trio.open_nursery() as nursery:
        link = CutLink(redis.port)
        await nursery.start(link.run)
        settings = StoreSettings(redis_url=link.url, budget=0.5)
        async with open_store(settings, "a") as store:
            sid = "a." + "3" * 32
            await store.put(record(sid), 0, ttl=60)
            link.cut()
            with pytest.raises(StoreUnavailable):
                await store.load(sid)
            errors = store.health().errors
            link.mend()
            for _ in range(20):  # every time, not by luck of timing
                found, _ = await store.load(sid)
                assert found is not None and found.session_id == sid
            assert store.up and store.health().errors == errors
        nursery.cancel_scope.cancel()


async def test_a_wake_after_redis_forgot_waits_for_the_holder_to_write_the_record_again(
    nodes: list[RedisStore], redis: Redis
) -> None:
    # Redis restarted without persistence: the holder writes its sessions again at its next
    # renewal round. A wake elsewhere in that moment waits for the write, not "retry".
    a, b = nodes
    held = record("a." + "4" * 32)
    epoch = await a.put(held, 0, ttl=60)
    claims = Claims(b, Leases(b.settings.lease_ttl), None)
    assert not await b.forgot_recently(3.0)  # b learns the cluster's marker
    await redis.command("FLUSHALL")
    outcome: list[object] = []
    async with trio.open_nursery() as nursery:

        async def wake() -> None:
            outcome.append(await claims.wake(held.session_id, held.principal))

        nursery.start_soon(wake)
        await trio.sleep(0.3)  # the holder's renewal round comes a moment later
        lost, missing = await a.renew([(held.session_id, epoch)], None)
        assert lost == [] and missing == [held.session_id]
        await a.put(held, epoch, ttl=60)
        await a.release(held.session_id, epoch)
    [woken] = outcome
    assert isinstance(woken, SessionRecord) and woken.session_id == held.session_id


async def test_a_nodes_membership_is_renewed_taken_back_and_superseded(
    nodes: list[RedisStore], redis: Redis
) -> None:
    """One key per node (issue 26): renewed by the node alone; found lapsed, it is set again and
    the node knows to check what it holds; another process of the same node id supersedes it."""
    a, b = nodes
    assert await a.renew_member(take=True) in (Membership.REJOINED, Membership.RENEWED)
    assert await a.renew_member() is Membership.RENEWED
    assert await b.member_epoch("a") == a.node_epoch
    await redis.command("DEL", "mcp-supervisor:member:a")  # lapsed (a pause, a cut link)
    assert await a.renew_member() is Membership.REJOINED
    async with open_store(StoreSettings(redis_url=redis.url), "a") as restarted:
        assert await restarted.renew_member(take=True) is Membership.REJOINED  # a new process of node a
        assert await a.renew_member() is Membership.SUPERSEDED
        await b.end_membership("a", a.node_epoch)  # an old epoch: nothing ends
        assert await b.member_epoch("a") == restarted.node_epoch
        await b.end_membership("a", restarted.node_epoch)
        assert await b.member_epoch("a") is None


@pytest.mark.parametrize("claim_lands_first", [False, True])
async def test_a_claim_that_read_the_holder_gone_never_makes_a_second_holder(
    nodes: list[RedisStore], redis: Redis, claim_lands_first: bool
) -> None:
    """a was paused: its membership lapsed, and b read it as gone. a comes back and checks what it
    holds while b's claim is on its way. Whichever lands first, one of them holds the session:
    a rejoins under a new node epoch and moves its leases over, so b's claim, which may replace
    only the lease it saw, either wins before a's check (a finds it lost) or not at all."""
    a, b = nodes
    await a.renew_member(take=True)
    await b.renew_member(take=True)
    mine = record("a." + "6" * 32)
    epoch = await a.put(mine, 0, ttl=60)
    await redis.command("DEL", "mcp-supervisor:member:a")
    seen = await b.claim(mine.session_id, ttl=60)
    assert not seen.won and await b.member_epoch("a") is None  # b reads a as gone
    old_epoch = a.node_epoch
    assert await a.renew_member() is Membership.REJOINED
    if claim_lands_first:
        taken = await b.claim(mine.session_id, ttl=60, replace=seen.seen)
        lost, _ = await a.renew([(mine.session_id, epoch)], 60)
    else:
        lost, _ = await a.renew([(mine.session_id, epoch)], 60)
        taken = await b.claim(mine.session_id, ttl=60, replace=seen.seen)
    assert taken.won is claim_lands_first
    assert lost == ([mine.session_id] if claim_lands_first else [])
    assert a.node_epoch != old_epoch and await b.member_epoch("a") == a.node_epoch
    if not claim_lands_first:
        # a's lease is under its new epoch: its writes go on, and b now sees a live holder.
        assert await redis.command("GET", f"mcp-supervisor:lease:{mine.session_id}") == f"{a.holder} {epoch}"
        assert await a.put(mine, epoch, ttl=60) == epoch
        again = await b.claim(mine.session_id, ttl=60)
        assert not again.won and again.owner_epoch == await b.member_epoch("a")


async def test_until_its_check_a_rejoined_node_writes_claims_and_frees_under_either_epoch(
    nodes: list[RedisStore], redis: Redis
) -> None:
    a, _ = nodes
    await a.renew_member(take=True)
    mine, other = record("a." + "7" * 32), record("a." + "8" * 32)
    epoch = await a.put(mine, 0, ttl=60)
    other_epoch = await a.put(other, 0, ttl=60)
    await redis.command("DEL", "mcp-supervisor:member:a")
    assert await a.renew_member() is Membership.REJOINED  # its leases are still under the old epoch
    assert await a.put(mine, epoch, ttl=60) == epoch
    assert await redis.command("GET", f"mcp-supervisor:lease:{mine.session_id}") == f"{a.holder} {epoch}"
    claimed = await a.claim(other.session_id, ttl=60)
    assert claimed.won and claimed.epoch == other_epoch
    assert await a.release(other.session_id, other_epoch)


async def test_a_second_lapse_before_the_check_fences_what_is_still_under_the_first_epoch(
    nodes: list[RedisStore], redis: Redis
) -> None:
    """A node remembers one holder before its last rejoin. Lapsed twice before the check after the
    first rejoin ran, its leases still under the first node epoch are lost to it: the check
    fences them and another node may take them (the safe side: one holder, never two)."""
    a, b = nodes
    await a.renew_member(take=True)
    await b.renew_member(take=True)
    mine = record("a." + "9" * 32)
    epoch = await a.put(mine, 0, ttl=60)
    first = a.holder
    for _ in range(2):  # lapsed, rejoined, and lapsed again before any check
        await redis.command("DEL", "mcp-supervisor:member:a")
        assert await a.renew_member() is Membership.REJOINED
    assert await redis.command("GET", f"mcp-supervisor:lease:{mine.session_id}") == f"{first} {epoch}"
    lost, _ = await a.renew([(mine.session_id, epoch)], 60)
    assert lost == [mine.session_id]
    seen = await b.claim(mine.session_id, ttl=60)
    assert not seen.won and seen.seen == f"{first} {epoch}"  # a's first epoch: no member holds it
    assert await b.member_epoch("a") == a.node_epoch != first.split()[1]
    taken = await b.claim(mine.session_id, ttl=60, replace=seen.seen)
    assert taken.won
    assert await a.put(mine, epoch, ttl=60) == 0


async def test_a_rejoin_whose_answer_was_lost_is_adopted_next_round(
    nodes: list[RedisStore], redis: Redis
) -> None:
    a, _ = nodes
    await a.renew_member(take=True)
    # The rejoin's script ran (the membership is under the next epoch) but its answer never came.
    await redis.command("SET", "mcp-supervisor:member:a", a.identity.next_epoch, "PX", "60000")
    offered = a.identity.next_epoch
    assert await a.renew_member() is Membership.REJOINED  # not another process of node a
    assert a.node_epoch == offered
    assert await a.renew_member() is Membership.RENEWED


async def test_a_lease_of_a_process_that_is_no_member_is_taken_over_without_asking(
    nodes: list[RedisStore], redis: Redis
) -> None:
    """A lease is good while its holder's process is its node's member: once that membership is
    gone, another node's wake takes the lease at once (it does not wait for a dead node: the ask
    sent alongside the membership read goes unheard), and the old holder's check after its
    membership lapsed finds the lease lost."""
    a, b = nodes
    await a.renew_member(take=True)
    await b.renew_member(take=True)
    mine = record("a." + "3" * 32)
    epoch = await a.put(mine, 0, ttl=60)
    claims = Claims(b, Leases(b.settings.lease_ttl), record_keep=60.0)
    with trio.fail_after(1):  # a live holder would be asked, and wait for its answer
        await redis.command("DEL", "mcp-supervisor:member:a")
        before = sum(b.health().operations.values())
        assert isinstance(await claims.wake(mine.session_id, mine.principal), SessionRecord)
    assert claims.moved_in == 0
    # The one-call claim finds it held (and reads the record); then the holder's membership and
    # the ask, sent together; the claim that replaces the lease, reading the record again
    # (scale-out.md, "Time spent on Redis").
    assert sum(b.health().operations.values()) - before == 4
    assert await a.renew_member() is Membership.REJOINED
    assert await a.renew([(mine.session_id, epoch)], 60.0) == ([mine.session_id], [])


async def test_a_wake_of_a_session_nobody_holds_is_one_call(nodes: list[RedisStore], redis: Redis) -> None:
    """Issue 26.4: the lease and the record as it is once claimed, in one step. For another
    principal the lease goes straight back and the answer is "missing", as before."""
    a, b = nodes
    evicted = record("a." + "4" * 32)
    epoch = await a.put(evicted, 0, ttl=60)
    await a.release(evicted.session_id, epoch)  # as an eviction leaves it
    stranger = Claims(b, Leases(b.settings.lease_ttl), record_keep=60.0)
    assert await stranger.wake(evicted.session_id, Principal("mallory")) is Wake.MISSING
    assert await redis.command("EXISTS", f"mcp-supervisor:lease:{evicted.session_id}") == "0"
    claims = Claims(b, Leases(b.settings.lease_ttl), record_keep=60.0)
    before = sum(b.health().operations.values())
    woken = await claims.wake(evicted.session_id, evicted.principal)
    assert woken == evicted
    assert sum(b.health().operations.values()) - before == 1


class _Revoked:
    """The `Member` side of a node in these tests: it only says when a revocation reached it."""

    def __init__(self) -> None:
        self.reached = trio.Event()

    def fence(self, session_id: str) -> None:
        raise AssertionError(f"nothing is fenced here ({session_id})")

    async def release(self, session_id: str) -> None:
        raise AssertionError(f"nothing held here is asked for ({session_id})")

    async def revoke_here(self, principal: Principal) -> None:
        self.reached.set()

    def record_of(self, session_id: str) -> SessionRecord | None:
        return None


async def test_a_node_asked_for_a_session_whose_end_it_is_writing_says_released_once_written(
    nodes: list[RedisStore], redis: Redis
) -> None:
    """scale-out.md, "Move on demand": the ask finds the session ended here but its last record
    not written yet; the node says "released" to the asker in the write that lets it go, so the
    asker claims it then, not a fallback later, and finds the last record."""
    a, b = nodes
    leases = Leases(a.settings.lease_ttl)
    writer = RecordWriter(a, leases, idle_timeout=60.0, fence=lambda sid: None)
    listener = Listener(a, leases, writer, Claims(a, leases, record_keep=60.0))
    mine = record("a." + "7" * 32)
    leases.opened(mine.session_id)
    assert leases.written(mine.session_id, await a.put(mine, 0, ttl=60), trio.current_time())
    last = attrs.evolve(mine, initialized=True)
    writer.ended(last, CloseReason.EVICTED)  # queued: the writer's task does not run here
    member = _Revoked()
    seen_when_released: list[SessionRecord | None] = []

    async def asker() -> None:
        """Node b: what the store holds for the session the moment "released" reaches it."""
        async with b.listening() as messages:
            async for message in messages:
                if message.get("op") == "released":
                    seen_when_released.append((await b.load(mine.session_id))[0])
                    return

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.run, member, nursery)
            nursery.start_soon(asker)

            async def subscribed() -> bool:
                counts = (await redis.command("PUBSUB", "NUMSUB", a.node_channel, b.node_channel)).split()
                return counts[1::2] == ["1", "1"]

            await eventually(subscribed)
            await b.publish(a.node_channel, {"op": "release", "session": mine.session_id})
            # Messages reach a node in the order sent: once this one arrives, the ask has been heard.
            await b.publish(a.cluster_channel, {"op": "revoke", "principal": {"client_id": "nobody"}})
            await member.reached.wait()
            assert await writer.flush(2.0)
            while not seen_when_released:  # noqa: ASYNC110 (the asker fills it and returns)
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert seen_when_released == [last]
    assert (await b.load(mine.session_id))[0] == last
