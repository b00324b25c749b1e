"""The SDK's own Streamable HTTP tests, run three times: against the SDK's manager, against us, and
against us with every session hibernating after every request (each later request wakes it).

Both runs use the `mcp` release's source distribution (bodies unchanged; scripts/sdk-suite) on
anyio's trio backend. A test that passes against the SDK's own manager and was served by a
supervisor must pass against us too, unless `sdk_suite_plugin` lists it as not applicable (it
reaches into the SDK manager's internals) or as a deliberate difference (docs/conformance.md),
where it must still differ (strict xfail). The counts are printed for docs/conformance.md.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent.parent
RUNNER = ROOT / "scripts" / "sdk-suite"
FILES = [
    "tests/shared/test_streamable_http.py",
    "tests/server/test_streamable_http_manager.py",
    "tests/server/test_streamable_http_security.py",
    "tests/server/test_streamable_http_router.py",
    "tests/server/test_streamable_http_modern.py",
    "tests/client/test_streamable_http.py",
    "tests/client/test_http_unicode.py",
    "tests/issues/test_1363_race_condition_streamable_http.py",
    "tests/interaction/transports/test_streamable_http.py",
    "tests/interaction/transports/test_hosting_http.py",
    "tests/interaction/transports/test_hosting_http_modern.py",
    "tests/interaction/transports/test_hosting_session.py",
    "tests/interaction/transports/test_hosting_resume.py",
    "tests/interaction/transports/test_flows.py",
    "tests/interaction/transports/test_client_transport_http.py",
    "tests/interaction/transports/test_legacy_wire.py",
]
CELLS = ["tests/interaction/lowlevel", "tests/interaction/mcpserver"]
"""Of these, the stateful streamable-http cells of the transport matrix."""
AT_LEAST_PASSING = 375
"""Tests that pass through the supervisor today: a drop means tests silently stopped running."""


async def sdk_suite(*args: str, baseline: bool, report: Path, hibernate: bool = False) -> str:
    env = {
        **os.environ,
        "SDK_SUITE_REPORT": str(report),
        "SDK_SUITE_BASELINE": "1" if baseline else "0",
        "SDK_SUITE_HIBERNATE": "1" if hibernate else "0",
    }
    result = await trio.run_process(
        [str(RUNNER), "run", *args], cwd=ROOT, env=env, capture_stdout=True, capture_stderr=True, check=False
    )
    return result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")


def outcomes(report: Path) -> dict[str, dict[str, object]]:
    records = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    return {str(record["test"]): record for record in records}


async def test_the_sdks_own_suite_passes_against_us(tmp_path: Path) -> None:
    fetched = await trio.run_process([str(RUNNER), "fetch"], cwd=ROOT, capture_stderr=True, check=False)
    if fetched.returncode != 0:
        pytest.fail(f"could not fetch the SDK's source distribution:\n{fetched.stderr.decode()}")
    listing = await sdk_suite("--co", "-q", *CELLS, baseline=True, report=tmp_path / "listing.jsonl")
    cells = [line for line in listing.splitlines() if "[streamable-http-2" in line]
    assert len(cells) > 200, listing[-2000:]
    selection = [*FILES, *cells]
    flags = ["-o", "log_cli=false", "--tb=line", "-q"]
    theirs_log = await sdk_suite(*flags, *selection, baseline=True, report=tmp_path / "sdk.jsonl")
    ours_log = await sdk_suite(*flags, *selection, baseline=False, report=tmp_path / "ours.jsonl")
    theirs, ours = outcomes(tmp_path / "sdk.jsonl"), outcomes(tmp_path / "ours.jsonl")
    assert set(theirs) == set(ours), "the two runs collected different tests"

    kinds: Counter[str] = Counter()
    unexplained: list[str] = []
    for test, record in ours.items():
        outcome, served, before = record["outcome"], record["served"], theirs[test]["outcome"]
        if outcome == "skipped":
            kinds["not applicable (reaches into the SDK manager's internals; listed with the reason)"] += 1
        elif before != "passed":
            kinds["fails against the SDK's own manager on trio too"] += 1
        elif not served:
            kinds["not served by a supervisor (SDK client or transport internals, stateless mode)"] += 1
        elif outcome == "xfailed":
            kinds["deliberate difference (docs/conformance.md)"] += 1
        elif outcome == "passed":
            kinds["applicable and passing"] += 1
        else:
            unexplained.append(f"{test}: {outcome}")
    table = "\n".join(f"{count:5d}  {kind}" for kind, count in sorted(kinds.items()))
    print(f"\nthe SDK's own suite: {len(ours)} collected\n{table}")
    assert not unexplained, "unexplained differences:\n" + "\n".join(unexplained) + "\n\n" + ours_log[-6000:]
    assert kinds["applicable and passing"] >= AT_LEAST_PASSING, table + "\n" + theirs_log[-3000:]

    # Once more with every session hibernating as soon as nothing is in flight: each request after
    # the first wakes a fresh transport and loop from the record. Nothing may come out differently.
    asleep_log = await sdk_suite(
        *flags, *selection, baseline=False, hibernate=True, report=tmp_path / "asleep.jsonl"
    )
    asleep = outcomes(tmp_path / "asleep.jsonl")
    changed = sorted(
        f"{test}: {ours[test]['outcome']} -> {r['outcome']}"
        for test, r in asleep.items()
        if r["outcome"] != ours[test]["outcome"]
    )
    assert set(asleep) == set(ours) and not changed, "\n".join(changed) + "\n\n" + asleep_log[-6000:]
    print(f"hibernating after every request: {len(asleep)} tests, the same outcomes")
