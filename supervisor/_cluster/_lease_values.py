"""What the store answers about ownership: a claim's outcome, a membership renewal's.

A lease's value is `"<node> <node epoch> <session epoch>"` (`_redis_scripts.py`): the node, the
process of it that holds the session (good while that process is the node's member), the session's
own epoch (it only grows).
"""

from __future__ import annotations

import enum

import attrs


@attrs.frozen(kw_only=True)
class Claim:
    """The answer to a claim: won or not, the lease's epoch, and who holds it."""

    won: bool
    epoch: int
    owner: str
    """The node that holds the lease."""
    owner_epoch: str
    """The process of that node (its membership epoch): the lease is good while it is a member."""
    seen: str
    """The lease's value as found: a steal may replace exactly this."""

    @classmethod
    def of(cls, won: object, epoch: object, value: object) -> Claim:
        owner, owner_epoch, _ = [*str(value).split(" "), "", "", ""][:3]
        return cls(
            won=bool(won),
            epoch=int(str(epoch)),
            owner=owner,
            owner_epoch=owner_epoch,
            seen="" if won else str(value),
        )


class Membership(enum.Enum):
    """What renewing a node's membership found."""

    RENEWED = "renewed"
    REJOINED = "rejoined"
    """It had lapsed (or Redis lost it): set again. Sessions taken meanwhile must be found."""
    SUPERSEDED = "superseded"
    """Another process of the same node id holds it: nothing this one holds is its own any more."""
