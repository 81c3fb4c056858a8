import numpy as np

from fedmood.studies.mood.clustering import (
    agreement,
    assign,
    centres_from_clients,
    cluster_counts,
    federated_kmodes,
    initial_centres,
    kmodes_centralised,
    matching_dissimilarity,
    modes_from_counts,
    slot_histograms,
)


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


def test_federated_kmodes_matches_centralised_kmodes():
    clients = _clients()
    centres, iters = federated_kmodes(clients, k=4, n_values=6)
    x = np.concatenate(clients)
    labels_c, _ = kmodes_centralised(x, centres_from_clients(clients, 4, 6, seed=0))
    assert iters >= 1
    assert agreement(labels_c, assign(x, centres)) > 0.95
