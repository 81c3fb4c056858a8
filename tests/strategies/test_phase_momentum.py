"""PhaseMomentum (strategies/phase_momentum.py): FedAvgM's server step in one phase's rounds only."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvgM

from fedmood.keys import NUM_EXAMPLES
from strategies.alternating import AlternatingFedAvg
from strategies.phase_momentum import PhaseMomentum, momentum_step
from tests.conftest import make_message


class TwoNodes:
    """The part of a Grid that FedAvg's configure_train reads."""

    def get_node_ids(self) -> list[int]:
        return [1, 2]


def _record(w: float) -> ArrayRecord:
    return ArrayRecord({"w": Array(np.array([w, 2 * w], np.float32))})


def _reply(w: float, n: int) -> Message:
    content = RecordDict({"arrays": _record(w), "metrics": MetricRecord({NUM_EXAMPLES: n})})
    return Message(content, reply_to=make_message(RecordDict(), "train"))


def _round(strategy, rnd: int, current: ArrayRecord, replies: list[tuple[float, int]]) -> ArrayRecord:
    """Configure round ``rnd`` from ``current`` and aggregate replies (value, examples) into it."""
    list(strategy.configure_train(rnd, current, ConfigRecord(), TwoNodes()))
    arrays, _ = strategy.aggregate_train(rnd, [_reply(w, n) for w, n in replies])
    return arrays


def _alternating() -> AlternatingFedAvg:
    return AlternatingFedAvg(("adversaries", "anonymiser"), min_train_nodes=2, min_available_nodes=2)


def test_the_momentum_step_against_a_hand_computation():
    x = np.array([1.0, -2.0], np.float32)
    first, v1 = momentum_step(x, np.array([0.8, -1.5], np.float32), None, learning_rate=2.0, momentum=0.5)
    np.testing.assert_allclose(v1, [0.2, -0.5], rtol=1e-6)  # v_1 = Δ_1 = x - avg
    np.testing.assert_allclose(first, [1.0 - 2 * 0.2, -2.0 + 2 * 0.5], rtol=1e-6)
    assert first.dtype == np.float32
    second, v2 = momentum_step(first, first - np.float32(0.1), v1, learning_rate=2.0, momentum=0.5)
    np.testing.assert_allclose(v2, [0.5 * 0.2 + 0.1, 0.5 * -0.5 + 0.1], rtol=1e-5)
    np.testing.assert_allclose(second, first - 2 * v2, rtol=1e-5)


def test_only_the_named_phase_is_stepped_and_its_buffer_skips_the_other_phase(server_identity):
    strategy = PhaseMomentum(_alternating(), learning_rate=1.0, momentum=0.5, phase="anonymiser")
    # round 1 (adversaries): FedAvg's weighted mean, untouched: (1 * 0.6 + 3 * 1.0) / 4 = 0.9
    adv = _round(strategy, 1, _record(1.0), [(0.6, 1), (1.0, 3)])
    np.testing.assert_allclose(adv["w"].numpy(), [0.9, 1.8], rtol=1e-6)
    assert strategy.buffer == {}
    # round 2 (anonymiser): the clients average to 0.7 from 0.9: v = 0.2, x = 0.9 - 0.2
    anon = _round(strategy, 2, adv, [(0.7, 2), (0.7, 2)])
    np.testing.assert_allclose(anon["w"].numpy(), [0.7, 1.4], rtol=1e-6)
    # round 3 (adversaries): unchanged clients average to themselves; no momentum push although v != 0
    adv = _round(strategy, 3, anon, [(0.7, 2), (0.7, 2)])
    np.testing.assert_allclose(adv["w"].numpy(), [0.7, 1.4], rtol=1e-6)
    # round 4 (anonymiser): average 0.6 from 0.7: v = 0.5 * 0.2 + 0.1 = 0.2, x = 0.7 - 0.2 = 0.5
    anon = _round(strategy, 4, adv, [(0.6, 1), (0.6, 1)])
    np.testing.assert_allclose(anon["w"].numpy(), [0.5, 1.0], rtol=1e-5)
    np.testing.assert_allclose(strategy.buffer["w"], [0.2, 0.4], rtol=1e-5)
    assert strategy.phase(4) == "anonymiser"  # the wrapped strategy's attributes show through


def test_without_a_phase_it_steps_as_flowers_fedavgm(server_identity):
    ours = PhaseMomentum(_alternating(), learning_rate=1.5, momentum=0.9)
    flower = FedAvgM(min_train_nodes=2, min_available_nodes=2, server_learning_rate=1.5, server_momentum=0.9)
    current_ours = current_flower = _record(1.0)
    for rnd, (a, b) in enumerate([(0.5, 0.9), (0.4, 0.2), (1.1, 0.3)], start=1):
        replies = [(a, 3), (b, 5)]
        list(flower.configure_train(rnd, current_flower, ConfigRecord(), TwoNodes()))
        current_flower, _ = flower.aggregate_train(rnd, [_reply(w, n) for w, n in replies])
        current_ours = _round(ours, rnd, current_ours, replies)
        np.testing.assert_allclose(current_ours["w"].numpy(), current_flower["w"].numpy(), rtol=1e-5)


def test_momentum_zero_and_rate_one_is_the_wrapped_strategy(server_identity):
    plain, wrapped = _alternating(), PhaseMomentum(_alternating(), learning_rate=1.0, momentum=0.0)
    replies = [(0.37, 3), (1.91, 7)]
    np.testing.assert_array_equal(
        _round(wrapped, 2, _record(1.3), replies)["w"].numpy(), _round(plain, 2, _record(1.3), replies)["w"].numpy()
    )


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r"momentum 1\.0"):
        PhaseMomentum(_alternating(), momentum=1.0)
    with pytest.raises(ValueError, match="learning_rate 0"):
        PhaseMomentum(_alternating(), learning_rate=0)
    with pytest.raises(ValueError, match="'decoder'"):
        PhaseMomentum(_alternating(), phase="decoder")
