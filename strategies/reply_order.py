"""Replies in an order that does not depend on which client answered first.

Flower hands a strategy its replies in the order they arrived. Floating-point sums depend on the
order of their terms, so FedAvg's weighted mean, and sums of statistics (``strategies/fedlda.py``),
differ in their last bits between two runs of the same seeded clients; an ill-conditioned step
downstream (a discriminant solved against a nearly singular covariance) can carry those bits into
every later round. Sorting the replies by a digest of their content makes the aggregate a function
of the replies alone.

The sort happens once per round, in the outermost wrapper of every Message-API run
(:class:`strategies.strict.FailLoudly`), so each strategy inside it (FedAvg, the alternating phases,
the discriminant statistics, FedAwS's embedding changes) sees the same order whatever arrived first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from flwr.app import ArrayRecord, Message


def content_digest(reply: Message) -> bytes:
    """SHA-256 of a reply's content (arrays by their bytes, metrics and configs by their values, each
    under its record and key name); error replies get the empty key and sort first."""
    if reply.has_error():
        return b""
    h = hashlib.sha256()
    for name in sorted(reply.content.keys()):
        record = reply.content[name]
        for key in sorted(record.keys()):
            h.update(f"{name}/{key}=".encode())
            value = record[key]
            h.update(value.data if isinstance(record, ArrayRecord) else repr(value).encode())
    return h.digest()


def in_canonical_order(replies: Iterable[Message]) -> list[Message]:
    """The replies sorted by :func:`content_digest` (the same set of replies gives the same order)."""
    return sorted(replies, key=content_digest)
