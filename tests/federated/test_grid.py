"""Polling a grid for replies at the study's interval (Flower's deployment grid waits 3 s between
polls), and not waiting for a node that went silent."""

import time
from types import SimpleNamespace

import pytest
from flwr.app import Message, RecordDict

from fedmood.federated.grid import PRESUMED_DOWN, PollingGrid, with_pull_interval
from strategies.strict import ClientRoundError, check_replies
from tests.conftest import make_message


class _SlowNodes:
    """A grid whose node ``n`` replies to a message after ``delays[n]`` seconds (None: never; a
    missing node: after ``delay``); no pull_interval of its own."""

    def __init__(self, delay: float, delays: dict[int, float | None] | None = None) -> None:
        self.delay, self.delays, self.sent, self.pulls = delay, delays or {}, {}, 0

    def push_messages(self, messages):
        ids = []
        for m in messages:
            mid = f"m{len(self.sent)}"
            m.metadata.__dict__["_message_id"] = mid  # as Flower's grids do
            self.sent[mid] = (time.monotonic(), m)
            ids.append(mid)
        return ids

    def pull_messages(self, ids):
        self.pulls += 1
        now, ready = time.monotonic(), []
        for i in ids:
            at, msg = self.sent[i]
            delay = self.delays.get(msg.metadata.dst_node_id, self.delay)
            if delay is not None and now - at >= delay:
                ready.append(Message(RecordDict(), reply_to=msg))
        return ready

    def send_and_receive(self, messages, *, timeout=None):
        raise AssertionError("Flower's own send_and_receive (3 s polls) must not be used")


def test_replies_are_collected_as_soon_as_they_arrive():
    inner = _SlowNodes(0.05)
    grid = with_pull_interval(inner, 0.01)
    assert isinstance(grid, PollingGrid)
    t0 = time.monotonic()
    replies = list(grid.send_and_receive(_messages(1, 1, 1), timeout=5))
    assert len(replies) == 3 and time.monotonic() - t0 < 1.0
    assert inner.pulls >= 2


def test_the_timeout_ends_the_wait_with_the_replies_so_far():
    grid = PollingGrid(_SlowNodes(10.0), 0.01)
    t0 = time.monotonic()
    assert list(grid.send_and_receive(_messages(1), timeout=0.1)) == []
    assert time.monotonic() - t0 < 1.0


def test_a_grid_with_its_own_pull_interval_is_told_not_wrapped():
    inner = SimpleNamespace(pull_interval=0.1)
    assert with_pull_interval(inner, 0.01) is inner and inner.pull_interval == 0.01


def _messages(*nodes: int) -> list[Message]:
    return [make_message(RecordDict(), "train", dst=n) for n in nodes]


def test_a_node_silent_after_the_phases_latest_reply_is_presumed_down():
    inner = _SlowNodes(0.0, {1: 0.05, 2: 0.1, 3: 0.05})
    grid = with_pull_interval(inner, 0.01, phase_timeout=0.3)
    assert not any(r.has_error() for r in grid.send_and_receive(_messages(1, 2, 3), timeout=60))
    inner.delays[3] = None  # node 3 was killed
    t0 = time.monotonic()
    replies = list(grid.send_and_receive(_messages(1, 2, 3), timeout=60))
    took = time.monotonic() - t0
    assert 0.35 <= took < 1.5, took  # 0.1 s (node 2's reply) + 0.3 s, not the round's 60 s
    failed = [r for r in replies if r.has_error()]
    assert len(replies) == 3 and len(failed) == 1
    assert failed[0].metadata.src_node_id == 3 and failed[0].error.code == PRESUMED_DOWN
    with pytest.raises(ClientRoundError, match=r"node 3: no reply 0.3 s after .*down \(federation.phase_timeout=0.3\)"):
        check_replies("train", 1, 3, replies)
    # a node that comes back simply replies again
    inner.delays[3] = 0.05
    assert not any(r.has_error() for r in grid.send_and_receive(_messages(1, 2, 3), timeout=60))


def test_in_a_slow_phase_a_late_node_gets_as_long_again_as_the_others_took():
    # the others need 0.6 s (e.g. loading the app), node 3 replies 0.4 s after them: more than the
    # phase_timeout of 0.2 s after the latest reply, less than the 0.6 s the phase took until then
    grid = PollingGrid(_SlowNodes(0.0, {1: 0.6, 2: 0.6, 3: 1.0}), 0.01, phase_timeout=0.2)
    replies = list(grid.send_and_receive(_messages(1, 2, 3), timeout=10))
    assert len(replies) == 3 and not any(r.has_error() for r in replies)


def test_nodes_still_computing_are_not_presumed_down_before_anyone_replied():
    grid = PollingGrid(_SlowNodes(0.5), 0.01, phase_timeout=0.1)  # every node needs 0.5 s: no reply for 5 timeouts
    replies = list(grid.send_and_receive(_messages(1, 2), timeout=5))
    assert len(replies) == 2 and not any(r.has_error() for r in replies)


def test_a_node_that_has_not_replied_in_this_run_is_not_presumed_down():
    """A node restarted between runs loads its app in the run's first phase while the others, warm,
    answer at once: it gets the call's timeout, not the silence rule; afterwards the rule applies."""
    inner = _SlowNodes(0.0, {1: 0.02, 2: 0.02, 3: 0.8})
    grid = PollingGrid(inner, 0.01, phase_timeout=0.1)
    replies = list(grid.send_and_receive(_messages(1, 2, 3), timeout=10))
    assert len(replies) == 3 and not any(r.has_error() for r in replies)
    replies = list(grid.send_and_receive(_messages(1, 2, 3), timeout=10))  # now node 3 is slow for the rule
    assert [r.metadata.src_node_id for r in replies if r.has_error()] == [3]
