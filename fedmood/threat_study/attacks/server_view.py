"""Everything the server sees, recorded at the one door it has: the grid.

:class:`RecordingGrid` wraps the ServerApp's ``Grid`` and notes, for every training round of the
mood recommender, the global item parameters the server sent, what each client sent back *in the
clear* (the Message API's ``arrays``; nothing under SecAgg+, whose replies are masked vectors), and
which clients' contributions made it into the round's aggregate. Whatever the strategy, mechanism or
workflow, every exchange goes through ``send_and_receive``, so the record is complete by
construction. :class:`ServerView` is that record, plus the final released model and the map from
node ids to users (known to the evaluator, not to the attacker).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flwr.app import Context, Message
from flwr.serverapp import Grid

from fedmood.federated.grid import ForwardingGrid
from fedmood.studies.mood.model import GLOBAL_KEYS

Model = list[np.ndarray]  # the shared item parameters, in GLOBAL_KEYS order


@dataclass
class ServerView:
    """Per training round: the model sent, the clients' plain replies, the aggregate's participants."""

    sent: dict[int, Model] = field(default_factory=dict)
    updates: dict[int, dict[int, Model]] = field(default_factory=dict)  # round -> node -> returned model
    participants: dict[int, set[int]] = field(default_factory=dict)
    final: Model | None = None
    exact: dict[int, Model] = field(default_factory=dict)  # round -> the sum the server unmasked, before its noise
    node_user: dict[int, int] = field(default_factory=dict)  # the evaluator's ground truth
    exchanges: list[tuple[list[Message], list[Message]]] = field(default_factory=list)  # every one, if kept

    @property
    def rounds(self) -> list[int]:
        return sorted(self.sent)

    def released_after(self, rnd: int) -> Model:
        """The global model after round ``rnd`` (what the next round was sent, or the final model)."""
        later = [r for r in self.rounds if r > rnd]
        if later:
            return self.sent[later[0]]
        if self.final is None:
            raise ValueError("the view has no final model")
        return self.final

    def aggregate_update(self, rnd: int, exact: bool = False) -> Model:
        """What round ``rnd`` released: the new global model minus the one it was sent; with ``exact``,
        the aggregate the server knew before adding its noise, where it added any."""
        after = self.exact[rnd] if exact and rnd in self.exact else self.released_after(rnd)
        return [a - b for a, b in zip(after, self.sent[rnd], strict=True)]


def _config(msg: Message) -> dict:
    out: dict = {}
    for name in ("config", "fitins.config"):
        if name in msg.content.config_records:
            out.update(dict(msg.content.config_records[name]))
    return out


def _model(msg: Message) -> Model | None:
    for name in ("arrays", "fitins.parameters"):
        if name in msg.content.array_records:
            record = msg.content.array_records[name]
            if not len(record):
                return None
            if set(GLOBAL_KEYS) <= set(record):
                return [record[k].numpy().copy() for k in GLOBAL_KEYS]
            return [a.numpy().copy() for a in record.values()]
    return None


class RecordingGrid(ForwardingGrid):
    """A ``Grid`` that forwards everything to ``grid`` and records the training rounds in ``view``."""

    def __init__(self, grid: Grid, view: ServerView, keep_exchanges: bool = False) -> None:
        """``keep_exchanges``: also keep every message and reply as they are (e.g. federated MetaMF's)."""
        super().__init__(grid)
        self.view, self.keep_exchanges = view, keep_exchanges

    @property
    def pull_interval(self) -> float:
        return self._grid.pull_interval

    @pull_interval.setter
    def pull_interval(self, value: float) -> None:
        self._grid.pull_interval = value

    def record_exact_sum(self, rnd: int, arrays: list[np.ndarray]) -> None:
        """Called by a strategy that adds noise to what it unmasked: the server's exact knowledge."""
        self.view.exact[rnd] = [np.asarray(a).copy() for a in arrays]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        if self.keep_exchanges:
            self.view.exchanges.append((messages, replies))
        self._record(messages, replies)
        return replies

    def _record(self, messages: list[Message], replies: list[Message]) -> None:
        training = [m for m in messages if m.metadata.message_type == "train"]
        if not training:
            return
        config = _config(training[0])
        if "server-round" not in config or "stage" in config:  # not a training round (e.g. secure k-modes)
            return
        rnd = int(config["server-round"])
        model = _model(training[0])
        if model is not None:
            self.view.sent[rnd] = model
        secagg = "secaggplus_configs" in training[0].content.config_records
        if secagg and training[0].content.config_records["secaggplus_configs"].get("stage") != "collect_masked_vectors":
            return
        ok = [r for r in replies if not r.has_error()]
        self.view.participants[rnd] = {r.metadata.src_node_id for r in ok}
        for reply in ok:
            returned = _model(reply)
            if returned is not None and not secagg:
                self.view.updates.setdefault(rnd, {})[reply.metadata.src_node_id] = returned


def node_user_mod(folder: str | Path):
    """A client mod for the evaluator: notes each node's user (``<folder>/<node id>``); sends nothing."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def mod(msg: Message, context: Context, call_next) -> Message:
        path = folder / str(context.node_id)
        if not path.exists():
            path.write_text(str(int(context.node_config["partition-id"])))
        return call_next(msg, context)

    return mod


def read_node_users(folder: str | Path) -> dict[int, int]:
    """The node -> user map written by :func:`node_user_mod`."""
    return {int(p.name): int(p.read_text()) for p in Path(folder).iterdir() if p.name.isdigit()}
