"""Whether Redis forgot the cluster: a marker key that a Redis restarted without persistence loses.

The first node to find the marker missing makes it; a node that finds another marker than the one
it knew (or none) knows Redis lost its data, and for a while an id with no record may be a live
session whose holder has not written it again yet. The first look only learns the marker.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

logger = logging.getLogger("supervisor._cluster")


class ForgetMarker:
    """One node's view of the cluster's marker key."""

    def __init__(
        self, key: str, node_id: str, client: Any, bounded: Callable[[str, Any], Awaitable[Any]]
    ) -> None:
        self._key = key
        self._node_id = node_id
        self._client = client
        self._bounded = bounded
        self._known: str | None = None
        self._forgot_at = -math.inf

    async def forgot_within(self, window: float) -> bool:
        """Whether this Redis forgot the cluster less than `window` seconds ago, as seen from here."""
        from coredis.tokens import PureToken

        ours = f"{self._node_id} {time.time()}"
        found = await self._bounded(
            "marker", self._client.set(self._key, ours, condition=PureToken.NX, get=True)
        )
        marker = found if isinstance(found, str) else ours
        if self._known is not None and marker != self._known:
            self._forgot_at = trio.current_time()
            logger.warning("the session store forgot this cluster (a restart without persistence?)")
        self._known = marker
        return trio.current_time() - self._forgot_at < window
