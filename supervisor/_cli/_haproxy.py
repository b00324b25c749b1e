"""`mcp-supervisor haproxy-config`: an HAProxy configuration for a cluster of nodes.

A request that names a session goes to the node its id names (`<node-id>.<hex>`) while that
node is up; if it is down, to one node chosen from the id by a consistent hash, so a session's
requests keep landing on the same live node (which wakes it from the store). Requests without a
session (new sessions, 2026-07-28 stateless calls) are balanced over the ready nodes. A 503 of
ours means "not served, retry", so HAProxy retries it on another node.
"""

from __future__ import annotations

import argparse
from typing import Any

import attrs

from supervisor._core import check_node_id


@attrs.frozen
class NodeAddress:
    node_id: str = attrs.field(converter=check_node_id)
    address: str

    @classmethod
    def parse(cls, text: str) -> NodeAddress:
        """`ID=HOST:PORT`, or ValueError saying what is wrong."""
        node_id, equals, address = text.partition("=")
        host, colon, port = address.rpartition(":")
        if not equals or not colon or not host or not port.isdigit():
            raise ValueError(f"--node wants ID=HOST:PORT, got {text!r}")
        return cls(node_id, address)


@attrs.frozen(kw_only=True)
class HaproxyOptions:
    bind: str
    nodes: tuple[NodeAddress, ...]
    check_path: str = "/readyz"
    """Readiness: whether a node takes new sessions (503 while full or draining); with
    `?sessions=held`, whether it serves the sessions it holds (a full or draining node does)."""
    check_interval_ms: int = 500
    fall: int = 2
    rise: int = 2
    client_timeout: str = "1h"
    """Long enough for an SSE stream between two events."""
    private_paths: tuple[str, ...] = ("/admin", "/metrics")
    """Never answered through the balancer: the admin API and the metrics, each node's own."""

    def __attrs_post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("give at least one --node ID=HOST:PORT")
        ids = [node.node_id for node in self.nodes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"node ids must differ, got {', '.join(ids)}")


def haproxy_config(options: HaproxyOptions) -> str:
    """The whole configuration file, as text."""
    check = (
        f"inter {options.check_interval_ms}ms fastinter {options.check_interval_ms // 2}ms "
        f"fall {options.fall} rise {options.rise}"
    )
    lines = [
        "# Made by `mcp-supervisor haproxy-config`; see docs/scale-out.md.",
        "global",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        f"    timeout client {options.client_timeout}",
        f"    timeout server {options.client_timeout}",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 30s",
        "    # A check may wait this long for /readyz on a busy node (else the check interval bounds it).",
        "    timeout check 2s",
        "    option http-buffer-request",
        "    # Our 503 means 'not served': safe to send again, elsewhere.",
        "    retry-on conn-failure 503",
        "    retries 3",
        "    option redispatch 1",
        "    http-check expect status 200",
        f"    default-server {check}",
        "",
        *_frontend(options),
        "",
        "# A session's requests: to the node its id names while that node is up, else (or when",
        "# connecting to it fails) to the live node the consistent hash of the id picks.",
        "backend sessions",
        "    # Serving what it holds: a node that is full or draining still serves its sessions.",
        f"    option httpchk GET {options.check_path}?sessions=held",
        "    balance hdr(mcp-session-id)",
        "    hash-type consistent",
        "    http-request set-var(txn.home) req.hdr(mcp-session-id),field(1,.)",
    ]
    lines += [
        f"    use-server {node.node_id} if {{ var(txn.home) -m str {node.node_id} }}"
        for node in options.nodes
    ]
    lines += [f"    server {node.node_id} {node.address} check" for node in options.nodes]
    lines += [
        "",
        "# New sessions and 2026-07-28 stateless requests: over the ready nodes.",
        "backend ready_nodes",
        "    # Readiness: only nodes that take new sessions (not full, not draining).",
        f"    option httpchk GET {options.check_path}",
        "    balance leastconn",
    ]
    lines += [f"    server {node.node_id} {node.address} check" for node in options.nodes]
    return "\n".join(lines) + "\n"


