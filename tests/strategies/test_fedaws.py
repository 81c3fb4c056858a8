"""FedAwS (strategies/fedaws.py): the spreadout step, and one-class devices whose federated heads
identify the classes where plain FedAvg of softmax heads does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from fedmood.classification import CosineHead, cross_entropy, positive_cosine_loss, predict
from fedmood.federated.study import run_fedavg_study
from fedmood.keys import NUM_EXAMPLES
from fedmood.training import TensorBatches, shuffled_batches, train_epoch
from strategies.fedaws import FedAwS, normalise_rows, spreadout_penalty, spreadout_step
from tests.conftest import make_message


def test_the_spreadout_step_against_a_hand_computation():
    w = np.array([[0.0, 0.0], [0.5, 0.0], [3.0, 0.0]])
    # only rows 0 and 1 are closer than the margin 1 (distance 0.5): the penalty counts the pair twice
    assert spreadout_penalty(w, 1.0) == 2 * 0.5**2
    # gradient of row 0: -4 * (1 - 0.5) * (w0 - w1) / 0.5 = (2, 0); of row 1: (-2, 0); row 2 feels nothing
    stepped = spreadout_step(w, margin=1.0, lr=0.1)
    np.testing.assert_allclose(stepped, [[-0.2, 0.0], [0.7, 0.0], [3.0, 0.0]])
    assert spreadout_penalty(stepped, 1.0) == pytest.approx(2 * (1 - 0.9) ** 2)


def test_the_spreadout_gradient_matches_finite_differences():
    w = np.random.default_rng(0).normal(size=(5, 3)) * 0.4
    grad = w - spreadout_step(w, margin=1.5, lr=1.0)  # lr 1: the step is the gradient
    eps, numeric = 1e-6, np.zeros_like(w)
    for idx in np.ndindex(*w.shape):
        up, down = w.copy(), w.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (spreadout_penalty(up, 1.5) - spreadout_penalty(down, 1.5)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


N_CLASSES, DIM = 10, 16


def _class_data(seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class: ``n`` points around that class's own centre (overlapping classes, like users' windows)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(N_CLASSES, DIM))
    return [
        ((centres[c] + rng.normal(size=(n, DIM))).astype(np.float32), np.full(n, c, np.int64)) for c in range(N_CLASSES)
    ]


def _federated_heads(fedaws: bool) -> float:
    """Held-out accuracy of the heads trained by 10 devices holding one class each (10 rounds of 20
    local epochs): softmax heads averaged by FedAvg, or cosine heads trained on positive labels only
    and averaged by FedAwS."""

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        head = CosineHead(16, N_CLASSES) if fedaws else torch.nn.Linear(16, N_CLASSES)
        return torch.nn.Sequential(torch.nn.Linear(DIM, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16), head)

    def loss(net: torch.nn.Module, batch: TensorBatches) -> torch.Tensor:
        x, y = batch.tensors
        return positive_cosine_loss(net(x), y, net[-1].scale) if fedaws else cross_entropy(net, batch)

    devices = _class_data(seed=1, n=64)
    client = ClientApp()

    @client.train()
    def _train(msg: Message, context: Context) -> Message:
        x, y = devices[int(context.node_config["partition-id"])]
        net = model()
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(int(msg.content["config"]["server-round"]))
        for _ in range(20):
            train_epoch(net, shuffled_batches(TensorBatches.from_numpy(x, y), 16, gen), opt, None, loss_fn=loss)
        return Message(
            RecordDict({"arrays": ArrayRecord(net.state_dict()), "metrics": MetricRecord({NUM_EXAMPLES: len(y)})}),
            reply_to=msg,
        )

    inner = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=N_CLASSES, min_available_nodes=N_CLASSES)
    strategy = FedAwS(inner, ["3.class_embeddings"], margin=1.0, lr=0.5) if fedaws else inner
    final, _ = run_fedavg_study("heads", client, strategy, ArrayRecord(model().state_dict()), 10, N_CLASSES)
    net = model()
    net.load_state_dict(final.to_torch_state_dict())
    held_out = _class_data(seed=2, n=100)
    x, y = np.concatenate([d[0] for d in held_out]), np.concatenate([d[1] for d in held_out])
    return float((predict(net, x) == y).mean())


def test_one_class_devices_federated_heads_identify_the_classes_with_fedaws_not_with_fedavg():
    chance = 1 / N_CLASSES
    plain, spread = _federated_heads(fedaws=False), _federated_heads(fedaws=True)
    # each device's softmax head learns "my class for everything"; their average barely beats chance
    assert plain <= chance + 0.15, f"plain FedAvg heads: {plain:.2f}"
    assert spread >= 0.5 and spread >= plain + 0.3, f"FedAwS heads: {spread:.2f} (plain FedAvg {plain:.2f})"


def _reply(arrays: dict[str, np.ndarray], n: int) -> Message:
    content = RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                          "metrics": MetricRecord({NUM_EXAMPLES: n})})  # fmt: skip
    return Message(content, reply_to=make_message(RecordDict(), "train"))


def test_each_row_comes_from_the_device_that_moved_it_and_unmoved_embeddings_stay():
    start = normalise_rows(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], np.float32))
    feats = np.zeros(3, np.float32)
    strategy = FedAwS(FedAvg(), ["w"], margin=0.1, lr=0.1)  # margin below every distance: no spreadout push
    strategy._start = {"w": start}
    moved0, moved2 = start.copy(), start.copy()
    moved0[0], moved2[2] = [0.0, -1.0], [0.6, 0.8]  # device A moved row 0, device B row 2
    replies = [_reply({"w": moved0, "f": feats + 1}, 10), _reply({"w": moved2, "f": feats + 3}, 30)]
    arrays, _ = strategy.aggregate_train(1, replies)
    np.testing.assert_allclose(arrays["w"].numpy(), [[0.0, -1.0], [0.0, 1.0], [0.6, 0.8]], atol=1e-6)
    np.testing.assert_allclose(arrays["f"].numpy(), feats + 2.5)  # everything else: FedAvg (weighted by examples)
    # a phase in which nobody touched the embeddings leaves them exactly as they were
    replies = [_reply({"w": start, "f": feats}, 10), _reply({"w": start, "f": feats}, 30)]
    arrays, _ = strategy.aggregate_train(2, replies)
    np.testing.assert_array_equal(arrays["w"].numpy(), start)
