"""Tests of the cluster (supervisor/_cluster/) against real redis-server, haproxy and nodes."""
