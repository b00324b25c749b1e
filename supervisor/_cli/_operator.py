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

from supervisor._cli._operator_views import (
    action_sentence,
    cluster_rows,
    session_detail,
    session_rows,
    stats_view,
)
from supervisor._cli._startup import EXIT_CANNOT_LISTEN, fail

TOKEN_VARIABLE = "MCP_SUPERVISOR_ADMIN_TOKEN"
EXIT_REFUSED = 1


def add_sessions_command(commands: Any) -> None:
    """The `sessions` subcommand and its actions, on the CLI's subparsers."""
    sessions = commands.add_parser(
        "sessions",
        help="see and act on a running server's sessions (its admin API)",
        description="See and act on a running server's sessions through its admin API "
        "(serve with --admin-token-file; with --admin-bind, give that listener as --url).",
    )
    sessions.add_argument("action", choices=ACTIONS)
    sessions.add_argument(
        "subject", nargs="?", help="the session id (show, close, kill) or principal (revoke)"
    )
    sessions.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    sessions.add_argument("--token-file", help=f"file holding the admin token (else ${TOKEN_VARIABLE})")
    sessions.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    sessions.add_argument("--principal", help="list: only this principal's sessions")
    sessions.add_argument(
        "--state", help="list: only sessions in this state (running, draining, hibernating, awake)"
    )
    sessions.add_argument(
        "--scope",
        choices=["node", "cluster"],
        default="node",
        help="list: this node's live sessions, or every session in the cluster's store",
    )
    sessions.add_argument(
        "--limit", type=_positive, default=None, help="list: at most this many (default: every page)"
    )
    sessions.add_argument("--cursor", help="list: start where a previous list stopped (its next cursor)")


ACTIONS = ["list", "show", "close", "kill", "revoke", "drain", "stats", "metrics"]


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {text!r}")
    return int(text)


def run_sessions(options: argparse.Namespace) -> int:
    """Run one `sessions` action; print its answer; the exit code says how it went."""
    _check(options)
    token = _token(options.token_file)
    if options.action == "list":
        document = _list(options, token)
    elif options.action == "metrics":
        print(_call(options.url, "GET", "/metrics", token, None, text=True), end="")
        return 0
    else:
        method, path, body = _request_of(options)
        document = _call(options.url, method, path, token, body)
    if options.json:
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(_readable(options, document))
    return 0


def _check(options: argparse.Namespace) -> None:
    action, subject = options.action, options.subject
    needs_subject = action in ("show", "close", "kill", "revoke")
    if needs_subject and not subject:
        fail(f"sessions {action} needs a {'principal' if action == 'revoke' else 'session id'}")
    if not needs_subject and subject:
        fail(f"sessions {action} takes no {subject!r}")
    listing = ("--principal", "--state", "--limit", "--cursor")
    given = [flag for flag in listing if getattr(options, flag[2:]) is not None]
    if action != "list" and (given or options.scope != "node"):
        fail(f"{(given or ['--scope'])[0]} is for sessions list only")
    if options.scope == "cluster" and (options.cursor or options.state or options.principal):
        fail("--scope cluster lists the store's records, one page: it takes --limit only")


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
    quoted = urllib.parse.quote(subject or "", safe="")
    if action in ("close", "kill"):
        mode = "graceful" if action == "close" else "kill"
        return "DELETE", f"/sessions/{quoted}?mode={mode}", None
    if action == "revoke":
        return "POST", "/revoke", json.dumps({"principal": subject}).encode()
    if action == "drain":
        return "POST", "/drain", b""
    return "GET", f"/sessions/{quoted}" if action == "show" else "/stats", None


def _list(options: argparse.Namespace, token: str) -> dict[str, Any]:
    """Every page of the listing (or `--limit` sessions), walked with the API's cursor."""
    if options.scope == "cluster":
        query = {"scope": "cluster", "limit": str(min(options.limit or PAGE, PAGE))}
        return dict(_call(options.url, "GET", "/sessions?" + urllib.parse.urlencode(query), token, None))
    query = {name: value for name in ("principal", "state") if (value := getattr(options, name))}
    sessions: list[Any] = []
    cursor, total = options.cursor, 0
    while True:
        wanted = PAGE if options.limit is None else min(PAGE, options.limit - len(sessions))
        page_query = {**query, "limit": str(wanted), **({"cursor": cursor} if cursor else {})}
        page = _call(options.url, "GET", "/sessions?" + urllib.parse.urlencode(page_query), token, None)
        sessions += page["sessions"]
        cursor, total = page["next_cursor"], page["total"]
        if cursor is None or (options.limit is not None and len(sessions) >= options.limit):
            break
    return {"sessions": sessions, "total": total, "next_cursor": cursor}


PAGE = 1000
"""The admin API's largest page."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered, never followed: the admin token goes to `--url` and nowhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _call(url: str, method: str, path: str, token: str, body: bytes | None, *, text: bool = False) -> Any:
    request = urllib.request.Request(
        url.rstrip("/") + "/admin" + path,
        data=body,
        method=method,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=30) as response:
            answer = response.read()
            return answer.decode() if text else json.loads(answer or b"null")
    except urllib.error.HTTPError as error:
        fail(_refused(error, url), EXIT_REFUSED)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        fail(
            f"cannot reach {url}: {reason} (is the server running? --url names its base URL)",
            EXIT_CANNOT_LISTEN,
        )


def _refused(error: urllib.error.HTTPError, url: str) -> str:
    try:
        said = json.loads(error.read()).get("error", "")
    except (ValueError, AttributeError):
        said = None
    if error.code == 401:
        return "the admin token was refused (is the server started with --admin-token-file?)"
    if 300 <= error.code < 400:
        where = error.headers.get("location", "elsewhere")
        return (
            f"{error.code}: the server redirects to {where[:200]}; not followed (the admin token goes "
            "only to --url): give the admin listener's own URL"
        )
    if not isinstance(said, str):
        # Not the admin API's own refusal (that is {"error": "..."}): something else answered.
        return (
            f"{error.code}: {url.rstrip('/')}/admin is no admin API: serve with --admin-token-file, "
            "and with --admin-bind give that listener's URL as --url"
        )
    return f"{error.code}: {said or error.reason}"


def _readable(options: argparse.Namespace, document: Any) -> str:
    now = time.time()
    action = options.action
    if action == "list":
        cluster = options.scope == "cluster"
        rows = (cluster_rows if cluster else session_rows)(document["sessions"], now)
        shown, total, cursor = len(document["sessions"]), document["total"], document["next_cursor"]
        more = f" (more: --cursor {cursor})" if cursor else ""
        if cluster and shown >= min(options.limit or PAGE, PAGE):
            more = " (the store may hold more: a cluster listing is one page)"
        return f"{rows}\n{shown} of {total} session(s){more}"
    if action == "show":
        return session_detail(document, now)
    if action == "stats":
        return stats_view(document)
    return action_sentence(action, options.subject, document)
