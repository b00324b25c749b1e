"""`mcp-supervisor sessions ...` against a served CLI with `--admin-token-file`: real processes."""

from __future__ import annotations

import json
import re
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
        header, *rows = listed.stdout.splitlines()[:3]
        assert header.split() == [
            "SESSION",
            "PRINCIPAL",
            "STATE",
            "AWAKE",
            "IN",
            "FLIGHT",
            "IDLE",
            "IN",
            "AGE",
        ]
        # Aligned columns, ages as durations (a just-opened session is seconds old).
        assert all(row.index("running") == header.index("STATE") for row in rows)
        assert all(re.search(r"\s\d+s$", row) for row in rows), rows
        shown = await run("show", first, "--json")
        assert json.loads(shown.stdout)["id"] == first
        readable = (await run("show", first)).stdout
        assert f"session:          {first}" in readable
        assert re.search(r"created:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+s ago\)", readable), readable
        assert re.search(r"principal:\s+-", readable)
        killed = await run("kill", second)
        assert killed.returncode == 0
        assert killed.stdout.strip() == f"session {second} killed (calls in flight were cancelled)"
        gone = await http.post(url, content=rpc("ping"), headers=mcp_headers(second))
        assert gone.status_code == 404
        unknown = await run("show", "0" * 32)
        assert unknown.returncode == 1 and unknown.stderr.startswith("mcp-supervisor: 404")
        assert json.loads((await run("revoke", "nobody", "--json")).stdout) == {"closed": 0}
        assert (await run("revoke", "nobody")).stdout.strip() == "revoked 'nobody': 0 session(s) closed"
        stats = json.loads((await run("stats", "--json")).stdout)
        assert stats["closed"] == {"killed": 1} and stats["live"] == 1
        summary = (await run("stats")).stdout
        assert summary.splitlines()[0].startswith("sessions: 1 live (1 running")
        assert "closed: killed 1" in summary and "{" not in summary
        assert re.search(r"durations:\n\s+METHOD\s+COUNT\s+MEAN\s+P50 <=\s+P99 <=", summary), summary
        metrics = await run("metrics")
        assert metrics.returncode == 0 and "mcp_sessions_closed_total" in metrics.stdout, metrics.stdout[:300]
        drained = await run("drain")
        assert drained.returncode == 0 and drained.stdout.startswith("draining: 1 live session(s)")
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


async def test_list_walks_every_page_and_a_limit_leaves_a_cursor(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN)
    async with (
        serving("--admin-token-file", str(token_file), "--max-sessions", "0") as server,
        httpx.AsyncClient(timeout=30) as http,
    ):
        url = await server.url()
        base = url.removesuffix("/mcp")
        opened: list[str] = []

        async def opener(count: int) -> None:
            for _ in range(count):
                opened.append(await open_session(http, url))

        async with trio.open_nursery() as outer:
            # A line per session on stderr: read it as it comes, or the full pipe blocks the server.
            outer.start_soon(server.drain)
            async with trio.open_nursery() as nursery:
                for _ in range(8):
                    nursery.start_soon(opener, 126)  # 1,008: more than the API's largest page (1,000)
            outer.cancel_scope.cancel()

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return sessions(*args, "--url", base, token_file=token_file)

        everything = json.loads((await trio.to_thread.run_sync(lambda: run("list", "--json"))).stdout)
        assert sorted(entry["id"] for entry in everything["sessions"]) == sorted(opened)
        assert everything["next_cursor"] is None
        table = (await trio.to_thread.run_sync(lambda: run("list"))).stdout
        assert table.splitlines()[-1] == "1008 of 1008 session(s)"
        some = await trio.to_thread.run_sync(lambda: run("list", "--limit", "1005"))
        assert some.stdout.splitlines()[-1] == "1005 of 1008 session(s) (more: --cursor 1005)"
        rest = json.loads(
            (await trio.to_thread.run_sync(lambda: run("list", "--cursor", "1005", "--json"))).stdout
        )
        assert len(rest["sessions"]) == 3 and rest["next_cursor"] is None


async def test_a_server_without_the_admin_api_is_named_as_such(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN)
    async with serving() as server:
        base = (await server.url()).removesuffix("/mcp")
        said = await trio.to_thread.run_sync(lambda: sessions("list", "--url", base, token_file=token_file))
    assert said.returncode == 1
    assert said.stderr.splitlines() == [
        f"mcp-supervisor: 404: {base}/admin is no admin API: serve with --admin-token-file, "
        "and with --admin-bind give that listener's URL as --url"
    ]


def test_flags_of_the_wrong_action_and_unknown_flags_name_the_sessions_help(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN)
    for args, said in [
        (["stats", "--limit", "3"], "mcp-supervisor: --limit is for sessions list only"),
        (["show", "x", "--scope", "cluster"], "mcp-supervisor: --scope is for sessions list only"),
        (["list", "--scope", "cluster", "--cursor", "5"], "it takes --limit only"),
        (["list", "--bogus"], "unrecognized arguments: --bogus (see mcp-supervisor sessions --help)"),
        (["list", "--limit", "0"], "must be a whole number of 1 or more"),
    ]:
        result = sessions(*args, token_file=token_file)
        assert result.returncode == 2, (args, result.stderr)
        [line] = result.stderr.splitlines()
        assert said in line, (args, line)
