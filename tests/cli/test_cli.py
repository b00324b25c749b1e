"""The `mcp-supervisor` command as a real process: serve, drain on SIGTERM, exit 0."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.support.cli_process import ROOT, ServerProcess, run_serve, serving, start
from tests.support.helpers import initialize_body, mcp_headers, messages_of, open_session, rpc


async def sigterm_during_a_slow_call(seconds: float, *args: str) -> tuple[ServerProcess, httpx.Response]:
    """Serve with `args`, start a `slow` call of `seconds` (id 11), SIGTERM once it runs; the
    server (still to be waited for) and the call's answer."""
    server = await start("tests.support.cli_target:server", *args)
    url = (await server.wait_for(r"serving MCP on (\S+)")).group(1)
    async with httpx.AsyncClient(timeout=30) as http:
        session_id = await open_session(http, url)
        responses: list[httpx.Response] = []

        async def call() -> None:
            body = rpc("tools/call", 11, {"name": "slow", "arguments": {"seconds": seconds}})
            responses.append(await http.post(url, content=body, headers=mcp_headers(session_id)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await server.wait_for("slow call started")
            server.process.send_signal(signal.SIGTERM)
    return server, responses[0]


async def test_sigterm_with_a_call_in_flight_returns_its_result_and_exits_0() -> None:
    server, response = await sigterm_during_a_slow_call(1.0)
    try:
        [answer] = [m for m in messages_of(response) if m.get("id") == 11]
        assert answer["result"]["content"][0]["text"] == "done after 1.0"
        with trio.fail_after(30):
            assert await server.process.wait() == 0
    finally:
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


@pytest.mark.parametrize("mode", [[], ["--json-response"]])
async def test_a_call_cut_off_at_the_end_of_the_grace_is_told_the_server_is_shutting_down(
    mode: list[str],
) -> None:
    server, response = await sigterm_during_a_slow_call(60.0, "--drain-grace", "0.2", *mode)
    try:
        assert response.status_code == 200
        [answer] = [m for m in messages_of(response) if m.get("id") == 11]
        assert answer["error"] == {"code": -32000, "message": "Server is shutting down"}
        await server.wait_for("1 cut off at its end")
        with trio.fail_after(30):
            assert await server.process.wait() == 0
    finally:
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


async def test_demo_server_is_the_default() -> None:
    server = await start()
    try:
        url = (await server.wait_for(r"serving MCP on (\S+)")).group(1)
        async with httpx.AsyncClient(timeout=30) as http:
            session_id = await open_session(http, url)
            body = rpc("tools/list", 1)
            listed = await http.post(url, content=body, headers=mcp_headers(session_id))
            names = {tool["name"] for tool in messages_of(listed)[-1]["result"]["tools"]}
            assert names == {"echo", "add", "sleep", "countdown"}
        server.process.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            assert await server.process.wait() == 0
    finally:
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


def test_more_than_one_worker_is_refused() -> None:
    result = run_serve("--workers", "2")
    assert result.returncode == 2
    assert "one process" in result.stderr
    assert "docs/scale-out.md" in result.stderr


async def test_the_banner_says_what_is_really_on() -> None:
    async with serving() as server:
        line = (await server.wait_for(r"mcp-supervisor \S+, server .*")).group(0)
    assert "idle timeout 1800 s" in line
    assert "auth: none" in line
    assert "hosts: 127.0.0.1:*, localhost:*, [::1]:*" in line


def test_a_bad_target_is_explained() -> None:
    result = run_serve("no_such_module:server")
    assert result.returncode == 2
    assert "cannot import 'no_such_module'" in result.stderr
    assert "Traceback" not in result.stderr


def test_direct_answers_are_on_unless_switched_off() -> None:
    from supervisor import load_target
    from supervisor._cli._flags import apply_options, build_parser

    served = load_target("supervisor.demo:server")
    default = apply_options(served, build_parser().parse_args(["serve"]))
    assert default.direct_answers
    off = apply_options(served, build_parser().parse_args(["serve", "--no-direct-answers"]))
    assert not off.direct_answers


def test_collector_tuning_freezes_the_start_up_heap() -> None:
    """In its own interpreter: freezing would change the test process's own collector."""
    probe = (
        "import gc; from supervisor._core import _gc_tuning as gc_tuning; gc_tuning.tune_for_serving(); "
        "print(gc.get_threshold(), gc.get_freeze_count() > 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["(50000,", "20,", "20)", "True"]


async def test_a_bundles_settings_are_honoured_and_a_flag_that_overrides_one_is_logged() -> None:
    async with serving("tests.support.cli_target:bundle") as server:
        url = await server.url()
        assert url.endswith("/bundle")
        async with httpx.AsyncClient(timeout=30) as http:
            opened = await http.post(url, content=initialize_body(), headers=mcp_headers())
            assert opened.headers["content-type"] == "application/json"
        assert not any("overrides" in line for line in server.seen)
    async with serving("tests.support.cli_target:bundle", "--path", "/other") as server:
        url = await server.url()
        assert url.endswith("/other")
        said = "\n".join(server.seen)
        assert "the command line overrides the target's path: '/bundle' -> '/other'" in said


START_UP_ERRORS = [
    (["--bind", "8000"], 2, "--bind '8000': expected HOST:PORT"),
    (["--bind", "127.0.0.1:99999"], 2, "the port must be a number from 0 to 65535"),
    (["--log-level", "verbose"], 2, "argument --log-level: invalid choice: 'verbose'"),
    (
        ["--path", "/metrics", "--metrics-path", "/metrics"],
        2,
        "--path and --metrics-path are both '/metrics': each needs a path of its own",
    ),
    # The flag the user gave is named, not only the default it collides with.
    (["--metrics-path", "/healthz"], 2, "--metrics-path and --health-path are both '/healthz'"),
    (
        ["--idle-timeout", "-5"],
        2,
        "--idle-timeout must be a positive, finite number, got -5.0 (0 disables it)",
    ),
    (
        ["--max-sessions", "-1"],
        2,
        "--max-sessions must be a positive, finite number, got -1 (0 removes the cap)",
    ),
    (["--no-such-flag"], 2, "unrecognized arguments: --no-such-flag"),
]


@pytest.mark.parametrize(
    ("args", "code", "line"), START_UP_ERRORS, ids=[" ".join(a) for a, _, _ in START_UP_ERRORS]
)
def test_a_start_up_error_is_one_line_and_an_exit_code(args: list[str], code: int, line: str) -> None:
    result = run_serve(*args)
    assert result.returncode == code
    [said] = result.stderr.splitlines()
    assert said.startswith("mcp-supervisor: ")
    assert line in said


async def test_a_port_in_use_is_one_line_and_exit_code_3() -> None:
    async with serving() as first:
        url = await first.url()
        taken = url.removeprefix("http://").split("/")[0]
        result = await trio.run_process(
            [sys.executable, "-m", "supervisor", "serve", "--bind", taken],
            cwd=ROOT,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 3
    said = result.stderr.decode()
    assert f"mcp-supervisor: cannot listen on {taken}: the address is already in use" in said.splitlines()
    assert "Traceback" not in said


async def test_of_two_binds_the_one_in_use_is_named() -> None:
    [free] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    free_bind = f"127.0.0.1:{free.socket.getsockname()[1]}"
    await free.aclose()
    async with serving() as first:
        taken = (await first.url()).removeprefix("http://").split("/")[0]
        result = await trio.run_process(
            [sys.executable, "-m", "supervisor", "serve", "--bind", free_bind, "--bind", taken],
            cwd=ROOT,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 3
    [said] = [line for line in result.stderr.decode().splitlines() if "cannot listen" in line]
    assert said == f"mcp-supervisor: cannot listen on {taken}: the address is already in use"


TARGET_FILES = {
    "broken_syntax.py": "def f(:\n    pass\n",
    "missing_dependency.py": "import json\nimport no_such_dep\n",
    "raises_at_import.py": "def helper():\n    raise RuntimeError('no config found')\n\n\nhelper()\n",
}


@pytest.mark.parametrize(
    ("target", "lines"),
    [
        (
            "broken_syntax:server",
            ["cannot import 'broken_syntax': SyntaxError: invalid syntax ({dir}/broken_syntax.py, line 1)"],
        ),
        (
            "missing_dependency:server",
            [
                "cannot import 'missing_dependency': ModuleNotFoundError: No module named 'no_such_dep'",
                'File "{dir}/missing_dependency.py", line 2, in <module>',
            ],
        ),
        (
            "raises_at_import.py",
            [
                "cannot import 'raises_at_import.py': RuntimeError: no config found",
                'File "{dir}/raises_at_import.py", line 5, in <module>',
                'File "{dir}/raises_at_import.py", line 2, in helper',
            ],
        ),
        ("../elsewhere", ["target '../elsewhere' is neither a module name (package.module) nor a .py file"]),
        ("./broken_syntax", ["target './broken_syntax' is a path without '.py': give the file"]),
    ],
)
def test_an_error_in_the_users_module_shows_their_frames_only_and_exit_2(
    tmp_path: Path, target: str, lines: list[str]
) -> None:
    for name, text in TARGET_FILES.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "serve", target],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    said = result.stderr
    assert said.startswith("mcp-supervisor: ")
    for line in lines:
        assert line.format(dir=tmp_path) in said, said
    # Neither our frames nor importlib's: only what the user can act on.
    assert "Traceback" not in said and "supervisor/" not in said and "importlib" not in said


async def test_a_second_ctrl_c_stops_at_once_without_a_traceback() -> None:
    server = await start("tests.support.cli_target:server", "--drain-grace", "600")
    try:
        url = await server.url()
        assert sum("Running on" in line for line in server.seen) == 1
        async with httpx.AsyncClient(timeout=30) as http:
            session_id = await open_session(http, url)

            async def call() -> None:
                body = rpc("tools/call", 11, {"name": "slow", "arguments": {"seconds": 600}})
                with contextlib.suppress(httpx.HTTPError):
                    await http.post(url, content=body, headers=mcp_headers(session_id))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                await server.wait_for("slow call started")
                server.process.send_signal(signal.SIGINT)
                await server.wait_for(r"stopping: draining 1 session\(s\), grace 600s; a second Ctrl-C")
                server.process.send_signal(signal.SIGINT)
                with trio.fail_after(30):
                    assert await server.process.wait() == 1
                nursery.cancel_scope.cancel()
        assert server.process.stderr is not None
        rest = (await server.process.stderr.receive_some(1 << 20)).decode(errors="replace")
        assert "Traceback" not in rest + "\n".join(server.seen)
    finally:
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


SERVER_FILE = """
from mcp.server.mcpserver import MCPServer

{name} = MCPServer("from-a-file")


@{name}.tool()
def hello() -> str:
    return "hi"
"""


async def test_a_file_target_finds_its_server_by_the_usual_names(tmp_path: Path) -> None:
    (tmp_path / "srv.py").write_text(SERVER_FILE.format(name="mcp"))
    async with serving(str(tmp_path / "srv.py")) as server:
        url = await server.url()
        async with httpx.AsyncClient(timeout=30) as http:
            opened = await http.post(url, content=initialize_body(), headers=mcp_headers())
            assert messages_of(opened)[0]["result"]["serverInfo"]["name"] == "from-a-file"
    (tmp_path / "none.py").write_text("x = 1")
    result = run_serve(str(tmp_path / "none.py"))
    assert result.returncode == 2
    [said] = result.stderr.splitlines()
    assert "defines no server named server, mcp, app" in said


async def test_scripts_serve_imports_from_the_callers_directory(tmp_path: Path) -> None:
    (tmp_path / "my_app.py").write_text(SERVER_FILE.format(name="server"))
    process = await trio.lowlevel.open_process(
        [str(ROOT / "scripts" / "serve"), "my_app:server", "--bind", "127.0.0.1:0"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    server = ServerProcess(process)
    try:
        url = await server.url()
        async with httpx.AsyncClient(timeout=30) as http:
            opened = await http.post(url, content=initialize_body(), headers=mcp_headers())
            assert opened.status_code == 200
    finally:
        process.terminate()
        with trio.fail_after(30):
            await process.wait()


async def test_a_request_waiting_on_a_kept_alive_connection_through_a_pause_is_answered() -> None:
    """Issue 23.5: a node paused (SIGSTOP) longer than hypercorn's default keep-alive (5 s) used to
    close the connection on waking, dropping the request already in its socket (or its answer,
    after it ran). Now the request is answered."""
    async with serving("--json-response") as server:
        url = await server.url()
        host, port = url.removeprefix("http://").split("/")[0].split(":")
        body = initialize_body()
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:

            async def answer() -> bytes:
                got = b""
                with trio.fail_after(20):
                    while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
                        chunk = await stream.receive_some(65536)
                        assert chunk, f"the connection was closed: {got!r}"
                        got += chunk
                return got

            await stream.send_all(head + body)
            assert (await answer()).startswith(b"HTTP/1.1 200")
            server.process.send_signal(signal.SIGSTOP)
            try:
                await stream.send_all(head + body)
                await trio.sleep(6.5)  # the pause itself: longer than hypercorn's default keep-alive
            finally:
                server.process.send_signal(signal.SIGCONT)
            assert (await answer()).startswith(b"HTTP/1.1 200")
