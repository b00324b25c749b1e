"""The command line of a cluster: `haproxy-config`, the store flags, node ids (real processes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from supervisor._core._ids import NODE_ID, default_node_id, mint_session_id
from tests.support.cli_process import run_command, run_serve, serving
from tests.support.helpers import open_session


def haproxy_config(*args: str) -> subprocess.CompletedProcess[str]:
    return run_command("haproxy-config", *args)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")
def test_haproxy_config_is_a_valid_configuration(tmp_path: Path) -> None:
    made = haproxy_config(
        "--bind", "0.0.0.0:8080", "--node", "n1=10.0.0.1:8000", "--node", "n2=10.0.0.2:8000"
    )
    assert made.returncode == 0, made.stderr
    assert "use-server n1 if { var(txn.home) -m str n1 }" in made.stdout
    assert "hash-type consistent" in made.stdout and "option httpchk GET /readyz" in made.stdout
    path = tmp_path / "haproxy.cfg"
    path.write_text(made.stdout)
    checked = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--bind", "8080", "--node", "a=h:1"], "--bind wants HOST:PORT"),
        (["--bind", "h:8080", "--node", "a=h"], "--node wants ID=HOST:PORT"),
        (["--bind", "h:8080", "--node", "a b=h:1"], "node id must be"),
        (["--bind", "h:8080", "--node", "a=h:1", "--node", "a=h:2"], "node ids must differ"),
    ],
)
def test_haproxy_config_refuses_bad_flags_in_one_line(args: list[str], said: str) -> None:
    made = haproxy_config(*args)
    assert made.returncode == 2
    assert said in made.stderr and len(made.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--redis-url", "http://x"], "--redis-url must be a redis://"),
        (["--redis-url", "redis://x", "--lease-ttl", "0"], "--lease-ttl must be a positive"),
        (["--redis-url", "redis://x", "--store-budget", "-1"], "--store-budget must be a positive"),
        (["--node-id", "no spaces"], "node id must be"),
        (["--node-id", "x" * 40], "node id must be"),
        (["--redis-url", "redis://x", "--fencing", "never"], "choose from 'available', 'strict'"),
        (["--redis-url", "redis://x", "--advertise-url", "10.0.0.1:8000"], "--advertise-url must be an http"),
        (
            ["--lease-ttl", "3"],
            "--lease-ttl says how nodes share sessions through Redis: give --redis-url too",
        ),
        (["--evict-after", "0"], "--evict-after says how nodes share sessions"),
        (
            ["--redis-url", "redis://x:26379", "--redis-mode", "sentinel"],
            "--redis-mode sentinel needs --redis-sentinel-master NAME",
        ),
        (
            ["--redis-url", "redis://x", "--redis-sentinel-master", "m"],
            "--redis-sentinel-master names a service of --redis-mode sentinel",
        ),
        (
            [
                "--redis-url",
                "unix:///run/redis.sock",
                "--redis-mode",
                "sentinel",
                "--redis-sentinel-master",
                "m",
            ],
            "--redis-mode sentinel takes a redis:// or rediss:// URL naming its sentinels",
        ),
        (
            [
                "--redis-url",
                "redis://a:26379,b:x/0",
                "--redis-mode",
                "sentinel",
                "--redis-sentinel-master",
                "m",
            ],
            "--redis-url names a host as 'b:x': give host:port, comma-separated",
        ),
        (
            ["--redis-url", "redis://:secret@a:6379,b:6379/0"],
            "--redis-url names several hosts (redis://***@a:6379,b:6379/0): only the sentinel mode",
        ),
        (
            ["--redis-url", "redis://x", "--redis-mode", "sharded"],
            "choose from 'standalone', 'sentinel', 'cluster'",
        ),
        (
            ["--redis-url", "unix:///run/redis.sock", "--redis-mode", "cluster"],
            "--redis-mode cluster takes a redis:// or rediss:// URL naming any node of the cluster",
        ),
        (["--redis-url", "redis://x", "--max-initialize-bytes", "0"], "--max-initialize-bytes must be"),
    ],
)
def test_bad_cluster_flags_are_one_line_and_exit_2(args: list[str], said: str) -> None:
    done = run_serve(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], lines


async def test_session_ids_carry_the_node_id_without_a_store() -> None:
    async with serving("--node-id", "edge-7") as server:
        url = await server.url()
        async with httpx.AsyncClient(timeout=30) as http:
            session_id = await open_session(http, url)
    node, _, random = session_id.partition(".")
    assert node == "edge-7" and len(random) == 32 and int(random, 16) >= 0


def test_node_ids() -> None:
    assert NODE_ID.fullmatch(default_node_id())
    minted = mint_session_id("n1")
    assert minted.partition(".")[0] == "n1" and minted != mint_session_id("n1")
