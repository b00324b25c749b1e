"""A node's name, and session ids that carry it: `<node-id>.<128 random bits as hex>`.

The node part is a routing hint for the load balancer (HAProxy sends a session's requests to the
node its id names while that node is up); the random part keeps the id unguessable. Nothing
trusts the hint: which node serves a session is decided by its lease in the store.
"""

from __future__ import annotations

import re
import secrets
import socket

NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
"""What a node id may be: short, and safe in a session id, a Redis key and an HAProxy name."""


def check_node_id(node_id: str) -> str:
    """`node_id`, or ValueError saying what a node id may be."""
    if not isinstance(node_id, str) or NODE_ID.fullmatch(node_id) is None:
        raise ValueError(
            f"node id must be 1-32 letters, digits, '-' or '_' (starting with a letter or digit), "
            f"got {node_id!r}"
        )
    return node_id


def default_node_id() -> str:
    """A stable name from the host: its short hostname, cut to what a node id may be."""
    short = socket.gethostname().split(".")[0]
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", short).lstrip("-_")[:32]
    return cleaned or "node"


def mint_session_id(node_id: str) -> str:
    """A new session id homed on `node_id`."""
    return f"{node_id}.{secrets.token_hex(16)}"
