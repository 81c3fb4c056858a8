"""The shared topic model learnt on Flower: exact count sums, and the topics a pooled model finds."""

import math

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict

from fedmood.studies.topics.federated import train_federated_shared
from fedmood.studies.topics.gibbs import GibbsLDA, LDAConfig
from strategies.count_sum import CountSum
from tests.conftest import make_message


def test_the_server_adds_the_devices_counts_exactly():
    counts = [np.array([[3, 0], [1, 2]]), np.array([[0, 5], [2**40, 1]])]
    replies = []
    for i, c in enumerate(counts):
        metrics = MetricRecord({"tokens": float(c.sum()), "num-examples": 1.0})
        replies.append(make_message(RecordDict({"arrays": ArrayRecord({"c": Array(c)}), "m": metrics}), "train", i + 1))
    arrays, metrics = CountSum().aggregate_train(1, replies)
    total = arrays["c"].numpy()
    assert total.dtype == np.int64 and total.tolist() == (counts[0] + counts[1]).tolist()  # no mean, no float
    assert metrics["tokens"] == float(counts[0].sum() + counts[1].sum())


CONFIG = LDAConfig(n_topics=3, alpha=0.1, eta=0.01)


def _three_users(rng: np.random.Generator, docs: int, length: int) -> list[list[np.ndarray]]:
    """Three devices' documents, each document on one of three topics of six words."""
    topics = [np.arange(0, 6), np.arange(6, 12), np.arange(12, 18)]
    return [[rng.choice(topics[(u + d) % 3], length).astype(np.intc) for d in range(docs)] for u in range(3)]


@pytest.mark.flower
def test_federated_lda_finds_the_topics_of_the_pooled_documents():
    rng = np.random.default_rng(0)
    users, config = _three_users(rng, 6, 40), CONFIG
    counts, history = train_federated_shared(users, config, 18, rounds=4, local_iterations=3, seed=0)
    n_tokens = sum(len(d) for docs in users for d in docs)
    assert counts.sum() == n_tokens and len(history) == 4  # every token counted once, in every round
    pooled = [d for docs in users for d in docs]
    model = GibbsLDA(config, 18).start(pooled, rng, prior=counts)  # the pooled documents under the federated topics
    assert model.token_log2_likelihood() == pytest.approx(-math.log2(6), abs=0.2)


@pytest.mark.flower
def test_under_secagg_the_topics_are_the_same_to_the_count():
    users, config = _three_users(np.random.default_rng(1), 4, 30), CONFIG
    plain, _ = train_federated_shared(users, config, 18, rounds=3, local_iterations=2, seed=5)
    secure, history = train_federated_shared(users, config, 18, rounds=3, local_iterations=2, seed=5, secure=True)
    assert secure.dtype == np.int64 and secure.tolist() == plain.tolist()
    assert [r["round"] for r in history] == [1, 2, 3]


def test_a_count_beyond_secaggs_grid_fails_by_name():
    from fedmood.studies.topics.federated import SECURE_COUNTS
    from strategies.secagg import SecAggRangeError, to_grid

    with pytest.raises(SecAggRangeError, match="device 2's topic-word counts"):
        to_grid(np.array([[2**21, 0]]), SECURE_COUNTS, "device 2's topic-word counts")
