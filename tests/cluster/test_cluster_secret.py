"""With a cluster secret, Redis access alone forges nothing a node trusts (issue 22.6).

A record edited in Redis (another principal put in) is no record; a message published by hand
(a revocation) is no message; an old signed message replayed is refused; the key rotates with
the old one still accepted. Real redis-server; the attack of the issue through real nodes.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import trio

from actors._record import Principal, new_record
from supervisor._cluster._cluster_secret import ClusterSecret
from supervisor._cluster._redis_connect import open_store
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_settings import StoreSettings
from tests.support.cli_process import run_serve
from tests.support.cluster import TOKENS, Redis, eventually, have_cluster_tools, running_cluster
from tests.support.helpers import initialize_body, mcp_headers, messages_of, rpc

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)

OLD = b"o" * 40
NEW = b"n" * 40
SID = "a." + "2" * 32


async def stores(stack: AsyncExitStack, redis: Redis, *keys: tuple[bytes, ...] | None) -> list[RedisStore]:
    opened = []
    for number, key in enumerate(keys):
        secret = ClusterSecret(key) if key is not None else None
        settings = StoreSettings(redis_url=redis.url, lease_ttl=5.0, secret=secret)
        opened.append(await stack.enter_async_context(open_store(settings, f"n{number}")))
    return opened


async def test_a_record_changed_in_redis_is_no_record_and_keys_rotate(redis: Redis) -> None:
    async with AsyncExitStack() as stack:
        old, rotated, new_only, none = await stores(stack, redis, (OLD,), (NEW, OLD), (NEW,), None)
        record = new_record(SID, Principal("alice"), {"protocolVersion": "2025-11-25", "capabilities": {}})
        assert await old.put(record, 0, 60) > 0
        assert (await rotated.load(SID))[0] == record, "the old key is still accepted while rotating"
        assert (await new_only.load(SID))[0] is None, "a key rotated out is not"
        assert (await none.load(SID))[0] == record, "a node without the secret reads it unchecked"
        stored = await redis.command("GET", f"mcp-supervisor:rec:{SID}")
        forged = stored.replace('"client_id":"alice"', '"client_id":"bob"')
        assert forged != stored
        await redis.command("SET", f"mcp-supervisor:rec:{SID}", forged)
        assert (await old.load(SID))[0] is None
        await redis.command("SET", f"mcp-supervisor:rec:{SID}", record.to_json())
        assert (await rotated.load(SID))[0] is None, "an unsigned record is refused too"
        assert old.health().refused == {"record": 1}
        assert rotated.health().refused == {"record": 1}
        assert new_only.health().refused == {"record": 1}


async def listen_for(store: RedisStore, count: int, seen: list[dict[str, object]]) -> None:
    async with store.listening() as messages:
        async for message in messages:
            seen.append(message)
            if len(seen) == count:
                return


async def test_a_hand_over_is_one_call_and_its_released_is_sealed(redis: Redis) -> None:
    """Issue 26.4: the holder of a session another node asked for writes the record, lets go of
    the lease and says "released" to that node in one script; the message is sealed with the
    cluster secret like any other, so the asker hears it."""
    async with AsyncExitStack() as stack:
        holder, asker = await stores(stack, redis, (NEW,), (NEW,))
        await holder.renew_member(take=True)
        record = new_record(SID, Principal("alice"), {"protocolVersion": "2025-11-25", "capabilities": {}})
        epoch = await holder.put(record, 0, ttl=60)
        seen: list[dict[str, object]] = []
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listen_for, asker, 1, seen)

                async def subscribed() -> bool:
                    return int((await redis.command("PUBSUB", "NUMSUB", asker.node_channel)).split()[-1]) >= 1

                await eventually(subscribed)
                before = sum(holder.health().operations.values())
                assert await holder.put(record, epoch, ttl=60, release=True, tell=asker.node_id) == epoch
                assert sum(holder.health().operations.values()) - before == 1
        assert [(m["op"], m["session"], m["from"]) for m in seen] == [("released", SID, holder.node_id)]
        assert await redis.command("EXISTS", f"mcp-supervisor:lease:{SID}") == "0"
        assert (await asker.load(SID))[0] == record
        assert asker.health().refused == {}


async def test_a_message_published_by_hand_or_replayed_is_refused(redis: Redis) -> None:
    async with AsyncExitStack() as stack:
        sender, receiver = await stores(stack, redis, (NEW,), (NEW, OLD))
        channel = receiver.cluster_channel
        seen: list[dict[str, object]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen_for, receiver, 2, seen)

            async def subscribed() -> bool:
                return int((await redis.command("PUBSUB", "NUMSUB", channel)).split()[-1]) >= 1

            await eventually(subscribed)
            forged = json.dumps(
                {"op": "revoke", "principal": {"client_id": "alice"}, "from": "x", "at": time.time()}
            )
            await redis.command("PUBLISH", channel, forged)
            stale = json.dumps(
                {"op": "revoke", "principal": {"client_id": "alice"}, "from": "x", "at": time.time() - 120}
            )
            await redis.command("PUBLISH", channel, ClusterSecret((NEW,)).seal(channel, stale))
            elsewhere = ClusterSecret((NEW,)).seal("another-channel", forged)
            await redis.command("PUBLISH", channel, elsewhere)
            await sender.publish(channel, {"op": "revoke", "principal": {"client_id": "bob"}})
            rotated_out = ClusterSecret((OLD,)).seal(channel, forged)
            await redis.command("PUBLISH", channel, rotated_out)
        assert [message["principal"] for message in seen] == [{"client_id": "bob"}, {"client_id": "alice"}]
        assert receiver.health().refused == {"message": 3}


def test_a_secret_file_is_checked_in_one_line(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("too-short\n")
    result = run_serve("--redis-url", "redis://127.0.0.1:1/0", "--cluster-secret-file", str(short))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "32 characters or more" in line and "too-short" not in line
    alone = run_serve("--cluster-secret-file", str(short))
    assert alone.returncode == 2 and "give --redis-url too" in alone.stderr
    assert "too-short" not in repr(ClusterSecret((b"x" * 40,)))


async def test_through_real_nodes_a_forged_principal_or_revocation_serves_nobody(tmp_path: Path) -> None:
    secret = tmp_path / "cluster-secret"
    secret.write_text("k" * 48 + "\n")
    secret.chmod(0o600)
    extra = ("--cluster-secret-file", str(secret))
    async with (
        running_cluster(tmp_path, count=2, extra=extra) as cluster,
        httpx.AsyncClient(timeout=20) as http,
    ):
        a, b = cluster.nodes
        alice = {"authorization": f"Bearer {TOKENS['alice']}"}
        bob = {"authorization": f"Bearer {TOKENS['bob']}"}
        opened = await http.post(a.url + "/mcp", content=initialize_body(), headers=mcp_headers(**alice))
        assert opened.status_code == 200
        sid = opened.headers["mcp-session-id"]
        done = await http.post(
            a.url + "/mcp", content=rpc("notifications/initialized", None), headers=mcp_headers(sid, **alice)
        )
        assert done.status_code == 202
        key = f"mcp-supervisor:rec:{sid}"
        stored = await cluster.redis.command("GET", key)
        assert stored.startswith("hmac1:")
        await cluster.redis.command("SET", key, stored.replace('"client_id":"alice"', '"client_id":"bob"'))
        await cluster.redis.command("DEL", f"mcp-supervisor:lease:{sid}")
        stolen = await http.post(b.url + "/mcp", content=rpc("ping", 5), headers=mcp_headers(sid, **bob))
        assert stolen.status_code == 404, "the edited record is no record: bob is served nothing"
        forged = json.dumps(
            {"op": "revoke", "principal": {"client_id": "alice"}, "from": "b", "at": time.time()}
        )
        assert int(await cluster.redis.command("PUBLISH", "mcp-supervisor:cluster", forged)) == 2
        call = rpc("tools/call", 6, {"name": "where", "arguments": {}})
        still = await http.post(a.url + "/mcp", content=call, headers=mcp_headers(sid, **alice))
        assert still.status_code == 200, still.text
        assert messages_of(still)[-1]["result"]["content"][0]["text"] == "a", "alice was not revoked"
        metrics = (await http.get(a.url + "/metrics", headers=alice)).text
        assert 'mcp_store_refused_total{kind="message"} 1.0' in metrics
        metrics_b = (await http.get(b.url + "/metrics", headers=bob)).text
        assert 'mcp_store_refused_total{kind="record"} 1.0' in metrics_b
        # Shared client params have a kind of their own (counted: tests/cluster/test_shared_params.py).
        assert 'mcp_store_refused_total{kind="params"} 0.0' in metrics_b


async def test_the_documented_acl_user_is_enough_for_a_node(redis: Redis) -> None:
    """scale-out.md's ACL line: a node works with it, and it reaches no other key."""
    rule = "on >acl-password-0123 ~mcp-supervisor:* &mcp-supervisor:* +@all -@admin -@dangerous"
    assert await redis.command("ACL", "SETUSER", "mcp", *rule.split()) == "OK"
    url = f"redis://mcp:acl-password-0123@127.0.0.1:{redis.port}/0"
    settings = StoreSettings(redis_url=url, lease_ttl=5.0, secret=ClusterSecret((NEW,)))
    async with open_store(settings, "n1") as store, open_store(settings, "n2") as other:
        record = new_record(SID, Principal("alice"), {"protocolVersion": "2025-11-25", "capabilities": {}})
        epoch = await store.put(record, 0, 60)
        assert epoch > 0
        assert (await other.load(SID))[0] == record
        assert (await other.claim(SID, ttl=60)).owner == "n1"
        assert await store.renew([(SID, epoch)], 60.0) == ([], [])
        assert await other.indexes.count_of(Principal("alice")) == 1
        seen: list[dict[str, object]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen_for, other, 1, seen)

            async def subscribed() -> bool:
                return int((await redis.command("PUBSUB", "NUMSUB", other.cluster_channel)).split()[-1]) >= 1

            await eventually(subscribed)
            await store.publish(store.cluster_channel, {"op": "revoke", "principal": {"client_id": "x"}})
        assert len(seen) == 1
        await store.forget(record)
    denied = await trio.run_process(
        [
            "redis-cli",
            "-p",
            str(redis.port),
            "--user",
            "mcp",
            "--pass",
            "acl-password-0123",
            "GET",
            "other:key",
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert b"NOPERM" in denied.stdout + denied.stderr


async def test_with_a_secret_a_node_url_written_in_redis_is_not_followed(redis: Redis) -> None:
    """A URL in Redis is where a node forwards requests, tokens and all: it is signed too."""
    from supervisor._cluster._directory import Directory

    async with AsyncExitStack() as stack:
        holder, asker = await stores(stack, redis, (NEW,), (NEW,))
        mine = Directory(holder, "http://127.0.0.1:1")
        with trio.move_on_after(0.2):
            await mine.run()
        theirs = Directory(asker, None)
        assert await theirs.url_of("n0") == "http://127.0.0.1:1"
        await redis.command("SET", "mcp-supervisor:url:n0", "http://evil.example")
        theirs.forget("n0")
        assert await theirs.url_of("n0") is None


async def test_a_record_copied_to_another_clusters_prefix_fails_its_check(redis: Redis) -> None:
    """Clusters sharing a Redis, each with its prefix: a record is signed with its key's full name."""
    secret = ClusterSecret((NEW,))
    ours = StoreSettings(redis_url=redis.url, lease_ttl=5.0, secret=secret)
    theirs = StoreSettings(redis_url=redis.url, lease_ttl=5.0, secret=secret, prefix="other")
    async with open_store(ours, "n1") as here, open_store(theirs, "n1") as there:
        record = new_record(SID, Principal("alice"), {"protocolVersion": "2025-11-25", "capabilities": {}})
        assert await here.put(record, 0, 60) > 0
        stored = await redis.command("GET", f"mcp-supervisor:rec:{SID}")
        await redis.command("SET", f"other:rec:{SID}", stored)
        assert (await there.load(SID))[0] is None
        assert there.health().refused == {"record": 1}
