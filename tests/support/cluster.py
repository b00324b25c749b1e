"""Real redis-server, haproxy and `mcp-supervisor serve` nodes on loopback ports of their own.

Each is a child process: a test stops, kills and restarts them as an operator (or a failure)
would. Nothing here waits by sleeping: every wait is for a port, a line or an answer.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import attrs
import httpx
import trio

from tests.support.cli_process import ROOT, ServerProcess

TOKENS = {"alice": "tok-alice", "bob": "tok-bob", "carol": "tok-carol"}
"""principal -> bearer token, for every node (`--auth-tokens-file`)."""
ADMIN_TOKEN = "admin-secret-token"
DEFAULT_TARGET = "tests.support.cluster_target:server"


def have_cluster_tools() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("haproxy") is not None


_HANDED_OUT: set[int] = set()
"""Ports `free_port` gave this test process: never the same one twice."""


def _below_ephemeral_range() -> range:
    """Ports under the kernel's ephemeral range: no outgoing connection's local port can take
    one of these between our probe and the server's bind (or a node's restart on it)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return range(0)
    return range(max(1024, low - 12000), low)


def free_port() -> int:
    candidates = _below_ephemeral_range()
    for _ in range(200):
        port = random.choice(candidates) if candidates else 0
        if port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = probe.getsockname()[1]
        _HANDED_OUT.add(chosen)
        return chosen
    raise AssertionError("no free loopback port found")


async def wait_for_port(port: int, process: trio.Process | None = None, timeout: float = 20.0) -> None:
    """Until something accepts connections on `port` (a backoff loop, not a synchronisation);
    an AssertionError at once if `process`, the one meant to listen there, has exited."""
    with trio.fail_after(timeout):
        while True:
            if process is not None and process.returncode is not None:
                raise AssertionError(f"exited with {process.returncode} before listening on {port}")
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Until `check()` is true: for what another process does in its own time (its answer is
    the event), asked again every 20 ms, failing after `timeout`."""
    with trio.fail_after(timeout):
        while not await check():  # noqa: ASYNC110 (the state is in another process)
            await trio.sleep(0.02)


@attrs.define
class Redis:
    """One redis-server: no persistence, its own port; stop and start it again on the same port."""

    workdir: Path
    port: int = attrs.field(factory=free_port)
    process: trio.Process | None = None
    extra: tuple[str, ...] = ()
    """More redis-server arguments (`--replicaof HOST PORT` for a replica)."""
    tls: tuple[Path, Path] | None = None
    """A certificate (its own CA) and its key: then TLS alone is served on `port`."""

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://127.0.0.1:{self.port}/0"

    def _listening(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        cert, key = (str(path) for path in self.tls)
        return [
            *("--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert, "--tls-key-file", key),
            *("--tls-ca-cert-file", cert, "--tls-auth-clients", "no"),
        ]

    def cli(self) -> list[str]:
        """redis-cli, talking to this server."""
        tls = ["--tls", "--cacert", str(self.tls[0])] if self.tls is not None else []
        return ["redis-cli", "-p", str(self.port), *tls]

    async def start(self) -> None:
        self.process = await trio.lowlevel.open_process(
            [
                "redis-server",
                *self._listening(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--dbfilename",
                f"dump-{self.port}.rdb",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
        )
        await wait_for_port(self.port, self.process)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None

    async def command(self, *args: str) -> str:
        done = await trio.run_process([*self.cli(), *args], capture_stdout=True, check=False)
        return done.stdout.decode().strip()


class StoreSet(Protocol):
    """Redis processes a test starts and stops as one (a Sentinel set, a Redis Cluster)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


StoreSetT = TypeVar("StoreSetT", bound=StoreSet)


@asynccontextmanager
async def started(store_set: StoreSetT) -> AsyncIterator[StoreSetT]:
    """`store_set` running for the block, stopped however it ends."""
    try:
        await store_set.start()
        yield store_set
    finally:
        await store_set.stop()


