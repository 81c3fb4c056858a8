"""Federated linear discriminant heads (strategies/fedlda.py): the heads fitted from one-class
devices' statistics equal the fit on the pooled windows, and identify the classes on Flower."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from fedmood.classification import class_statistics, lda_head
from fedmood.federated.study import run_fedavg_study
from fedmood.keys import NUM_EXAMPLES
from strategies.fedlda import STATS_RECORD, FederatedLDA
from tests.conftest import make_message

K, D = 6, 5


def _blobs(seed: int, sizes: list[int]) -> list[np.ndarray]:
    """Class ``k``: ``sizes[k]`` points around its own centre, with one covariance shared by all classes."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(scale=1.5, size=(K, D))
    mix = np.random.default_rng(1).normal(size=(D, D))
    return [centres[k] + rng.normal(size=(n, D)) @ mix for k, n in enumerate(sizes)]


def _pooled_fit(classes: list[np.ndarray], shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """The textbook discriminant on the pooled points: class means, pooled covariance / (n - K)."""
    n = sum(len(c) for c in classes)
    means = np.stack([c.mean(axis=0) for c in classes])
    cov = sum((c - c.mean(axis=0)).T @ (c - c.mean(axis=0)) for c in classes) / (n - len(classes))
    cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / D * np.eye(D)
    inv = np.linalg.inv(cov)
    weights = means @ inv
    biases = np.array([-0.5 * m @ inv @ m + np.log(len(c) / n) for m, c in zip(means, classes, strict=True)])
    return weights, biases


def test_heads_from_one_class_devices_equal_the_fit_on_the_pooled_points():
    classes = _blobs(3, [40, 25, 60, 33, 47, 52])
    stats = [class_statistics(c, k, K) for k, c in enumerate(classes)]  # one device per class
    summed = [sum(s[p] for s in stats) for p in ("count", "sum", "scatter")]
    weights, biases, present = lda_head(*summed, shrinkage=0.05)
    expected_w, expected_b = _pooled_fit(classes, 0.05)
    assert present.all()
    np.testing.assert_allclose(weights, expected_w, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(biases, expected_b, rtol=1e-9, atol=1e-12)
    # a class no device held gets no row; the others are fitted as if it did not exist
    partial = [sum(s[p] for s in stats[:4]) for p in ("count", "sum", "scatter")]
    w4, _, present4 = lda_head(*partial, shrinkage=0.05)
    assert present4.tolist() == [True] * 4 + [False] * 2
    np.testing.assert_allclose(w4, _pooled_fit(classes[:4], 0.05)[0], rtol=1e-9, atol=1e-12)


def test_refused_statistics():
    with pytest.raises(ValueError, match="shrinkage"):
        lda_head(np.ones(2), np.ones((2, 3)), np.eye(3), shrinkage=1.5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        lda_head(np.array([5.0, 0.0]), np.ones((2, 3)), np.eye(3))
    with pytest.raises(ValueError, match="non-empty"):
        class_statistics(np.zeros((0, 3)), 0, 2)
    with pytest.raises(ValueError, match="heads"):
        FederatedLDA(FedAvg(), {})


def _head() -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(D, K)


def _reply(k: int, points: np.ndarray, stats: bool = True) -> Message:
    metrics = MetricRecord({NUM_EXAMPLES: len(points)})
    content = RecordDict({"arrays": ArrayRecord(_head().state_dict()), "metrics": metrics})
    if stats:
        content[STATS_RECORD] = ArrayRecord({f"head.{p}": Array(v) for p, v in class_statistics(points, k, K).items()})
    return Message(content, reply_to=make_message(RecordDict(), "train"))


def test_the_strategy_fits_the_heads_and_leaves_them_in_rounds_without_statistics():
    classes = _blobs(4, [30] * K)
    strategy = FederatedLDA(FedAvg(), {"head": ("weight", "bias")}, shrinkage=0.0)
    arrays, _ = strategy.aggregate_train(1, [_reply(k, c) for k, c in enumerate(classes)])
    expected_w, expected_b = _pooled_fit(classes, 0.0)
    np.testing.assert_allclose(arrays["weight"].numpy(), expected_w, rtol=1e-5, atol=1e-5)  # float32 in the model
    np.testing.assert_allclose(arrays["bias"].numpy(), expected_b, rtol=1e-5, atol=1e-5)
    untouched, _ = strategy.aggregate_train(2, [_reply(k, c, stats=False) for k, c in enumerate(classes)])
    np.testing.assert_allclose(untouched["weight"].numpy(), _head().weight.detach().numpy(), rtol=1e-6)  # averaged


@pytest.mark.flower
def test_one_class_devices_fit_heads_on_flower_that_identify_held_out_points():
    """Six devices, one class each, one Flower round: the fitted heads classify held-out points as
    well as the discriminant fitted on the pooled points (same predictions), far above chance."""
    devices = _blobs(5, [50] * K)
    client = ClientApp()

    @client.train()
    def _train(msg: Message, context: Context) -> Message:
        k = int(context.node_config["partition-id"])
        stats = class_statistics(devices[k], k, K)
        content = RecordDict(
            {
                "arrays": msg.content["arrays"],
                "metrics": MetricRecord({NUM_EXAMPLES: len(devices[k])}),
                STATS_RECORD: ArrayRecord({f"head.{p}": Array(v) for p, v in stats.items()}),
            }
        )
        return Message(content, reply_to=msg)

    inner = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=K, min_available_nodes=K)
    strategy = FederatedLDA(inner, {"head": ("weight", "bias")}, shrinkage=0.01)
    final, _ = run_fedavg_study("lda heads", client, strategy, ArrayRecord(_head().state_dict()), 1, K)
    head = _head()
    head.load_state_dict(final.to_torch_state_dict())
    held_out = _blobs(6, [200] * K)
    x, y = np.concatenate(held_out), np.repeat(np.arange(K), 200)
    with torch.no_grad():
        federated = head(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()
    w, b = _pooled_fit(devices, 0.01)
    pooled = (x @ w.T + b).argmax(1)
    assert (federated == pooled).mean() > 0.995
    assert (federated == y).mean() > 1 / K + 0.4, (federated == y).mean()
