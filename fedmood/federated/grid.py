"""Talking to the nodes of a Flower grid: wait until they are connected, ask them all a question."""

from __future__ import annotations

import time

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from strategies.strict import check_replies, successful_replies


def wait_for_nodes(grid: Grid, n: int, timeout: float) -> list[int]:
    """Node ids once ``n`` nodes are connected."""
    end = time.time() + timeout
    while True:
        ids = sorted(grid.get_node_ids())
        if len(ids) >= n:
            return ids
        if time.time() > end:
            raise TimeoutError(f"only {len(ids)} of {n} nodes connected after {timeout:.0f} s")
        time.sleep(0.2)


def query_all(
    grid: Grid,
    node_ids: list[int],
    config: ConfigRecord,
    timeout: float,
    arrays: ArrayRecord | None = None,
    min_replies: int | None = None,
) -> list[RecordDict]:
    """Send ``config`` (and ``arrays``) to every node as a ``query`` message; their replies' contents.

    Every node must reply, unless ``min_replies`` is given: then failed nodes are left out as long
    as at least that many replied.
    """
    content = {"config": config} | ({"arrays": arrays} if arrays is not None else {})
    msgs = [Message(RecordDict(content), dst_node_id=n, message_type="query") for n in node_ids]
    got = grid.send_and_receive(msgs, timeout=timeout)
    if min_replies is None:
        replies = check_replies("query", 0, len(msgs), got)
    else:
        replies = successful_replies(f"query {config.get('stage', '')}", 0, len(msgs), got, min_replies)
    return [r.content for r in replies]
