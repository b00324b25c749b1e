"""A `rediss://` store is verified as a TLS client verifies any server: chain and host name (22.7),
and a store URL's credentials never reach a log line or an error (22.8). Real redis-server."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import subprocess
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from supervisor import StoreSettings, SupervisorConfig, open_supervisor
from supervisor._cluster._redis_connect import open_store
from supervisor._cluster._store_health import StoreUnavailable
from supervisor._cluster._store_urls import SENTINEL_PORT, hosts_of, redacted
from tests.support.cli_process import run_serve
from tests.support.cluster import free_port, have_cluster_tools, wait_for_port
from tests.support.servers import build_server

needs_redis = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server"
)


def certificate(folder: Path, name: str, *, ip: bool) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for `name`: a DNS name, or an IP address."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    alternative = x509.IPAddress(ipaddress.ip_address(name)) if ip else x509.DNSName(name)
    now = datetime.datetime.now(datetime.UTC)
    built = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alternative]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / f"{name}.pem", folder / f"{name}.key"
    cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key_file


async def tls_redis(folder: Path, cert: Path, key: Path) -> tuple[trio.Process, int]:
    port = free_port()
    process = await trio.lowlevel.open_process(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-auth-clients",
            "no",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    await wait_for_port(port, process)
    return process, port


async def answers(url: str) -> bool:
    async with open_store(StoreSettings(redis_url=url), "n1") as store:
        try:
            await store.ping()
        except StoreUnavailable:
            return False
        return True


@needs_redis
async def test_a_tls_store_must_name_the_host_dialled(tmp_path: Path) -> None:
    wrong, wrong_key = certificate(tmp_path, "not-this-host.example", ip=False)
    process, port = await tls_redis(tmp_path, wrong, wrong_key)
    try:
        base = f"rediss://127.0.0.1:{port}/0"
        assert not await answers(f"{base}?ssl_ca_certs={wrong}"), "a certificate for another host"
        assert not await answers(base), "a CA the system does not trust"
        # Each check is turned off only by name.
        assert await answers(f"{base}?ssl_ca_certs={wrong}&ssl_check_hostname=false")
        assert await answers(f"{base}?ssl_cert_reqs=none")
    finally:
        process.kill()
        await process.wait()
    right, right_key = certificate(tmp_path, "127.0.0.1", ip=True)
    process, port = await tls_redis(tmp_path, right, right_key)
    try:
        assert await answers(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={right}")
    finally:
        process.kill()
        await process.wait()


def test_a_bad_tls_parameter_is_one_line() -> None:
    for query, said in (
        ("ssl_check_hostname=maybe", "ssl_check_hostname must be true or false"),
        ("ssl_cert_reqs=sometimes", "ssl_cert_reqs must be required, optional or none"),
    ):
        result = run_serve("--redis-url", f"rediss://127.0.0.1:1/0?{query}")
        assert result.returncode == 2
        [line] = result.stderr.splitlines()
        assert said in line


SECRET = "s3cret-Passw0rd"


def test_redacted_drops_every_credential() -> None:
    assert redacted(f"redis://user:{SECRET}@10.0.0.1:6379/0") == "redis://***@10.0.0.1:6379/0"
    assert redacted(f"redis://10.0.0.1/0?password={SECRET}&db=1") == "redis://10.0.0.1/0?password=***&db=1"
    assert SECRET not in redacted(f"rediss://:{SECRET}@h/0?ssl_check_hostname=false")


def test_a_sentinel_list_is_read_host_by_host() -> None:
    """What `--redis-url` names in the sentinel mode: a port left out is Sentinel's, IPv6 goes in
    brackets, the user info is no host; a bad entry is named (and nothing secret with it)."""
    url = f"redis://:{SECRET}@10.0.0.5,10.0.0.6:26380,[::1]:26381,[fe80::2]/0"
    assert hosts_of(url, SENTINEL_PORT) == [
        ("10.0.0.5", 26379),
        ("10.0.0.6", 26380),
        ("::1", 26381),
        ("fe80::2", 26379),
    ]
    for bad, entry in (("a:1,,b:2", ""), ("a:1,b:0", "b:0"), ("a:1,:2", ":2"), ("[::1]x", "[::1]x")):
        with pytest.raises(ValueError, match="give host:port, comma-separated") as raised:
            hosts_of(f"redis://:{SECRET}@{bad}/0", SENTINEL_PORT)
        assert repr(entry) in str(raised.value) and SECRET not in str(raised.value)


def test_a_bad_store_url_never_shows_its_password() -> None:
    for url in (f"http://user:{SECRET}@host/0", f"redis://host/0?password={SECRET}&ssl_cert_reqs=x"):
        result = run_serve("--redis-url", url.replace("redis://", "rediss://", 1))
        assert result.returncode == 2
        assert SECRET not in result.stdout + result.stderr
        with pytest.raises(ValueError) as raised:
            StoreSettings(redis_url=url.replace("redis://", "rediss://", 1))
        assert SECRET not in str(raised.value)


@needs_redis
async def test_the_start_up_line_and_every_log_record_keep_the_password_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    process = await trio.lowlevel.open_process(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--requirepass", SECRET],
        stdout=subprocess.DEVNULL,
    )
    try:
        await wait_for_port(port, process)
        for url in (f"redis://:{SECRET}@127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/0?password={SECRET}"):
            config = SupervisorConfig(store=StoreSettings(redis_url=url), node_id="n1")
            async with open_supervisor(build_server(), config) as supervisor:
                assert supervisor.store_up
                await supervisor.shutdown()
        wrong = f"redis://:wrong-{SECRET}@127.0.0.1:{port}/0"
        async with open_supervisor(
            build_server(), SupervisorConfig(store=StoreSettings(redis_url=wrong))
        ) as sup:
            await sup.shutdown()
    finally:
        process.kill()
        await process.wait()
    formatter = logging.Formatter("%(name)s %(message)s")
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "shares its sessions through redis://***@127.0.0.1" in logged
    assert SECRET not in logged


def test_require_store_refuses_to_start_without_redis_in_one_line() -> None:
    closed = free_port()
    result = run_serve("--redis-url", f"redis://:{SECRET}@127.0.0.1:{closed}/0", "--require-store")
    assert result.returncode == 3
    [line] = result.stderr.splitlines()[-1:]
    assert line == (
        f"mcp-supervisor: --require-store: the session store at redis://***@127.0.0.1:{closed}/0 "
        "did not answer within 0.5 s"
    )
    assert SECRET not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_lasting_outage_is_said_now_and_then_further_apart(caplog: pytest.LogCaptureFixture) -> None:
    from supervisor._cluster._terms import OutageNotice

    notice = OutageNotice()
    said = logging.getLogger("test.outage")
    for now in (1.0, 5.0, 10.0, 12.0, 29.0, 30.0, 60.0, 70.0, 800.0):
        notice.down(0.0, now, said)
    notice.up()
    notice.down(1000.0, 1010.0, said)
    lines = [r.getMessage() for r in caplog.records if r.name == "test.outage"]
    assert [line.split(" after ")[1].split(" s:")[0] for line in lines] == ["10", "30", "70", "800", "10"]
