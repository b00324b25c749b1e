"""`mcp-supervisor sessions ...` against a served CLI with `--admin-token-file`: real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from tests.support.cli_process import ROOT, run_serve, serving
from tests.support.helpers import mcp_headers, open_session, rpc

TOKEN = "operator-token-0123456789"


def sessions(
    *args: str, token_file: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "supervisor", "sessions", *args]
    if token_file is not None:
        command += ["--token-file", str(token_file)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False, env=env)


async def test_list_show_kill_revoke_drain_and_stats(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")
    async with (
        serving("--admin-token-file", str(token_file)) as server,
        httpx.AsyncClient(timeout=10) as http,
    ):
        url = await server.url()
        base = url.removesuffix("/mcp")
        first, second = await open_session(http, url), await open_session(http, url)

        async def run(*args: str) -> subprocess.CompletedProcess[str]:
            return await trio.to_thread.run_sync(
                lambda: sessions(*args, "--url", base, token_file=token_file)
            )

        listed = await run("list")
        assert listed.returncode == 0, listed.stderr
        assert first in listed.stdout and second in listed.stdout and "2 of 2 session(s)" in listed.stdout
        assert listed.stdout.splitlines()[0].split()[:3] == ["SESSION", "PRINCIPAL", "STATE"]
        shown = await run("show", first, "--json")
        assert json.loads(shown.stdout)["id"] == first
        assert (await run("kill", second)).returncode == 0
        gone = await http.post(url, content=rpc("ping"), headers=mcp_headers(second))
        assert gone.status_code == 404
        unknown = await run("show", "0" * 32)
        assert unknown.returncode == 1 and unknown.stderr.startswith("mcp-supervisor: 404")
        assert json.loads((await run("revoke", "nobody", "--json")).stdout) == {"closed": 0}
        stats = json.loads((await run("stats", "--json")).stdout)
        assert stats["closed"] == {"killed": 1} and stats["live"] == 1
        assert (await run("drain")).returncode == 0
        assert (await http.get(base + "/readyz")).status_code == 503
        await server.wait_for(r"closed \(killed\)")
        assert any(f"admin: killed session {second}" in line for line in server.seen)
        # The token went nowhere near the server's output.
        assert not any(TOKEN in line for line in server.seen)


async def test_refusals_are_one_line_with_their_exit_code(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token-at-all-xx\n")
    right = tmp_path / "right"
    right.write_text(TOKEN)
    async with serving("--admin-token-file", str(right)) as server:
        base = (await server.url()).removesuffix("/mcp")
        refused = await trio.to_thread.run_sync(lambda: sessions("list", "--url", base, token_file=wrong))
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "mcp-supervisor: the admin token was refused (is the server started with --admin-token-file?)"
    ]
    unreachable = sessions("stats", "--url", "http://127.0.0.1:9", token_file=right)
    assert unreachable.returncode == 3 and unreachable.stderr.startswith("mcp-supervisor: cannot reach")
    no_token = sessions("stats", env={"PATH": ""})
    assert no_token.returncode == 2 and "MCP_SUPERVISOR_ADMIN_TOKEN" in no_token.stderr
    needs_id = sessions("show", token_file=right)
    assert needs_id.returncode == 2 and "needs a session id" in needs_id.stderr


def test_a_short_or_missing_admin_token_file_is_refused_at_start(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("abc")
    for path, said in [(short, "16 characters"), (tmp_path / "absent", "cannot read")]:
        result = run_serve("--admin-token-file", str(path))
        assert result.returncode == 2
        [line] = result.stderr.splitlines()
        assert said in line


async def test_the_admin_api_on_its_own_listener(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN)
    args = ("--admin-token-file", str(token_file), "--admin-bind", "127.0.0.1:0")
    async with serving(*args) as server, httpx.AsyncClient(timeout=10) as http:
        admin = (await server.wait_for(r"admin API on (\S+?)/admin")).group(1)
        url = await server.url()
        auth = {"authorization": f"Bearer {TOKEN}"}
        assert (await http.get(admin + "/admin/stats", headers=auth)).status_code == 200
        assert (await http.get(url.removesuffix("/mcp") + "/admin/stats", headers=auth)).status_code == 404
        assert (await http.get(admin + "/mcp", headers=auth)).status_code == 404
    result = run_serve("--admin-bind", "127.0.0.1:0")
    assert result.returncode == 2
    assert "--admin-bind needs --admin-token-file" in result.stderr


async def _answer_each(listener: trio.SocketListener, head: bytes, seen: list[bytes]) -> None:
    """A one-request-per-connection HTTP server: records each request, answers `head`."""
    while True:
        stream = await listener.accept()
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request and (chunk := await stream.receive_some(65536)):
                request += chunk
            seen.append(request)
            await stream.send_all(head)


async def test_a_redirect_is_not_followed_and_the_token_goes_nowhere_else(tmp_path: Path) -> None:
    right = tmp_path / "right"
    right.write_text(TOKEN)
    elsewhere: list[bytes] = []
    first: list[bytes] = []
    [other] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    [redirecting] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    other_port = other.socket.getsockname()[1]
    port = redirecting.socket.getsockname()[1]
    moved = (
        f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{other_port}/admin/stats\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()
    ok = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n{}"
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_answer_each, redirecting, moved, first)
        nursery.start_soon(_answer_each, other, ok, elsewhere)
        said = await trio.to_thread.run_sync(
            lambda: sessions("stats", "--url", f"http://127.0.0.1:{port}", token_file=right)
        )
        nursery.cancel_scope.cancel()
    assert said.returncode == 1
    [line] = said.stderr.splitlines()
    assert line.startswith("mcp-supervisor: 302: the server redirects to http://127.0.0.1:")
    assert "not followed" in line
    assert len(first) == 1 and TOKEN.encode() in first[0]
    assert elsewhere == [], "nothing, and no token, went to where the redirect pointed"
