"""Federated MetaMF: one round over every user of a batch equals one centralised training step.

Both sides step with SGD (lr 1), so the parameter change is exactly the (jointly clipped)
gradient; with Adam the same gradients give the same steps, but Adam's first step,
g / (|g| + eps), turns float rounding in near-zero gradients into visible differences.
"""

import copy

import numpy as np
import pytest
import torch

from fedmood.studies.metamf import protocol as fed
from fedmood.studies.metamf.model import MetaMF
from fedmood.studies.metamf.optim import CombinedOptimizer, clip_factor
from fedmood.studies.metamf.train import MetaTrainConfig, lazy_l2
from fedmood.training import Batches, train_epoch


def test_one_federated_round_equals_one_centralised_step():
    torch.manual_seed(0)
    n_users, n_items = 4, 10
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n_users), 5)
    items = rng.integers(0, n_items, len(users))
    ratings = rng.integers(1, 6, len(users)).astype(np.float32)
    batch = Batches.from_numpy(users, items, ratings)
    cfg = MetaTrainConfig(grad_clip=0.5)  # a small clip norm, so clipping is exercised

    central = MetaMF(n_users, n_items)
    server = copy.deepcopy(central)
    sgd = CombinedOptimizer([torch.optim.SGD(central.parameters(), lr=1.0)], clip_norm=cfg.grad_clip)
    train_epoch(central, [batch], sgd, None, lazy_l2(central, cfg.weight_decay))

    # devices: their own embedding and Adam; the server never touches user embeddings
    e = {u: server.user_embedding.weight[u].detach().clone().requires_grad_(True) for u in range(n_users)}
    dev_opt = {u: torch.optim.SGD([e[u]], lr=1.0) for u in range(n_users)}
    server.user_embedding.weight.requires_grad_(False)
    server_opt = CombinedOptimizer([torch.optim.SGD([p for p in server.parameters() if p.requires_grad], lr=1.0)])
    memory = server.memory.detach().clone()
    rows = {u: np.flatnonzero(users == u) for u in range(n_users)}
    # 1. collaborative vectors and batch items
    c = {u: (e[u] @ memory).detach() for u in range(n_users)}
    ids = {u: torch.unique(torch.as_tensor(items[rows[u]])) for u in range(n_users)}
    # 2. private parameters down, their gradients up
    grads = {}
    for u in range(n_users):
        with torch.no_grad():
            phi = fed.generate(server, c[u], ids[u])
        _, grads[u] = fed.device_gradients(phi, torch.as_tensor(items[rows[u]]), torch.as_tensor(ratings[rows[u]]))
    # 3. back-propagation through the generators; M's gradient and the embedding norms from the devices
    server_opt.zero_grad()
    grad_c = {u: fed.server_backward(server, c[u], ids[u], grads[u], len(users)) for u in range(n_users)}
    fed.lazy_l2_items(server, torch.unique(torch.as_tensor(items)), cfg.weight_decay)
    server.memory.grad = sum(fed.memory_share(e[u].detach(), grad_c[u]) for u in range(n_users))
    grad_e = {u: grad_c[u] @ memory.T for u in range(n_users)}
    device_sq = [float(grad_e[u].pow(2).sum()) for u in range(n_users)]
    # 4. joint clipping and the steps
    scale = clip_factor([server_opt.squared_grad_norm(), *device_sq], cfg.grad_clip)
    assert scale < 1.0
    server_opt.scale_grads(scale)
    server_opt.step()
    for u in range(n_users):
        e[u].grad = grad_e[u] * scale
        dev_opt[u].step()

    for (name, p_c), (_, p_s) in zip(central.named_parameters(), server.named_parameters(), strict=True):
        if name != "user_embedding.weight":
            assert torch.allclose(p_c, p_s, atol=1e-6), (name, float((p_c - p_s).abs().max()))
    for u in range(n_users):
        assert torch.allclose(central.user_embedding.weight[u], e[u], atol=1e-6)
    assert not torch.allclose(central.memory, memory)  # the step did move the model


@pytest.mark.flower
def test_federated_metamf_trains_on_flower_and_counts_the_bytes():
    from fedmood.studies.metamf.data import Ratings, RatingSplits
    from fedmood.studies.metamf.federated_experiment import run_federated_metamf

    rng = np.random.default_rng(1)
    n_users, n_items = 6, 12
    users = np.repeat(np.arange(n_users), 15)
    items = rng.integers(0, n_items, len(users))
    ratings = (1 + (items % 5)).astype(np.float32)  # learnable: the rating depends on the item
    cfg = {"seed": 0, "training": {"lr": 0.01, "weight_decay": 1e-3, "batch_size": 64, "grad_clip": 5.0}}
    rows = Ratings(users, items, ratings)
    pos = np.arange(len(users)) % 15  # each user: 11 training, 2 test, 2 validation rows
    train, test_rows, valid = (rows.take(np.flatnonzero(m)) for m in (pos < 11, (pos >= 11) & (pos < 13), pos >= 13))
    splits = RatingSplits("toy", n_users, n_items, train, valid, test_rows)
    history, _model, test = run_federated_metamf(cfg, splits, rounds=5, eval_every=2)
    assert [h["clients"] for h in history] == [n_users] * 5
    assert history[-1]["train_mse"] < history[0]["train_mse"]
    assert [h["round"] for h in history if "val_mae" in h] == [2, 4, 5]
    assert history[-1]["val_mae"] < history[1]["val_mae"]
    # the devices' test sums are their own rows' errors under the final model and their embeddings
    abs_sum, sq_sum, counts = test
    assert counts.tolist() == [2] * n_users and (abs_sum > 0).all() and (sq_sum > 0).all()
    floats_phi = 32 * 8 + 8 + 8 + 1  # the generated rating MLP, before the item embeddings
    assert history[0]["bytes_down_per_client"] > 4 * (32 * 128 + floats_phi)  # memory + Φ_u at least
    assert history[0]["bytes_up_per_client"] > 4 * (128 + floats_phi + 32 * 128)  # c_u, ∂L/∂Φ_u, M's share
