import numpy as np
import pytest
from flwr.app import Error, Message

from fedmood.studies.mood.client_app import build_client_app
from fedmood.studies.mood.clustering import (
    agreement,
    assign,
    cluster_counts,
    initial_centres,
    matching_dissimilarity,
    modes_from_counts,
    slot_histograms,
)
from fedmood.studies.mood.data.local import load_local_data
from fedmood.studies.mood.experiment import centralised_clustering
from fedmood.studies.mood.server_app import federated_clustering, plain_collect
from strategies.strict import ClientRoundError
from tests.conftest import make_context


def test_distance_is_one_minus_fraction_of_matching_slots():
    a = np.array([[1, 1, 1, 2, 2, 2]])
    c = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 2, 2, 2], [3, 3, 3, 3, 3, 3], [2, 1, 1, 2, 2, 0]])
    np.testing.assert_allclose(matching_dissimilarity(a, c), [[0.5, 0.0, 1.0, 2 / 6]])
    assert assign(a, c)[0] == 1
    # ties go to the lowest index, as in k-modes
    assert assign(np.array([[1, 1, 1, 3, 3, 3]]), c[[0, 2]])[0] == 0


def test_counts_and_modes():
    x = np.array([[0, 0, 1], [0, 0, 0], [2, 2, 2]])
    centres = np.array([[0, 0, 0], [2, 2, 2], [1, 1, 1]])
    counts = cluster_counts(x, centres, n_values=3)
    assert counts.shape == (3, 3, 3) and counts.sum() == x.size
    np.testing.assert_array_equal(counts[0, 2], [1, 1, 0])
    new = modes_from_counts(counts, centres)
    np.testing.assert_array_equal(new[1], [2, 2, 2])
    np.testing.assert_array_equal(new[2], [1, 1, 1])  # empty cluster keeps its centre


def test_histograms_and_init():
    x = np.array([[3, 3, 3, 1], [3, 3, 3, 3], [1, 1, 2, 2]])
    marg, dom = slot_histograms(x, 4)
    np.testing.assert_array_equal(marg.sum(axis=1), [3, 3, 3, 3])
    np.testing.assert_array_equal(dom, [0, 1, 0, 2])  # ties pick the lowest value
    init = initial_centres(marg, dom, 3, seed=0)
    np.testing.assert_array_equal(init[0], [3, 3, 3, 3])
    np.testing.assert_array_equal(init[1], [1, 1, 1, 1])
    assert len({tuple(r) for r in init}) == 3


def _clients(seed=0):
    rng = np.random.default_rng(seed)
    protos = np.array([[0] * 6, [1] * 6, [2, 2, 2, 3, 3, 3], [4] * 6])
    out = []
    for _ in range(5):
        rows = protos[rng.integers(0, 4, 60)].copy()
        noise = rng.random(rows.shape) < 0.15
        rows[noise] = rng.integers(0, 6, noise.sum())
        out.append(rows)
    return out


class InProcessGrid:
    """A grid that hands each message to the mood ClientApp in this process (one Context per node)."""

    def __init__(self, app, n_nodes: int) -> None:
        self.app, self.contexts = app, {node: make_context(node - 1, n_nodes) for node in range(1, n_nodes + 1)}
        self.sent: list[str] = []

    def get_node_ids(self) -> list[int]:
        return list(self.contexts)

    def send_and_receive(self, messages, timeout=None):
        self.sent += [m.content["config"]["stage"] for m in messages]
        return [self._reply(m) for m in messages]

    def _reply(self, message):
        try:
            return self.app(message, self.contexts[message.metadata.dst_node_id])
        except Exception as e:  # as Flower's runtime does: the node replies with an error
            return Message(Error(code=0, reason=str(e)), reply_to=message)


def test_the_servers_clustering_loop_over_the_client_apps_matches_centralised_kmodes(small_cfg, server_identity):
    """The ServerApp's own k-modes loop, asking the devices' real ClientApp for its statistics."""
    n_users, data = 6, small_cfg["data"]
    k, max_iter, seed = int(data["n_clusters"]), int(data["cluster_max_iter"]), int(small_cfg["seed"])
    grid = InProcessGrid(build_client_app(lambda _ctx: small_cfg), n_users)
    centres, iters = federated_clustering(plain_collect(grid, grid.get_node_ids(), 30.0, None), k, max_iter, seed)
    assert grid.sent[:n_users] == ["histograms"] * n_users and set(grid.sent[n_users:]) == {"counts"}
    assert len(grid.sent) == n_users * (1 + iters)
    devices = [load_local_data(data, user, seed) for user in range(n_users)]
    labels, _ = centralised_clustering(devices, k, max_iter, seed)
    x = np.concatenate([d.fragments for d in devices])
    assert agreement(labels, assign(x, centres)) > 0.95
    # a client that fails fails the clustering
    grid.app = lambda m, ctx: (_ for _ in ()).throw(RuntimeError("device down"))
    with pytest.raises(ClientRoundError, match="6 of 6 clients failed; node 1: device down"):
        federated_clustering(plain_collect(grid, grid.get_node_ids(), 30.0, None), k, max_iter, seed)
