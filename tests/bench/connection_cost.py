"""What one idle keep-alive HTTP connection costs a server, with no session behind it.

`python -m tests.bench.connection_cost [N]`: starts the floor app (hypercorn's trio worker, no MCP)
and our server, opens N connections to each, sends one small POST on each and keeps them open,
and prints the server's RSS growth per connection. A real SDK client holds two such connections
for its whole session (its GET stream's and its POSTs'), so this is the floor under any server's
memory per idle real-client session (docs/benchmarks.md).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from tests.bench.client import free_port

HOST = "127.0.0.1"
BODY = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def post_once(connection: socket.socket) -> None:
    head = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(BODY)
    )
    connection.sendall(head + BODY)
    connection.recv(65536)


def per_connection(argv: list[str], port: int, count: int) -> float:
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection((HOST, port)).close()
                break
            except OSError:
                time.sleep(0.1)
        warm = [socket.create_connection((HOST, port)) for _ in range(20)]
        for connection in warm:
            post_once(connection)
        time.sleep(1.0)
        before = rss_kib(server.pid)
        held = [socket.create_connection((HOST, port)) for _ in range(count)]
        for connection in held:
            post_once(connection)
        time.sleep(2.0)
        return (rss_kib(server.pid) - before) / count
    finally:
        server.terminate()
        server.wait(30)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    count = int(args[0]) if args else 300
    for name, command in (
        ("floor (hypercorn, no MCP)", ["-m", "tests.bench.floor_app", "--bind"]),
        ("ours (no session)", ["-m", "supervisor", "serve", "tests.bench.bench_server:server", "--bind"]),
    ):
        port = free_port(HOST)
        cost = per_connection([sys.executable, *command, f"{HOST}:{port}"], port, count)
        print(f"{name}: {cost:.1f} KiB per idle keep-alive connection ({count} connections)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
