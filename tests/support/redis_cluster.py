"""A Redis Cluster of three primaries on loopback ports (real redis-server processes, joined with
`redis-cli --cluster create`), for the nodes' `--redis-mode cluster`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import attrs
import trio

from tests.support.cluster import Redis, eventually, free_port


@attrs.define(eq=False)
class RedisCluster:
    workdir: Path
    tls: tuple[Path, Path] | None = None
    """A certificate and key: every shard serves TLS alone, and the cluster bus runs over TLS."""
    shards: list[Redis] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.shards = []
        for _ in range(3):
            shard = Redis(self.workdir, tls=self.tls)
            shard.extra = (
                *(("--tls-cluster", "yes") if self.tls is not None else ()),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{shard.port}.conf",
                "--cluster-node-timeout",
                "2000",
                # The bus port, else the port + 10000: in the kernel's ephemeral range.
                "--cluster-port",
                str(free_port()),
            )
            self.shards.append(shard)

    @property
    def url(self) -> str:
        """What a node is given as `--redis-url`: any one of the cluster's nodes."""
        return self.shards[0].url

    async def start(self) -> None:
        for shard in self.shards:
            await shard.start()
        addresses = [f"127.0.0.1:{shard.port}" for shard in self.shards]
        await trio.run_process(
            [
                *self.shards[0].cli(),
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            stdout=subprocess.DEVNULL,
        )

        async def ok() -> bool:
            infos = [await shard.command("CLUSTER", "INFO") for shard in self.shards]
            return all("cluster_state:ok" in info for info in infos)

        await eventually(ok, timeout=30.0)

    async def keys(self, pattern: str) -> list[str]:
        """Every key matching `pattern`, over the three shards."""
        found: list[str] = []
        for shard in self.shards:
            found += [key for key in (await shard.command("KEYS", pattern)).splitlines() if key]
        return found

    async def stop(self) -> None:
        for shard in self.shards:
            await shard.stop()
