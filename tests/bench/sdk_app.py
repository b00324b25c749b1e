"""The SDK's own session manager (`MCPServer.streamable_http_app()`) under hypercorn's trio worker.

`python -m tests.bench.sdk_app --bind 127.0.0.1:PORT [--json-response]`; idle timeout and the
session cap are off so that 10,000 sessions fit, exactly as for our server in the benchmark.
"""

from __future__ import annotations

import argparse
import functools
import signal
from collections.abc import Sequence

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from tests.bench.bench_server import server


async def wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--json-response", action="store_true")
    options = parser.parse_args(argv)
    app = server.streamable_http_app(
        json_response=options.json_response, session_idle_timeout=None, max_sessions=None
    )
    config = Config()
    config.bind = [options.bind]
    config.accesslog = None
    config.graceful_timeout = 3.0
    trio.run(functools.partial(serve, app, config, shutdown_trigger=wait_for_signal))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