@attrs.define(eq=False)
class CutLink:
    """A network partition between one node and Redis: 127.0.0.1:`port` relayed to Redis, until cut.

    Cut, it forwards nothing either way but keeps every connection open, as a dropped link does:
    the node's calls go unanswered (each runs out its budget), and Redis still counts the node's
    pub/sub connection as subscribed, so other nodes cannot tell the node from a slow one.
    Mended, it closes what the cut left half-spoken, and the node reconnects.
    """

    target_port: int
    port: int = attrs.field(factory=free_port)
    is_cut: bool = False
    _links: set[trio.CancelScope] = attrs.field(factory=set)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        task_status.started()
        await trio.serve_listeners(self._relay, listeners)

    def cut(self) -> None:
        self.is_cut = True

    def mend(self) -> None:
        self.is_cut = False
        for link in list(self._links):
            link.cancel()

    async def _relay(self, client: trio.SocketStream) -> None:
        with trio.CancelScope() as link:
            self._links.add(link)
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
                async with client, upstream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, client, upstream)
                    nursery.start_soon(self._pump, upstream, client)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                self._links.discard(link)

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream) -> None:
        async for data in source:
            if not self.is_cut:
                await sink.send_all(data)
        raise trio.BrokenResourceError  # one side closed: the whole link goes


