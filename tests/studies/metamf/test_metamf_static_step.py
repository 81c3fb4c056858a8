"""The fixed-shape MetaMF step (CUDA-graph path) computes the sparse path's step."""

from __future__ import annotations

import copy

import pytest
import torch

from fedmood.studies.metamf.model import MetaMF
from fedmood.studies.metamf.static_step import WARMUP_STEPS, StaticStep
from fedmood.studies.metamf.train import MetaTrainConfig, lazy_l2, make_optimizer
from fedmood.training import Batches, train_epoch


def batches(n_users: int, n_items: int, sizes: list[int], seed: int = 0) -> list[Batches]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for size in sizes:  # few items: plenty of repeated items within a batch
        out.append(
            Batches(
                torch.randint(n_users, (size,), generator=g),
                torch.randint(n_items, (size,), generator=g),
                torch.randint(1, 6, (size,), generator=g).to(torch.get_default_dtype()),
            )
        )
    return out


def train_both(meta: bool, clip: float, device: str = "cpu", graph: bool = False, sizes=(16, 16, 16, 16, 16, 7)):
    torch.manual_seed(0)
    base = MetaMF(12, 9, meta=meta).to(device)
    cfg = MetaTrainConfig(lr=0.01, grad_clip=clip)
    data = [
        b if device == "cpu" else Batches(b.users.to(device), b.items.to(device), b.ratings.to(device))
        for b in batches(12, 9, list(sizes))
    ]
    sparse_model = copy.deepcopy(base)
    sparse_opt = make_optimizer(sparse_model, cfg)
    mse_sparse = train_epoch(sparse_model, data, sparse_opt, None, lazy_l2(sparse_model, cfg.weight_decay))
    static_model = copy.deepcopy(base)
    static_opt = make_optimizer(static_model, cfg)
    step = StaticStep(static_model, static_opt, cfg.weight_decay, cfg.grad_clip, 16, graph=graph)
    mse_static = train_epoch(static_model, data, static_opt, None, None, step)
    return sparse_model, sparse_opt, mse_sparse, static_model, static_opt, mse_static


@pytest.fixture
def float64():
    """Exact comparisons: in float32, Adam's normalisation amplifies rounding noise on tiny gradients."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize(("meta", "clip"), [(True, 5.0), (False, 5.0), (True, 0.05)])
def test_static_step_equals_sparse_path(float64, meta: bool, clip: float) -> None:
    sparse_model, sparse_opt, mse_a, static_model, static_opt, mse_b = train_both(meta, clip)
    assert mse_a == pytest.approx(mse_b, rel=1e-12)
    for (name, a), b in zip(sparse_model.state_dict().items(), static_model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)
    sparse_rows, static_rows = sparse_opt.optimizers[1].state, static_opt.optimizers[1].state
    for p_a, p_b in zip(sparse_model.item_rows.parameters(), static_model.item_rows.parameters(), strict=True):
        assert sparse_rows[p_a]["step"] == static_rows[p_b]["step"] == 6
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(sparse_rows[p_a][key], static_rows[p_b][key], rtol=1e-10, atol=1e-14)


def test_static_step_leaves_untouched_rows(float64) -> None:
    torch.manual_seed(0)
    model = MetaMF(12, 30)
    before = model.item_rows.weight.detach().clone()
    step = StaticStep(model, make_optimizer(model, MetaTrainConfig(lr=0.01)), 1e-3, 5.0, 16, graph=False)
    data = batches(12, 30, [16, 5])
    train_epoch(model, data, None, None, None, step)
    touched = torch.zeros(30, dtype=torch.bool)
    touched[torch.cat([b.items for b in data])] = True
    moved = (model.item_rows.weight.detach() != before).any(1)
    assert torch.equal(moved, touched)


def test_static_step_refuses_oversized_batch() -> None:
    model = MetaMF(4, 4)
    step = StaticStep(model, make_optimizer(model, MetaTrainConfig()), 1e-3, 5.0, 8, graph=False)
    with pytest.raises(ValueError, match=r"1\.\.8 rows"):
        step(batches(4, 4, [9])[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the graph path runs only there)")
def test_cuda_graph_replay_equals_eager_and_sparse_path() -> None:
    sizes = [16] * (WARMUP_STEPS + 6) + [5]
    sparse_model, _, mse_a, graph_model, _, mse_b = train_both(True, 5.0, "cuda", graph=True, sizes=sizes)
    _, _, _, eager_model, _, mse_c = train_both(True, 5.0, "cuda", graph=False, sizes=sizes)
    assert mse_b == pytest.approx(mse_c, rel=1e-6)
    assert mse_a == pytest.approx(mse_b, rel=1e-4)
    for (name, a), b, c in zip(
        sparse_model.state_dict().items(),
        graph_model.state_dict().values(),
        eager_model.state_dict().values(),
        strict=True,
    ):
        torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-7, msg=name)
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)
