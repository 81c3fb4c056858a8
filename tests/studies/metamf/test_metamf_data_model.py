"""MetaMF data (splits, β, user groups, malformed files) and the gather-based MetaMF/NoMetaMF model."""

import math

import numpy as np
import pytest
import torch

from fedmood.data.ratings import RatingsFormatError
from fedmood.paths import PROJECT_ROOT
from fedmood.studies.metamf.data import (
    SPLITS,
    Ratings,
    RatingSplits,
    load_metamf_dataset,
    load_ratings_file,
    read_rating_split,
    reveal,
    user_groups,
)
from fedmood.studies.metamf.model import RATING_GENERATOR_PREFIXES, MetaMF

SHARED = PROJECT_ROOT.parent / "shared" / "data" / "metamf"


def _ratings(counts, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(len(counts)), counts)
    return Ratings(users, rng.integers(0, n_items, len(users)), rng.integers(1, 6, len(users)).astype(np.float32))


def test_reveal_keeps_ceil_beta_of_each_users_ratings_seeded_and_nested():
    counts = [1, 2, 3, 7, 10, 25, 0, 4]
    train = _ratings(counts)
    for beta in (1.0, 0.5, 0.3, 0.1):
        kept = reveal(train, len(counts), beta, seed=3)
        assert kept.counts(len(counts)).tolist() == [math.ceil(beta * c) for c in counts]
        assert (kept.counts(len(counts))[np.array(counts) > 0] >= 1).all()  # everyone keeps a rating
    a, b = reveal(train, len(counts), 0.5, seed=3), reveal(train, len(counts), 0.5, seed=3)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.ratings, b.ratings)
    other = reveal(train, len(counts), 0.5, seed=4)
    assert not (np.array_equal(a.items, other.items) and np.array_equal(a.ratings, other.ratings))
    small, large = reveal(train, len(counts), 0.3, seed=3), reveal(train, len(counts), 0.6, seed=3)
    pairs = set(zip(large.users.tolist(), large.items.tolist(), large.ratings.tolist(), strict=True))
    assert set(zip(small.users.tolist(), small.items.tolist(), small.ratings.tolist(), strict=True)) <= pairs
    with pytest.raises(ValueError, match="beta"):
        reveal(train, len(counts), 0.0, seed=3)


def test_user_groups_are_five_percent_by_rating_count():
    counts = np.arange(1, 101)  # user u has u+1 ratings
    rng = np.random.default_rng(0)
    rng.shuffle(counts)
    data = RatingSplits("t", 100, 30, _ratings(counts), _ratings([0] * 100), _ratings([0] * 100))
    g = user_groups(data)
    assert {k: len(v) for k, v in g.items()} == {"Low": 5, "Med": 5, "High": 5}
    assert sorted(counts[g["Low"]]) == [1, 2, 3, 4, 5] and sorted(counts[g["High"]]) == [96, 97, 98, 99, 100]
    med = sorted(counts[g["Med"]])  # median 50.5: 50, 51, then 49, 52, then one of 48 / 53
    assert set(med) >= {49, 50, 51, 52} and (set(med) - {49, 50, 51, 52}) <= {48, 53}


def test_own_ratings_file_gets_the_metamf_80_10_10_split(tmp_path):
    path = tmp_path / "r.csv"
    rows = [f"u{u},i{(u * 7 + k) % 31},{1 + k % 5}" for u in range(4) for k in range(10 + 5 * u)]
    path.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    data = load_ratings_file(path, seed=1)
    assert (data.n_users, data.n_items) == (4, 31)
    for u, n in enumerate([10, 15, 20, 25]):
        test = math.ceil(n / 10)
        valid = round((n - test) / 9)
        assert [data.split(s).counts(4)[u] for s in SPLITS] == [n - test - valid, valid, test]


@pytest.mark.parametrize(
    "line, field",
    [("0\t5\tfour", "rating"), ("0\t99\t4.0", "item"), ("-1\t1\t4.0", "user"), ("0\t1.5\t4.0", "item")],
)
def test_malformed_rating_file_names_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "x.train.rating"
    path.write_text("0\t1\t4.0\n1\t2\t3.0\n" + line + "\n")
    with pytest.raises(RatingsFormatError, match=rf"x\.train\.rating: line 3: field '{field}'"):
        read_rating_split(path, n_users=3, n_items=10)


