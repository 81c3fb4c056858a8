"""Replies aggregated in an order of their content (strategies/reply_order.py, applied by
strategies/strict.py's FailLoudly around every Message-API run): a seeded federated run gives the
same model and metrics whichever client answers first."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Error, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from fedmood.keys import NUM_EXAMPLES
from strategies.alternating import AlternatingFedAvg
from strategies.fedlda import STATS_RECORD, FederatedLDA
from strategies.reply_order import content_digest, in_canonical_order
from strategies.strict import ClientRoundError, FailLoudly
from tests.conftest import make_message

D = 6


def _replies(n: int = 12, stats: bool = True) -> list[Message]:
    """One reply per client: a model of mixed-scale float32 weights, its example count and, as a
    one-class device would send them, its discriminant statistics."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        w = (rng.normal(size=(D, D)) * 10.0 ** rng.integers(-4, 4, size=(D, D))).astype(np.float32)
        feats = rng.normal(size=(5, D)) * 10.0 ** rng.integers(-3, 3) + k * 0.1
        feats[:, -1] = feats[:, 0] + 1e-6 * rng.normal(size=5)  # a nearly singular covariance, as on MotionSense
        count, total = np.zeros(n), np.zeros((n, D))
        count[k], total[k] = 5, feats.sum(0)
        scatter = (feats - feats.mean(0)).T @ (feats - feats.mean(0))
        record = {"head.count": count, "head.sum": total, "head.scatter": scatter}
        content = RecordDict(
            {
                "arrays": ArrayRecord({"weight": Array(w), "bias": Array(np.zeros(n, np.float32)),
                                       "head.weight": Array(np.zeros((n, D), np.float32))}),
                "metrics": MetricRecord({NUM_EXAMPLES: int(rng.integers(50, 5000))}),
            }
        )  # fmt: skip
        if stats:
            content[STATS_RECORD] = ArrayRecord({key: Array(v) for key, v in record.items()})
        out.append(Message(content, reply_to=make_message(RecordDict(), "train")))
    return out


def _shuffled(replies: list[Message], seed: int) -> list[Message]:
    """``replies`` in the arrival order that ``seed`` draws."""
    return [replies[i] for i in np.random.default_rng(seed).permutation(len(replies))]


def _permuted(seed: int, stats: bool) -> list[Message]:
    return _shuffled(_replies(stats=stats), seed)


def _aggregate(strategy_factory, seed: int, stats: bool = False) -> dict[str, np.ndarray]:
    arrays, _ = strategy_factory().aggregate_train(1, _permuted(seed, stats))
    return {k: v.numpy() for k, v in arrays.items()}


def _evaluate_replies(seed: int) -> list[Message]:
    """Metric-only evaluate replies (no arrays): mixed-scale losses and example counts."""
    rng = np.random.default_rng(1)
    replies = [
        Message(
            RecordDict({"metrics": MetricRecord({"loss": float(rng.normal() * 10.0 ** rng.integers(-6, 6)),
                                                 NUM_EXAMPLES: int(rng.integers(1, 9000))})}),
            reply_to=make_message(RecordDict(), "evaluate"),
        )
        for _ in range(12)
    ]  # fmt: skip
    return _shuffled(replies, seed)


def test_the_order_is_a_function_of_the_content():
    orders = [[content_digest(r) for r in in_canonical_order(_permuted(seed, True))] for seed in range(4)]
    assert all(order == orders[0] for order in orders) and len(set(orders[0])) == len(orders[0])


def test_arrival_order_changes_plain_fedavg_but_not_ours():
    def alternating():
        return FailLoudly(AlternatingFedAvg(("adversaries", "anonymiser")))

    def discriminant():
        return FailLoudly(
            FederatedLDA(AlternatingFedAvg(("adversaries",)), {"head": ("head.weight", "bias")}, shrinkage=1e-6)
        )

    # the premise: Flower's FedAvg rounds differently in some arrival order (so the test can fail)
    plain_runs = [_aggregate(FedAvg, seed)["weight"] for seed in range(8)]
    assert any(not np.array_equal(plain_runs[0], other) for other in plain_runs[1:])
    for factory, stats in ((alternating, False), (discriminant, True)):
        runs = [_aggregate(factory, seed, stats) for seed in range(8)]
        for other in runs[1:]:
            assert all(np.array_equal(runs[0][k], other[k]) for k in runs[0]), factory.__name__


def test_evaluate_metrics_are_averaged_in_content_order():
    # the premise: FedAvg's weighted mean of the metrics rounds differently in some arrival order
    plain = [FedAvg().aggregate_evaluate(1, _evaluate_replies(seed))["loss"] for seed in range(8)]
    assert len(set(plain)) > 1
    ours = [FailLoudly(FedAvg()).aggregate_evaluate(1, _evaluate_replies(seed))["loss"] for seed in range(8)]
    assert len(set(ours)) == 1


def test_errors_sort_first_and_still_fail_the_round():
    replies = _replies(4, stats=False)
    failed = Message(Error(code=0, reason="boom"), reply_to=make_message(RecordDict(), "train"))
    assert in_canonical_order([*replies, failed])[0] is failed
    with pytest.raises(ClientRoundError, match="boom"):
        FailLoudly(FedAvg()).aggregate_train(1, [*replies, failed])