def _frontend(options: HaproxyOptions) -> list[str]:
    """Where clients come in: each node's own paths answered here, forwarded headers made here."""
    return [
        "frontend mcp",
        f"    bind {options.bind}",
        *_private_paths(options.private_paths),
        *FORWARDED_HEADERS,
        "    acl has_session req.hdr(mcp-session-id) -m found",
        "    # Every node full or draining: a new session is told to come back, with the MCP error.",
        "    http-request return status 503 content-type application/json hdr Retry-After 1 "
        f"string '{BUSY_BODY}' if !has_session {{ nbsrv(ready_nodes) eq 0 }}",
        "    use_backend sessions if has_session",
        "    default_backend ready_nodes",
    ]


FORWARDED_HEADERS = (
    "    # Forwarded headers are the balancer's own: what a client sends in them is dropped.",
    "    http-request del-header X-Forwarded-For",
    "    http-request del-header X-Forwarded-Host",
    "    http-request del-header X-Forwarded-Proto",
    "    http-request del-header Forwarded",
    "    http-request del-header X-MCP-Supervisor-Forwarded-By",
    "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
    "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
    "    option forwardfor",
)
BUSY_BODY = (
    '{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Service Unavailable: '
    'every node is at its session cap or draining; retry"}}'
)
NOT_FOUND_BODY = '{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Not Found"}}'


def _private_paths(paths: tuple[str, ...]) -> list[str]:
    """The frontend's answer for each node's own paths: our JSON-RPC 404, never a node's."""
    if not paths:
        return []
    matches = " ".join(paths)
    return [
        "    # The admin API and the metrics are each node's own (its --admin-bind, a scrape of the",
        "    # node): never answered through the balancer.",
        "    # Decoded first, as the node decodes it (/%61dmin is /admin there too).",
        f"    acl private_path path,url_dec -m str {matches}",
        f"    acl private_path path,url_dec -m beg {' '.join(path + '/' for path in paths)}",
        "    http-request return status 404 content-type application/json "
        f"string '{NOT_FOUND_BODY}' if private_path",
    ]


def add_haproxy_command(commands: Any) -> None:
    """The `haproxy-config` subcommand, on the CLI's subparsers."""
    command = commands.add_parser("haproxy-config", help="print an HAProxy configuration for a cluster")
    command.add_argument("--bind", required=True, help="where HAProxy listens, HOST:PORT")
    command.add_argument(
        "--node", action="append", required=True, help="ID=HOST:PORT of a node; repeat for each"
    )
    command.add_argument("--check-path", default="/readyz", help="the nodes' readiness path (%(default)s)")
    command.add_argument(
        "--check-interval", type=int, default=500, help="milliseconds between checks (%(default)s)"
    )
    command.add_argument("--fall", type=int, default=2, help="failed checks before down (%(default)s)")
    command.add_argument("--rise", type=int, default=2, help="good checks before up (%(default)s)")
    command.add_argument(
        "--private-path",
        action="append",
        default=None,
        help="a path never routed to the nodes (default /admin and /metrics; repeat for more)",
    )


def options_of(options: argparse.Namespace) -> HaproxyOptions:
    """The parsed flags as options; ValueError (one line) for what is wrong."""
    host, colon, port = options.bind.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ValueError(f"--bind wants HOST:PORT, got {options.bind!r}")
    nodes = [NodeAddress.parse(text) for text in options.node]
    return HaproxyOptions(
        bind=options.bind,
        nodes=tuple(nodes),
        check_path=options.check_path,
        check_interval_ms=options.check_interval,
        fall=options.fall,
        rise=options.rise,
        private_paths=tuple(options.private_path or ("/admin", "/metrics")),
    )
