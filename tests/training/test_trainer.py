"""The one training loop, on a model of no study: any loss, empty batches, model selection, devices."""

import pytest
import torch
from torch import nn

from fedmood.training import BestEpoch, TensorBatches, shuffled_batches, steps_per_epoch, torch_device, train_epoch


def _regression(n: int = 200) -> TensorBatches:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=gen)
    return TensorBatches((x, x @ torch.tensor([[1.0], [-2.0], [0.5]])))


def _mse(model: nn.Module, batch: TensorBatches) -> torch.Tensor:
    x, y = batch.tensors
    return nn.functional.mse_loss(model(x), y)


def test_train_epoch_with_any_loss_reduces_it_and_reports_the_mean_over_rows():
    torch.manual_seed(0)
    data, model = _regression(), nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(1)
    first = train_epoch(model, shuffled_batches(data, 32, gen), opt, None, loss_fn=_mse)
    for _ in range(20):
        last = train_epoch(model, shuffled_batches(data, 32, gen), opt, None, loss_fn=_mse)
    assert last < 0.01 * first
    with torch.no_grad():
        assert float(_mse(model, data)) == pytest.approx(last, rel=0.5)


def test_an_empty_batch_still_steps_but_adds_nothing_to_the_reported_loss():
    data, model = _regression(10), nn.Linear(3, 1)
    steps = []
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    opt.step = lambda: steps.append(1)  # count the steps
    empty = data.take(torch.tensor([], dtype=torch.long))
    with torch.no_grad():
        full = float(_mse(model, data))
    loss = train_epoch(model, [data, empty], opt, None, loss_fn=_mse)
    assert len(steps) == 2 and loss == pytest.approx(full)


def test_best_epoch_keeps_the_best_weights_and_stops_after_patience():
    model, best = nn.Linear(1, 1), BestEpoch(patience=2)
    scores = [0.1, 0.5, 0.4, 0.3, 0.9]
    weights = {}
    stopped = None
    for epoch, score in enumerate(scores, start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        weights[epoch] = float(epoch)
        if best.update(model, epoch, score):
            stopped = epoch
            break
    assert stopped == 4 and best.best_epoch == 2
    best.restore(model)
    assert float(model.weight.detach()) == weights[2]


def test_steps_and_torch_devices():
    assert steps_per_epoch(65, 64) == 2 and steps_per_epoch(0, 64) == 1
    assert torch_device("cpu").type == "cpu" and torch_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            torch_device("cuda")