@attrs.define
class Node:
    """One `mcp-supervisor serve` node of the cluster."""

    node_id: str
    redis_url: str
    workdir: Path
    extra: Sequence[str] = ()
    target: str = DEFAULT_TARGET
    """What the node serves; any other target brings its own authentication (no tokens file)."""
    port: int = attrs.field(factory=free_port)
    admin_port: int = attrs.field(factory=free_port)
    admin_bind: bool = True
    """The admin API on a listener of its own; False: under /admin beside MCP."""
    advertise: bool = False
    """`--advertise-url`: other nodes forward this one's sessions' requests here."""
    server: ServerProcess | None = None
    drains: trio.Nursery | None = None
    """Where the task that keeps reading the node's stderr runs (the cluster's nursery)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout_path(self) -> Path:
        """Where the node's standard output goes (`--otel` with the console exporter writes there)."""
        return self.workdir / f"node-{self.node_id}.out"

    async def start(self) -> None:
        tokens = self.workdir / "tokens"
        tokens.write_text("".join(f"{token} {who}\n" for who, token in TOKENS.items()))
        admin = self.workdir / "admin-token"
        admin.write_text(ADMIN_TOKEN)
        env = {**os.environ, "MCP_SUPERVISOR_NODE_ID": self.node_id}
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "supervisor",
                "serve",
                self.target,
                "--redis-url",
                self.redis_url,
                "--bind",
                f"127.0.0.1:{self.port}",
                *(["--auth-tokens-file", str(tokens)] if self.target == DEFAULT_TARGET else []),
                "--admin-token-file",
                str(admin),
                *(["--admin-bind", f"127.0.0.1:{self.admin_port}"] if self.admin_bind else []),
                *(["--advertise-url", self.url] if self.advertise else []),
                "--lease-ttl",
                "2",
                "--drain-delay",
                "1.5",
                "--drain-grace",
                "5",
                *self.extra,
            ],
            cwd=ROOT,
            stdout=self.stdout_path.open("ab"),  # nothing, unless a test asks for console spans
            stderr=subprocess.PIPE,
            env=env,
        )
        self.server = ServerProcess(process)
        await self.server.url()
        assert self.drains is not None
        # From here on its stderr is read as it comes: a full pipe would block the node's logging.
        self.drains.start_soon(self.server.drain)

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.process.returncode is None

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` and wait for the exit; the exit code."""
        assert self.server is not None
        process = self.server.process
        process.send_signal(sig)
        with trio.fail_after(30):
            code = await process.wait()
        return code

    @property
    def admin_url(self) -> str:
        """Where its admin API answers: its own listener, or beside MCP."""
        return f"http://127.0.0.1:{self.admin_port if self.admin_bind else self.port}"

    async def admin(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.admin_url) as client:
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            return await client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


@attrs.define
class Haproxy:
    """haproxy, configured by `mcp-supervisor haproxy-config` for the nodes."""

    nodes: Sequence[Node]
    workdir: Path
    port: int = attrs.field(factory=free_port)
    stats_port: int = attrs.field(factory=free_port)
    process: trio.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def servers_up(self, backend: str = "sessions") -> dict[str, bool]:
        """What haproxy's own stats say of each node's server in `backend` (`sessions`: live, for
        the sessions it holds; `ready_nodes`: taking new sessions)."""
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{self.stats_port}/stats;csv")
        seen: dict[str, bool] = {}
        for line in answer.text.splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == backend and fields[1] not in ("FRONTEND", "BACKEND"):
                seen[fields[1]] = fields[17].startswith("UP")
        return seen

    async def until(self, node_id: str, up: bool, backend: str = "sessions") -> None:
        """Until haproxy's checks have marked `node_id` up (or down) in `backend`."""
        with trio.fail_after(20):
            while (await self.servers_up(backend)).get(node_id) is not up:  # noqa: ASYNC110 (another process)
                await trio.sleep(0.05)

    async def start(self) -> None:
        args = ["haproxy-config", "--bind", f"127.0.0.1:{self.port}", "--check-interval", "200"]
        for node in self.nodes:
            args += ["--node", f"{node.node_id}=127.0.0.1:{node.port}"]
        made = await trio.run_process(
            [sys.executable, "-m", "supervisor", *args], cwd=ROOT, capture_stdout=True
        )
        config = self.workdir / "haproxy.cfg"
        stats = (
            f"\nlisten stats\n    bind 127.0.0.1:{self.stats_port}\n    stats enable\n    stats uri /stats\n"
        )
        config.write_bytes(made.stdout + stats.encode())
        log = self.workdir / "haproxy.log"
        self.process = await trio.lowlevel.open_process(
            ["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log.open("wb")
        )
        try:
            await wait_for_port(self.port, self.process)
        except (AssertionError, trio.TooSlowError) as failed:
            raise AssertionError(f"haproxy did not listen; it said:\n{log.read_text()}") from failed

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@attrs.define
class Cluster:
    redis: Redis
    nodes: list[Node]
    haproxy: Haproxy
    links: dict[str, CutLink] = attrs.field(factory=dict)
    """Per node id, the link its Redis connection goes through (`running_cluster(linked=...)`)."""

    def node(self, node_id: str) -> Node:
        return next(node for node in self.nodes if node.node_id == node_id)

    async def all_ready(self) -> None:
        """Until haproxy sees every running node up (its stats say so)."""
        for node in self.nodes:
            if node.running:
                await self.haproxy.until(node.node_id, up=True)


@asynccontextmanager
async def running_cluster(
    workdir: Path,
    count: int = 3,
    extra: Sequence[str] = (),
    target: str = DEFAULT_TARGET,
    linked: Sequence[str] = (),
    admin_bind: bool = True,
    advertise: bool = False,
    store: tuple[Redis, str] | None = None,
) -> AsyncIterator[Cluster]:
    """Redis, `count` nodes (a, b, c, ...) and haproxy in front, all stopped at the end. The nodes
    named in `linked` reach Redis through a `CutLink` each (`Cluster.links`). `store`: a Redis the
    caller runs (a Sentinel set's primary) and the URL the nodes are given instead (a sentinel)."""
    redis = store[0] if store is not None else Redis(workdir)
    if store is None:
        await redis.start()
    node_url = store[1] if store is not None else redis.url
    links = {node_id: CutLink(redis.port) for node_id in linked}
    names = [chr(ord("a") + index) for index in range(count)]
    nodes = [
        Node(
            name,
            links[name].url if name in links else node_url,
            workdir,
            extra,
            target,
            admin_bind=admin_bind,
            advertise=advertise,
        )
        for name in names
    ]
    haproxy = Haproxy(nodes, workdir)
    try:
        async with trio.open_nursery() as drains:
            for link in links.values():
                await drains.start(link.run)
            for node in nodes:
                node.drains = drains
            async with trio.open_nursery() as starting:
                for node in nodes:
                    starting.start_soon(node.start)
            await haproxy.start()
            cluster = Cluster(redis, nodes, haproxy, links)
            await cluster.all_ready()
            try:
                yield cluster
            finally:
                drains.cancel_scope.cancel()
    finally:
        await haproxy.stop()
        _print_logs(nodes)
        for node in nodes:
            if node.running:
                assert node.server is not None
                node.server.process.kill()
                await node.server.process.wait()
        if store is None:
            await redis.stop()


def _print_logs(nodes: Sequence[Node]) -> None:
    """Each node's stderr, for pytest to show when the test failed (captured otherwise)."""
    for node in nodes:
        if node.server is not None:
            print(f"----- node {node.node_id} -----", *node.server.seen[-300:], sep="\n")
