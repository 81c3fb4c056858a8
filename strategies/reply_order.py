"""Replies in an order that does not depend on which client answered first.

Flower hands a strategy its replies in the order they arrived. Floating-point sums depend on the
order of their terms, so FedAvg's weighted mean, and sums of statistics (``strategies/fedlda.py``),
differ in their last bits between two runs of the same seeded clients; an ill-conditioned step
downstream (a discriminant solved against a nearly singular covariance) can carry those bits into
every later round. Sorting the replies by a digest of their content makes the aggregate a function
of the replies alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from flwr.app import ArrayRecord, Message


def content_digest(reply: Message) -> bytes:
    """SHA-256 of a reply's arrays (every ArrayRecord, by record and array name); errors sort first."""
    if reply.has_error():
        return b""
    h = hashlib.sha256()
    for name in sorted(reply.content.keys()):
        record = reply.content[name]
        if not isinstance(record, ArrayRecord):
            continue
        for key in sorted(record.keys()):
            h.update(f"{name}/{key}".encode())
            h.update(record[key].data)
    return h.digest()


def in_canonical_order(replies: Iterable[Message]) -> list[Message]:
    """The replies sorted by :func:`content_digest` (the same set of replies gives the same order)."""
    return sorted(replies, key=content_digest)