def test_gather_forward_equals_the_full_table_forward():
    torch.manual_seed(0)
    m = MetaMF(7, 11, layers=(8,), sparse=False)
    users, items = torch.randint(0, 7, (40,)), torch.randint(0, 11, (40,))
    fast, naive = m(users, items), m.forward_full_table(users, items)
    assert torch.allclose(fast, naive, atol=1e-6)
    g_fast = torch.autograd.grad(fast.pow(2).sum(), list(m.parameters()))
    g_naive = torch.autograd.grad(m.forward_full_table(users, items).pow(2).sum(), list(m.parameters()))
    for a, b in zip(g_fast, g_naive, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_nometamf_freezes_exactly_the_rating_model_generators():
    torch.manual_seed(0)
    meta, nometa = MetaMF(5, 9, sparse=False), MetaMF(5, 9, meta=False, sparse=False)
    frozen = {n for n, p in nometa.named_parameters() if not p.requires_grad}
    expected = {n for n, _ in nometa.named_parameters() if n.startswith(RATING_GENERATOR_PREFIXES)}
    assert frozen == expected and len(frozen) == 2 * 3 * 2  # 2 layers x (hidden, weight, bias) x (W, b)
    assert all(p.requires_grad for p in meta.parameters())
    before = {n: p.detach().clone() for n, p in nometa.named_parameters()}
    opt = torch.optim.Adam([p for p in nometa.parameters() if p.requires_grad], lr=1e-2)
    loss = (nometa(torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])) - 4.0).pow(2).mean()
    loss.backward()
    opt.step()
    for n, p in nometa.named_parameters():
        changed = not torch.equal(before[n], p.detach())
        assert changed == (n not in frozen), n


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"MetaMF data not found at {SHARED} (see ../shared/data/README.md)")
@pytest.mark.parametrize(
    "name, sizes", [("ml", (6040, 3706, 797758, 99692, 102759)), ("ciao", (7375, 105096, 223006, 28240, 31373))]
)
def test_published_splits_load_with_their_documented_sizes(name, sizes):
    data = load_metamf_dataset(SHARED, name)
    assert (data.n_users, data.n_items, len(data.train), len(data.valid), len(data.test)) == sizes
    assert all((np.diff(data.split(s).users) >= 0).all() for s in SPLITS)


def _tiny_splits(seed=0, n_users=12, n_items=15):
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(n_users, 3)) @ rng.normal(size=(3, n_items))

    def rows(k):
        users = np.repeat(np.arange(n_users), k)
        items = rng.integers(0, n_items, len(users))
        return Ratings(users, items, np.clip(np.round(3 + taste[users, items]), 1, 5).astype(np.float32))

    return rows(12), rows(3)


def test_fit_resumes_from_its_checkpoint_with_the_same_result(tmp_path):
    from fedmood.studies.metamf.train import MetaTrainConfig, fit

    train, valid = _tiny_splits()
    cfg = MetaTrainConfig(lr=3e-3, max_epochs=4, patience=10)
    torch.manual_seed(1)
    straight = fit(MetaMF(12, 15), train, valid, cfg, tmp_path / "a.pt", progress=False)
    assert straight.history[-1]["val_mae"] < straight.history[0]["val_mae"]
    # a run stopped after 2 epochs, then resumed in a fresh process to 4 epochs
    torch.manual_seed(1)
    fit(MetaMF(12, 15), train, valid, MetaTrainConfig(lr=3e-3, max_epochs=2, patience=10), tmp_path / "b.pt", False)
    torch.manual_seed(99)  # a different initialisation: the checkpoint must override it
    resumed = fit(MetaMF(12, 15), train, valid, cfg, tmp_path / "b.pt", progress=False)
    assert [h["val_mae"] for h in resumed.history] == [h["val_mae"] for h in straight.history]
    assert resumed.best_epoch == straight.best_epoch
    with pytest.raises(ValueError, match="a checkpoint of another run"):
        fit(MetaMF(12, 15), train, valid, MetaTrainConfig(lr=1e-3, max_epochs=4), tmp_path / "a.pt", False)
