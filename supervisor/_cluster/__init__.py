"""The cluster layer: sessions as records in Redis, shared by the nodes of one cluster.

Everything that talks to Redis is in this package (coredis is imported nowhere else): the store and
its scripts, this node's leases, the record writer, the renewer and the listener (`Cluster`
composes them), claims on sessions held elsewhere, and the directory of node URLs. The supervisor
core above imports from here only.
"""

from supervisor._cluster._cluster_secret import ClusterSecret
from supervisor._cluster._directory import Directory, Forward
from supervisor._cluster._part import Cluster
from supervisor._cluster._redis_connect import open_store
from supervisor._cluster._redis_events import RedisEventStore
from supervisor._cluster._store_health import StoreUnavailable, or_none
from supervisor._cluster._store_settings import Fencing, RedisMode, StoreSettings
from supervisor._cluster._store_urls import redacted
from supervisor._cluster._terms import POLL, ClusterStats, Wake

__all__ = [
    "POLL",
    "Cluster",
    "ClusterSecret",
    "ClusterStats",
    "Directory",
    "Fencing",
    "Forward",
    "RedisEventStore",
    "RedisMode",
    "StoreSettings",
    "StoreUnavailable",
    "Wake",
    "open_store",
    "or_none",
    "redacted",
]
