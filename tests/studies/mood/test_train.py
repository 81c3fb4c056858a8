"""The mood recommender's fastai-style recipe: the one-cycle schedule, positioned mid-run; training."""

import numpy as np
import torch

from fedmood.studies.mood.model import GLOBAL_KEYS, LOCAL_KEYS, EmbeddingDotBias
from fedmood.studies.mood.train import TrainConfig, make_optimizer, make_scheduler
from fedmood.training import Batches, evaluate_mse, shuffled_batches, train_epoch


def test_scheduler_can_start_mid_cycle():
    cfg = TrainConfig()
    m = EmbeddingDotBias(2, 3)
    ref = make_scheduler(make_optimizer(m, cfg), cfg, total_steps=40)
    lrs = []
    for _ in range(40):
        lrs.append(ref.optimizer.param_groups[0]["lr"])
        ref.optimizer.step()
        ref.step()
    for start in (0, 7, 10, 39):
        opt = make_optimizer(m, cfg)
        make_scheduler(opt, cfg, total_steps=40, start_step=start)
        assert np.isclose(opt.param_groups[0]["lr"], lrs[start])


def test_model_range_keys_and_training_reduces_error():
    torch.manual_seed(0)
    m = EmbeddingDotBias(4, 3, n_factors=8)
    assert set(m.state_dict()) == set(GLOBAL_KEYS) | set(LOCAL_KEYS)
    users = np.repeat(np.arange(4), 30)
    items = np.tile(np.arange(3), 40)
    truth = np.array([[1, -1, 0], [-1, 1, 1], [0, 0, 1], [1, 1, -1]], dtype=np.float32)
    data = Batches.from_numpy(users, items, truth[users, items])
    cfg = TrainConfig(epochs=30, lr_max=0.05)
    before = evaluate_mse(m, data)
    opt = make_optimizer(m, cfg)
    sched = make_scheduler(opt, cfg, 30 * 2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        train_epoch(m, shuffled_batches(data, 64, gen), opt, sched)
    assert evaluate_mse(m, data) < 0.1 * before
    out = m(torch.tensor([0, 1]), torch.tensor([0, 0]))
    assert (out > -1.5).all() and (out < 1.5).all()
