"""Test helpers for users and for us, in the spirit of `trio.testing`.

- `serve_for_test`: the supervisor under real hypercorn (trio) on an ephemeral loopback port;
- `FaultPlan`: kill, stop or crash a session actor at a named `FaultPoint`, deterministically;
- `check_quiescent`: nothing left running, queued or open, and the counts add up.
"""

from actors import FaultPoint, InjectedCrash
from supervisor.testing._checks import check_quiescent, check_stopped, settle
from supervisor.testing._fault_plan import FaultAction, FaultPlan, FaultRule, Hit
from supervisor.testing._serve import TestServer, serve_for_test

__all__ = [
    "FaultAction",
    "FaultPlan",
    "FaultPoint",
    "FaultRule",
    "Hit",
    "InjectedCrash",
    "TestServer",
    "check_quiescent",
    "check_stopped",
    "serve_for_test",
    "settle",
]
