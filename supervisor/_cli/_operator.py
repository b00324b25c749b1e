"""`mcp-supervisor sessions ...`: the operator's command line over a running server's admin API.

Plain HTTP through the standard library (a command runs one request and exits). The token comes
from `--token-file` or the environment (`MCP_SUPERVISOR_ADMIN_TOKEN`), never from a flag, so it
does not land in shell history or `ps`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from supervisor._cli._startup import EXIT_CANNOT_LISTEN, fail

TOKEN_VARIABLE = "MCP_SUPERVISOR_ADMIN_TOKEN"
EXIT_REFUSED = 1


def add_sessions_command(commands: Any) -> None:
    """The `sessions` subcommand and its actions, on the CLI's subparsers."""
    sessions = commands.add_parser("sessions", help="see and act on a running server's sessions")
    sessions.add_argument("action", choices=["list", "show", "close", "kill", "revoke", "drain", "stats"])
    sessions.add_argument(
        "subject", nargs="?", help="the session id (show, close, kill) or principal (revoke)"
    )
    sessions.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    sessions.add_argument("--token-file", help=f"file holding the admin token (else ${TOKEN_VARIABLE})")
    sessions.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    sessions.add_argument("--principal", help="list: only this principal's sessions")
    sessions.add_argument(
        "--state", help="list: only sessions in this state (running, draining, hibernating)"
    )
    sessions.add_argument(
        "--limit", type=int, default=100, help="list: at most this many (default %(default)s)"
    )


def run_sessions(options: argparse.Namespace) -> int:
    """Run one `sessions` action; print its answer; the exit code says how it went."""
    token = _token(options.token_file)
    method, path, body = _request_of(options)
    document = _call(options.url, method, path, token, body)
    if options.json:
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(_readable(options.action, document))
    return 0


def _token(token_file: str | None) -> str:
    if token_file is not None:
        try:
            lines = Path(token_file).read_text(encoding="utf-8").split()
        except OSError as error:
            fail(f"--token-file: cannot read {token_file}: {error.strerror}")
        if not lines:
            fail(f"--token-file: {token_file} is empty")
        return lines[0]
    token = os.environ.get(TOKEN_VARIABLE)
    if not token:
        fail(f"give the admin token with --token-file or ${TOKEN_VARIABLE}")
    return token


def _request_of(options: argparse.Namespace) -> tuple[str, str, bytes | None]:
    action, subject = options.action, options.subject
    needs_subject = action in ("show", "close", "kill", "revoke")
    if needs_subject and not subject:
        fail(f"sessions {action} needs a {'principal' if action == 'revoke' else 'session id'}")
    if not needs_subject and subject:
        fail(f"sessions {action} takes no {subject!r}")
    quoted = urllib.parse.quote(subject or "", safe="")
    if action == "list":
        query = {"limit": str(options.limit)}
        query.update({name: value for name in ("principal", "state") if (value := getattr(options, name))})
        return "GET", "/sessions?" + urllib.parse.urlencode(query), None
    if action in ("close", "kill"):
        mode = "graceful" if action == "close" else "kill"
        return "DELETE", f"/sessions/{quoted}?mode={mode}", None
    if action == "revoke":
        return "POST", "/revoke", json.dumps({"principal": subject}).encode()
    if action == "drain":
        return "POST", "/drain", b""
    return "GET", f"/sessions/{quoted}" if action == "show" else "/stats", None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered, never followed: the admin token goes to `--url` and nowhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _call(url: str, method: str, path: str, token: str, body: bytes | None) -> Any:
    request = urllib.request.Request(
        url.rstrip("/") + "/admin" + path,
        data=body,
        method=method,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        fail(_refused(error), EXIT_REFUSED)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        fail(f"cannot reach {url}: {reason}", EXIT_CANNOT_LISTEN)


def _refused(error: urllib.error.HTTPError) -> str:
    try:
        said = json.loads(error.read()).get("error", "")
    except (ValueError, AttributeError):
        said = ""
    if error.code == 401:
        return "the admin token was refused (is the server started with --admin-token-file?)"
    if 300 <= error.code < 400:
        where = error.headers.get("location", "elsewhere")
        return (
            f"{error.code}: the server redirects to {where[:200]}; not followed (the admin token goes "
            "only to --url): give the admin listener's own URL"
        )
    return f"{error.code}: {said or error.reason}"


def _readable(action: str, document: Any) -> str:
    if action == "list":
        rows = [_row(entry) for entry in document["sessions"]]
        header = ("SESSION", "PRINCIPAL", "STATE", "AWAKE", "IN FLIGHT", "IDLE IN", "CREATED")
        table = _table([header, *rows])
        more = (
            f"\n(more: --limit, or the API's next_cursor {document['next_cursor']})"
            if document["next_cursor"]
            else ""
        )
        return f"{table}\n{len(rows)} of {document['total']} session(s){more}"
    if action == "show":
        return "\n".join(f"{key}: {value}" for key, value in sorted(document.items()))
    if action == "stats":
        return "\n".join(f"{key}: {_flat(value)}" for key, value in sorted(document.items()))
    return json.dumps(document, sort_keys=True)


def _row(entry: dict[str, Any]) -> tuple[str, ...]:
    principal = entry["principal"]["client_id"] if entry["principal"] else "-"
    idle = entry["idle_deadline_in"]
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["created"]))
    idle_in = "-" if idle is None else f"{idle:.0f}s"
    return (
        entry["id"],
        principal,
        entry["state"],
        "yes" if entry["awake"] else "no",
        str(entry["in_flight"]),
        idle_in,
        created,
    )


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={count}" for key, count in sorted(value.items())) or "-"
    return str(value)
