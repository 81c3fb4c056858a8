"""MetaMF's optimiser: dense and sparse optimisers stepped as one, clipped jointly."""

import torch

from fedmood.studies.metamf.optim import CombinedOptimizer


def test_combined_optimizer_clips_dense_and_sparse_gradients_jointly():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    lin = torch.nn.Linear(3, 1)
    opt = CombinedOptimizer([torch.optim.SGD(lin.parameters(), lr=1.0), torch.optim.SparseAdam(emb.parameters())], 0.5)
    x = torch.tensor([1, 1, 4])
    (lin(emb(x)).sum() * 100).backward()
    dense_before = [p.grad.clone() for p in lin.parameters()]
    total = torch.sqrt(sum(g.pow(2).sum() for g in dense_before) + emb.weight.grad.coalesce().values().pow(2).sum())
    weights_before = lin.weight.detach().clone()
    opt.step()
    sparse_after = emb.weight.grad.coalesce().values()
    after = torch.sqrt(sum(p.grad.pow(2).sum() for p in lin.parameters()) + sparse_after.pow(2).sum())
    assert total > 0.5 and abs(float(after) - 0.5) < 1e-4  # one norm over both kinds, clipped to 0.5
    assert torch.allclose(lin.weight.detach(), weights_before - lin.weight.grad)  # SGD stepped with the clipped grad
