"""A secret the nodes of one cluster share, so that Redis access alone cannot forge what they trust.

With `--cluster-secret-file`, every session record a node writes and every message it publishes
(move, released, revoke) carries an HMAC-SHA256 over what it says and where it lives (the record's
session id, the message's channel). A node refuses, logs and counts whatever fails the check: a
record edited in Redis (another principal put in, say) is a session that is not there, a forged
revocation is no revocation. Messages also carry their sending time and are refused a minute
later, so an old one cannot be replayed.

The file holds the current key on its first line and, while keys rotate, the previous one on its
second: both are accepted, the first signs. Keys are never logged, shown or sent.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import attrs

SEALED = "hmac1:"
"""What a sealed value starts with, before its 64 hex digits and a colon."""
_MAC_LENGTH = 64
MIN_KEY = 32
"""Characters a key needs at least (a random 32-character key is 190 bits or more)."""
MESSAGE_WINDOW = 60.0
"""Seconds a signed message is good for after it was sent (clocks of nodes may differ a little)."""


def _keys(value: tuple[bytes, ...]) -> None:
    if not value or any(len(key) < MIN_KEY for key in value):
        raise ValueError(f"a cluster secret needs one or two keys of {MIN_KEY} characters or more")


@attrs.frozen(repr=False)
class ClusterSecret:
    """The cluster's keys: the first signs, each verifies (the second is the one rotated out)."""

    keys: tuple[bytes, ...] = attrs.field(validator=lambda _, __, value: _keys(value))

    def __repr__(self) -> str:
        return f"ClusterSecret(<{len(self.keys)} key(s)>)"

    @classmethod
    def from_file(cls, path: str | Path) -> ClusterSecret:
        """The keys in `path`, one per line; ValueError naming the file, never a key."""
        try:
            lines = Path(path).read_text(encoding="utf-8").split()
        except OSError as error:
            raise ValueError(f"--cluster-secret-file: cannot read {path}: {error.strerror}") from None
        if not 1 <= len(lines) <= 2 or any(len(line) < MIN_KEY for line in lines):
            raise ValueError(
                f"--cluster-secret-file: {path} must hold one key (or, while rotating, the new key "
                f"and then the old) of {MIN_KEY} characters or more, one per line"
            )
        return cls(tuple(line.encode() for line in lines))

    def _mac(self, key: bytes, where: str, text: str) -> str:
        return hmac.new(key, f"{where}\n{text}".encode(), hashlib.sha256).hexdigest()

    def digest(self, where: str, text: str) -> str:
        """A name for `text` that only holders of the secret can make (the signing key's MAC)."""
        return self._mac(self.keys[0], where, text)

    def seal(self, where: str, text: str) -> str:
        """`text` with its MAC, for the place `where` (a record's key, a message's channel)."""
        return f"{SEALED}{self._mac(self.keys[0], where, text)}:{text}"

    def unseal(self, where: str, stored: str) -> str | None:
        """What `seal` sealed for `where` with one of the keys; None for anything else."""
        split = _split(stored)
        if split is None:
            return None
        mac, text = split
        good = [hmac.compare_digest(mac, self._mac(key, where, text)) for key in self.keys]
        return text if any(good) else None


def _split(stored: str) -> tuple[str, str] | None:
    """The MAC and the text of a sealed value; None if it is not one."""
    if not stored.startswith(SEALED):
        return None
    mac, colon, text = stored[len(SEALED) :].partition(":")
    return (mac, text) if colon and len(mac) == _MAC_LENGTH else None


def unsealed(stored: str) -> str:
    """A value as a node without the secret reads it: a seal, if any, is set aside unchecked."""
    split = _split(stored)
    return stored if split is None else split[1]
