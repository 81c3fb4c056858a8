"""Polling a grid for replies at the study's interval: Flower's deployment grid waits 3 s between polls."""

import time
from types import SimpleNamespace

from fedmood.federated.grid import PollingGrid, with_pull_interval


class _SlowNodes:
    """A grid whose replies to each message arrive after ``delay`` seconds (no pull_interval of its own)."""

    def __init__(self, delay: float) -> None:
        self.delay, self.sent, self.pulls = delay, {}, 0

    def push_messages(self, messages):
        for i, _ in enumerate(messages):
            self.sent[f"m{i}"] = time.monotonic()
        return list(self.sent)

    def pull_messages(self, ids):
        self.pulls += 1
        ready = [i for i in ids if time.monotonic() - self.sent[i] >= self.delay]
        return [SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=i)) for i in ready]

    def send_and_receive(self, messages, *, timeout=None):
        raise AssertionError("Flower's own send_and_receive (3 s polls) must not be used")


def test_replies_are_collected_as_soon_as_they_arrive():
    inner = _SlowNodes(0.05)
    grid = with_pull_interval(inner, 0.01)
    assert isinstance(grid, PollingGrid)
    t0 = time.monotonic()
    replies = list(grid.send_and_receive(["a", "b", "c"], timeout=5))
    assert len(replies) == 3 and time.monotonic() - t0 < 1.0
    assert inner.pulls >= 2


def test_the_timeout_ends_the_wait_with_the_replies_so_far():
    grid = PollingGrid(_SlowNodes(10.0), 0.01)
    t0 = time.monotonic()
    assert list(grid.send_and_receive(["a"], timeout=0.1)) == []
    assert time.monotonic() - t0 < 1.0


def test_a_grid_with_its_own_pull_interval_is_told_not_wrapped():
    inner = SimpleNamespace(pull_interval=0.1)
    assert with_pull_interval(inner, 0.01) is inner and inner.pull_interval == 0.01
