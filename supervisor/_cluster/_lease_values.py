"""What the store answers about ownership (a claim's outcome, a membership renewal's), and who
this process is in leases (`Holder`).

A lease's value is `"<node> <node epoch> <session epoch>"` (`_redis_scripts.py`): the node, the
process of it that holds the session (good while that process is the node's member), the session's
own epoch (it only grows).
"""

from __future__ import annotations

import enum
import secrets

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


@attrs.define
class Holder:
    """Who this process is in leases: `"<node> <node epoch>"`, and, after its membership lapsed,
    who it was before until every lease it holds has been moved over.

    A lapsed membership is set again under a new node epoch: a lease under the old one is then no
    longer good, so a node that read the membership as gone may take it, and this process takes
    back, one by one, only what nobody took (a check that replaces the old holder by the new
    one). Rejoining under the same epoch would let a claim that read the membership as gone win
    after this process's check had found the lease still its own: two holders.
    """

    node_id: str
    epoch: str = attrs.field(factory=lambda: secrets.token_hex(6))
    previous: str = ""
    """The holder before the last rejoin, until the check after it is done ('' for none). One
    only: after a second lapse before that check, leases still under the first are lost to this
    process (fenced, the safe side; scale-out.md)."""
    next_epoch: str = attrs.field(factory=lambda: secrets.token_hex(6))
    """The epoch offered when the membership is found lapsed (kept until adopted, so that a
    rejoin whose answer was lost is adopted on the next round, not taken for another process)."""

    @property
    def value(self) -> str:
        return f"{self.node_id} {self.epoch}"

    def rejoined(self) -> None:
        """The membership was set again under `next_epoch`."""
        self.previous = self.value
        self.epoch, self.next_epoch = self.next_epoch, secrets.token_hex(6)

    def checked(self) -> None:
        """Every held lease was checked after the rejoin: none is under the old holder any more."""
        self.previous = ""
