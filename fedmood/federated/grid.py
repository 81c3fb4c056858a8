"""Talking to the nodes of a Flower grid: wait until they are connected, ask them all a question,
and poll for their replies as often as the study asks (:func:`with_pull_interval`)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable
from types import ModuleType

from flwr.app import ArrayRecord, ConfigRecord, Error, Message, RecordDict
from flwr.serverapp import Grid

from strategies.strict import check_replies, successful_replies

log = logging.getLogger("fedmood")


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


#: First and longest wait (s) before pulling again an object of a message that is not there yet
#: (Flower 1.42: 1 s and 10 s, so a message whose objects arrive a moment late costs a second).
OBJECT_PULL_BACKOFF = (0.02, 0.5)


def shorten_object_pull_backoff(module: ModuleType, name: str) -> None:
    """Make ``module.name`` (Flower's ``pull_objects`` or ``pull_and_inflate_object_from_tree``, as
    that module imported it) retry a missing object after :data:`OBJECT_PULL_BACKOFF`."""
    fn = getattr(module, name)
    if not isinstance(fn, functools.partial):  # once
        first, cap = OBJECT_PULL_BACKOFF
        setattr(module, name, functools.partial(fn, initial_backoff=first, backoff_cap=cap))


class ForwardingGrid(Grid):
    """A ``Grid`` that hands every call to ``grid``; subclasses change what they need."""

    def __init__(self, grid: Grid) -> None:
        self._grid = grid

    def __getattr__(self, name: str):
        if name == "_grid":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._grid, name)

    def set_run(self, run) -> None:
        self._grid.set_run(run)

    @property
    def run(self):
        return self._grid.run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:
        return self._grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self._grid.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self._grid.send_and_receive(messages, timeout=timeout)


#: Error code of the reply fedmood writes for a node presumed down (Flower's own codes are small integers).
PRESUMED_DOWN = 9001


class PollingGrid(ForwardingGrid):
    """``send_and_receive`` that polls for the replies every ``pull_interval`` seconds and, given a
    ``phase_timeout``, does not wait for a node that has gone silent.

    Flower 1.42's deployment grid (``flwr.superlink.grid.http_grid``) sleeps a fixed 3 s between
    its polls, so every exchange with the nodes of a deployed federation took a multiple of 3 s.

    **Silent nodes.** Each call is one phase of a round (training, evaluation, a clustering stage, a
    SecAgg+ stage): the same message to many nodes. Once some node has replied, the others have
    ``phase_timeout`` seconds from the latest reply to follow, or as long again as that reply took
    if more (a phase in which everyone is slow, e.g. loading the app, waits in proportion); a node
    still silent then is presumed down: the call returns an error reply for it (code
    :data:`PRESUMED_DOWN`, its reason naming the setting), so the strategies treat it as a failed
    client (a strict run fails naming it, otherwise the round goes on without it). Before anyone has
    replied nothing is presumed (every node may still be computing, or loading its app), and a node
    that has not replied yet in this run is never presumed down: it may be loading its app while the
    others, warm from an earlier run, answer at once (a node restarted between runs); it has the
    call's timeout. The
    SuperLink itself notices a killed node only after two missed heartbeats (20 s at Flower's
    shortest interval); until then later phases send to it too and wait for it again, and a node
    that comes back simply replies.
    """

    def __init__(self, grid: Grid, pull_interval: float, phase_timeout: float | None = None) -> None:
        super().__init__(grid)
        self.pull_interval = float(pull_interval)
        self.phase_timeout = None if phase_timeout is None else float(phase_timeout)
        self._answered: set[int] = set()  # nodes that have replied in this run

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        waiting = set(self._grid.push_messages(messages))
        sent = {m.metadata.message_id: m for m in messages}  # the grid gave each its id when pushing it
        started = time.monotonic()
        end = None if timeout is None else started + timeout
        replies: list[Message] = []
        last_reply = None
        while waiting:
            got = list(self._grid.pull_messages(waiting))
            now = time.monotonic()
            if got:
                last_reply = now
            replies += got
            waiting -= {m.metadata.reply_to_message_id for m in got}
            self._answered.update(m.metadata.src_node_id for m in got)
            if not waiting or (end is not None and now >= end):
                break
            if self.phase_timeout is not None and last_reply is not None:
                grace = max(self.phase_timeout, last_reply - started)
                if now - last_reply >= grace:
                    down = {m for m in waiting if m in sent and sent[m].metadata.dst_node_id in self._answered}
                    replies += [self._presumed_down(sent[m], now - last_reply) for m in sorted(down)]
                    waiting -= down
                    if not waiting:
                        break
            time.sleep(self.pull_interval)
        return replies

    def _presumed_down(self, message: Message, silent: float) -> Message:
        node = message.metadata.dst_node_id
        reason = (
            f"no reply {silent:.1f} s after the latest reply of this phase: presumed down "
            f"(federation.phase_timeout={self.phase_timeout:g})"
        )
        log.warning("node %s: %s", node, reason)
        return Message(Error(code=PRESUMED_DOWN, reason=reason), reply_to=message)


def with_pull_interval(grid: Grid, interval: float, phase_timeout: float | None = None) -> Grid:
    """``grid``, polling for replies every ``interval`` seconds, not waiting for silent nodes beyond
    ``phase_timeout`` (:class:`PollingGrid`; None: waits until the round's timeout).

    Without a ``phase_timeout`` the simulation's in-memory grid is only told the interval (its
    ``pull_interval``); any other grid (a deployment's) is wrapped in :class:`PollingGrid`, and the
    deployment grid's pulls of a reply's objects retry after :data:`OBJECT_PULL_BACKOFF`.
    """
    if hasattr(grid, "pull_interval"):
        grid.pull_interval = interval
        return grid if phase_timeout is None else PollingGrid(grid, interval, phase_timeout)
    import flwr.superlink.grid.http_grid as http_grid

    shorten_object_pull_backoff(http_grid, "pull_objects")
    return PollingGrid(grid, interval, phase_timeout)
