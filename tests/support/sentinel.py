"""A Redis primary, a replica and three Sentinels on loopback ports (real redis-server processes,
`redis-server CONF --sentinel`), for the nodes' `--redis-mode sentinel`. A failover is fast here:
a primary unanswering for 1 s is down, and the replica is promoted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import attrs
import trio

from tests.support.cluster import Redis, free_port, wait_for_port

SERVICE = "mymaster"


@attrs.define(eq=False)
class Sentinels:
    workdir: Path
    tls: tuple[Path, Path] | None = None
    """A certificate and key: the primary, the replica and the sentinels serve TLS alone, and
    replication and the sentinels' own connections run over TLS."""
    primary: Redis = attrs.field(init=False)
    replica: Redis = attrs.field(init=False)
    ports: list[int] = attrs.field(init=False, factory=lambda: [free_port() for _ in range(3)])
    processes: list[trio.Process] = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        replication = ("--tls-replication", "yes") if self.tls is not None else ()
        self.primary = Redis(self.workdir, tls=self.tls, extra=replication)
        replica_of = ("--replicaof", "127.0.0.1", str(self.primary.port))
        self.replica = Redis(self.workdir, tls=self.tls, extra=(*replica_of, *replication))

    @property
    def url(self) -> str:
        """What a node is given as `--redis-url`: one sentinel."""
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.ports[0]}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def list_url(self, *dead: int) -> str:
        """A `--redis-url` naming a list of sentinels: the ports in `dead` (nothing listens there),
        then the three."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in (*dead, *self.ports))
        return f"redis://{hosts}/0"

    async def kill_sentinel(self, index: int) -> None:
        process = self.processes[index]
        process.kill()
        await process.wait()

    def _listening(self, port: int) -> str:
        if self.tls is None:
            return f"port {port}\n"
        cert, key = self.tls
        return (
            f"port 0\ntls-port {port}\ntls-cert-file {cert}\ntls-key-file {key}\n"
            f"tls-ca-cert-file {cert}\ntls-auth-clients no\ntls-replication yes\n"
        )

    async def start(self) -> None:
        await self.primary.start()
        await self.replica.start()
        for port in self.ports:
            config = self.workdir / f"sentinel-{port}.conf"
            config.write_text(
                f"{self._listening(port)}bind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            process = await trio.lowlevel.open_process(
                ["redis-server", str(config), "--sentinel"], stdout=subprocess.DEVNULL
            )
            self.processes.append(process)
            await wait_for_port(port, process)

    async def primary_port(self) -> int:
        """The primary the sentinels name now (asked of the first that still runs)."""
        tls = ["--tls", "--cacert", str(self.tls[0])] if self.tls is not None else []
        port = next(
            port for port, run in zip(self.ports, self.processes, strict=True) if run.returncode is None
        )
        done = await trio.run_process(
            ["redis-cli", "-p", str(port), *tls, "SENTINEL", "get-master-addr-by-name", SERVICE],
            capture_stdout=True,
            check=False,
        )
        return int(done.stdout.decode().split()[1])

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await self.replica.stop()
        await self.primary.stop()
