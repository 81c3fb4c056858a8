"""The anonymising autoencoder: identity loss, shapes, and that training hides identity."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from fedmood.classification import predict, scores
from fedmood.studies.aae.classify import ClassifierConfig, fit_classifier
from fedmood.studies.aae.losses import identity_loss
from fedmood.studies.aae.model import Autoencoder, WindowCNN
from fedmood.studies.aae.train import AAEConfig, Adversaries, aae_loss, reconstruction_loss, train_aae
from fedmood.training import BestEpoch, TensorBatches


def test_identity_loss_matches_equation_7_by_hand():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    # user 1 in row 1: -(log(1 - 0.3) + log(1 - 0.5)); user 2 in row 2: -(log(1 - 0.8) + log(1 - 0.8))
    expected = (-(math.log(0.7) + math.log(0.5)) - 2 * math.log(0.2)) / 2
    assert identity_loss(probs.log(), torch.tensor([1, 2])).item() == pytest.approx(expected, rel=1e-6)
    # a confident, correct identity classifier is the worst case for the anonymiser
    assert identity_loss(torch.tensor([[9.0, 0.0, 0.0]]), torch.tensor([0])) > identity_loss(
        torch.tensor([[0.0, 0.0, 9.0]]), torch.tensor([0])
    )


def test_shapes():
    aae = Autoencoder()
    z, out = aae(torch.randn(3, 2, 128))
    assert z.shape == (3, 2, 32) and out.shape == (3, 2, 128)
    assert WindowCNN(2, 32, 20)(z).shape == (3, 20) and WindowCNN(2, 128, 4)(out).shape == (3, 4)
    assert aae.transform(torch.randn(5, 2, 128)).shape == (5, 2, 128)
    paper = Autoencoder(hidden=100, arch="paper")  # the paper's layout: per-row 1 x 3 kernels, SELU, batch norm
    z, out = paper(torch.randn(3, 2, 128))
    assert z.shape == (3, 2, 32) and out.shape == (3, 2, 128)
    # each sensor row is encoded with the same kernels, never mixed with the other row
    x = torch.randn(3, 2, 128)
    paper.eval()
    swapped = paper.encoder(x.flip(1))
    torch.testing.assert_close(swapped, paper.encoder(x).flip(1))
    convs = [m for m in paper.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 and {c.kernel_size for c in convs} == {(1, 3)}
    # the last convolution of each half is not penalised
    hidden = convs[:-1] + [m for m in paper.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    expected = float(sum((m.weight.detach() ** 2).sum() for m in hidden))
    assert float(paper.kernel_l2().detach()) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="arch"):
        Autoencoder(arch="unet")


def _toy_windows(n_per: int = 60, users: int = 4, seed: int = 0):
    """Activity = frequency of channel 0; identity = a user-specific level and shape of channel 1."""
    rng = np.random.default_rng(seed)
    t = np.arange(128) / 50.0
    xs, act, uid = [], [], []
    for u in range(users):
        for a, freq in enumerate((1.0, 3.0)):
            for _ in range(n_per):
                phase = rng.uniform(0, 2 * np.pi)
                c0 = np.sin(2 * np.pi * freq * t + phase)
                c1 = (u - 1.5) + 0.5 * np.sin(2 * np.pi * (u + 1) * 0.5 * t + phase)
                xs.append(np.stack([c0, c1]) + 0.1 * rng.normal(size=(2, 128)))
                act.append(a)
                uid.append(u)
    return np.asarray(xs, np.float32), np.asarray(act), np.asarray(uid)


def test_short_training_hides_identity_from_a_fixed_classifier():
    torch.manual_seed(0)
    x, act, uid = _toy_windows()
    attacker = fit_classifier(x, uid, 4, ClassifierConfig(epochs=8, batch_size=32))
    raw_acc = scores(uid, predict(attacker, x))["accuracy"]
    assert raw_acc > 90
    cfg = AAEConfig(rounds=3, reg_epochs=2, aae_epochs=3, batch_size=32, hidden=16, reg_hidden=16)
    aae, history = train_aae(x, act, uid, 4, 2, cfg, progress=False)
    assert [h["round"] for h in history] == [1, 2, 3] and all(np.isfinite(h["aae_loss"]) for h in history)
    anon_acc = scores(uid, predict(attacker, aae.transform(torch.as_tensor(x)).numpy()))["accuracy"]
    assert anon_acc < raw_acc - 40, (raw_acc, anon_acc)
    # the control: the same schedule without the identity terms (a plain autoencoder) keeps identity
    plain, _ = train_aae(x, act, uid, 4, 2, replace(cfg, beta_i=0.0, beta_d=1.0), progress=False)
    assert scores(uid, predict(attacker, plain.transform(torch.as_tensor(x)).numpy()))["accuracy"] > 80


@pytest.mark.flower
def test_federated_aae_alternates_phases_and_hides_identity():
    from fedmood.studies.aae.federated import run_federated_aae

    torch.manual_seed(0)
    x, act, uid = _toy_windows()
    attacker = fit_classifier(x, uid, 4, ClassifierConfig(epochs=8, batch_size=32))
    cfg = AAEConfig(rounds=3, reg_epochs=2, aae_epochs=3, batch_size=32, hidden=16, reg_hidden=16)
    clients = [(x[uid == u], act[uid == u]) for u in range(4)]  # one client per user, its windows only
    aae, history = run_federated_aae(clients, 2, cfg, progress=False)
    assert [h["phase"] for h in history] == ["adversaries", "anonymiser"] * 3
    assert all(h["clients"] == 4 for h in history) and history[0]["bytes_up_per_client"] > 4 * 10_000
    assert "enc_reg_acc" in history[0] and "aae_loss" in history[1]
    anon_acc = scores(uid, predict(attacker, aae.transform(torch.as_tensor(x)).numpy()))["accuracy"]
    assert anon_acc < 60, anon_acc


def _federated_toy(identity_heads: str) -> tuple[list[dict], tuple[np.ndarray, ...], AAEConfig]:
    """Two rounds of the federated AAE on the 4 toy users (one client each), the heads measured on
    windows of a second draw; the history, the training windows and the config."""
    from fedmood.studies.aae.federated import run_federated_aae

    torch.manual_seed(0)
    x, act, uid = _toy_windows(n_per=20)
    held_x, _, held_uid = _toy_windows(n_per=5, seed=1)
    cfg = AAEConfig(rounds=2, batch_size=32, hidden=8, reg_hidden=8, identity_heads=identity_heads)
    clients = [(x[uid == u], act[uid == u]) for u in range(4)]
    _, history = run_federated_aae(clients, 2, cfg, progress=False, held_out=(held_x, held_uid))
    return history, (x, act, uid), cfg


@pytest.mark.flower
def test_federated_aae_with_fedaws_identity_heads_measures_them_on_held_out_windows():
    from fedmood.studies.aae.federated import EMBEDDINGS

    history, (x, act, uid), cfg = _federated_toy("fedaws")
    adversaries = [h for h in history if h["phase"] == "adversaries"]
    assert len(adversaries) == 2 and all(0 <= h["dec_reg_heldout_acc"] <= 100 for h in adversaries)
    assert all("enc_reg_heldout_acc" not in h for h in history if h["phase"] == "anonymiser")
    assert set(EMBEDDINGS) == {"enc_reg", "dec_reg"}
    with pytest.raises(ValueError, match="federated AAE"):  # the centralised AAE has every user: softmax heads
        train_aae(x, act, uid, 4, 2, cfg, progress=False)
    with pytest.raises(ValueError, match="identity_heads"):
        AAEConfig(identity_heads="cosine")


@pytest.mark.flower
def test_federated_aae_with_discriminant_identity_heads_identifies_held_out_windows():
    """lda heads: fitted from the devices' statistics, they identify held-out windows of the toy users
    after the first adversaries round (chance 25 %); the AAE then trains against them."""
    from fedmood.studies.aae.federated import DISCRIMINANTS

    history, (x, act, uid), cfg = _federated_toy("lda")
    first = history[0]
    assert first["phase"] == "adversaries" and first["dec_reg_heldout_acc"] >= 90, first
    assert "enc_reg_acc" not in first and "act_reg_acc" in first  # the discriminants are fitted, not trained
    assert np.isfinite(history[1]["aae_loss"]) and set(DISCRIMINANTS) == {"enc_reg", "dec_reg"}
    # the statistics travel up in adversaries rounds only: (4 + 4 d + d²) float64 per head, d = 8 x 32 and 8 x 8
    extra = [h["bytes_up_per_client"] - h["bytes_down_per_client"] for h in history]
    assert extra == [8 * sum(4 + 4 * d + d * d for d in (64, 256)), 0] * 2
    with pytest.raises(ValueError, match="federated AAE"):
        train_aae(x, act, uid, 4, 2, cfg, progress=False)
    with pytest.raises(ValueError, match="lda_shrinkage"):
        AAEConfig(identity_heads="lda", lda_shrinkage=2.0)


def test_identity_warmup_turns_the_identity_terms_off_in_the_first_rounds_only():
    cfg = AAEConfig(rounds=4, identity_warmup=2, beta_i=1.5)
    assert [cfg.for_round(r).beta_i for r in (1, 2, 3, 4)] == [0.0, 0.0, 1.5, 1.5]
    with pytest.raises(ValueError, match="identity_warmup"):
        AAEConfig(rounds=4, identity_warmup=4)


def test_server_momentum_steps_the_anonymiser_rounds_under_the_discriminant_heads():
    from fedmood.studies.aae.federated import identity_strategy
    from strategies.fedlda import FederatedLDA
    from strategies.phase_momentum import PhaseMomentum

    strategy = identity_strategy(AAEConfig(identity_heads="lda", server_momentum=0.5), 4)
    assert isinstance(strategy, FederatedLDA) and isinstance(strategy.strategy, PhaseMomentum)
    inner = strategy.strategy
    assert (inner.phase_name, inner.momentum, inner.learning_rate) == ("anonymiser", 0.5, 1.0)
    assert strategy.phase(2) == "anonymiser"  # the experiment reads the phase through both wrappers
    assert not isinstance(identity_strategy(AAEConfig(identity_heads="lda"), 4).strategy, PhaseMomentum)
    with pytest.raises(ValueError, match="server_momentum"):
        AAEConfig(server_momentum=1.0)
    with pytest.raises(ValueError, match="server_lr"):
        AAEConfig(server_lr=0.0)


def test_a_federated_clients_round_does_not_depend_on_the_workers_random_state():
    """ActReg's dropout draws from the global generator: a client's round must give the same networks
    whichever worker plays it after whatever else (it is seeded by run seed, round and user)."""
    from flwr.app import ConfigRecord, RecordDict

    from fedmood.studies.aae.federated import build_networks, client_round, to_record
    from tests.conftest import make_message

    x, act, uid = _toy_windows(n_per=10)
    data = TensorBatches.from_numpy(x[uid == 2].astype(np.float32), act[uid == 2], uid[uid == 2])
    cfg = AAEConfig(rounds=2, batch_size=8, hidden=8, reg_hidden=8)
    torch.manual_seed(0)
    record = to_record(*build_networks(cfg, 128, 4, 2))

    def play(phase: str, rnd: int, worker_state: int) -> dict[str, np.ndarray]:
        torch.manual_seed(worker_state)
        content = RecordDict({"arrays": record, "config": ConfigRecord({"phase": phase, "server-round": rnd})})
        reply = client_round(make_message(content, "train"), data, cfg, 128, 4, 2, seed=0)
        return {k: v.numpy() for k, v in reply.content["arrays"].items()}

    for phase, rnd in (("adversaries", 1), ("anonymiser", 2)):
        first, second = play(phase, rnd, 1), play(phase, rnd, 2)
        assert all(np.array_equal(first[k], second[k]) for k in first), phase
    other_round = play("adversaries", 3, 1)  # the seed follows the round
    assert any(not np.array_equal(a, other_round[k]) for k, a in play("adversaries", 1, 1).items())
    play("anonymiser", 2, 5)  # the worker's own random state is left as it was
    after = torch.random.get_rng_state()
    torch.manual_seed(5)
    assert torch.equal(after, torch.random.get_rng_state())


def test_reconstruction_term_sums_over_the_window():
    """``window_sum`` weighs the squared error of a whole window; ``mean`` of one element."""
    torch.manual_seed(0)
    x = torch.randn(6, 2, 128)
    batch = TensorBatches((x, torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long)))
    aae = Autoencoder(hidden=8)
    adv = Adversaries.create(128, 32, 3, 2, AAEConfig(reg_hidden=8))
    only_mse = AAEConfig(beta_d=0.01, beta_i=0.0, beta_a=0.0)
    with torch.no_grad():
        out = aae(x)[1]
        summed = aae_loss(adv, only_mse)(aae, batch).item()
        mean = aae_loss(adv, replace(only_mse, reconstruction="mean"))(aae, batch).item()
    assert summed == pytest.approx(0.01 * float(((out - x) ** 2).sum()) / len(x), rel=1e-5)
    assert mean == pytest.approx(0.01 * float(((out - x) ** 2).mean()), rel=1e-5)
    with pytest.raises(ValueError, match=r"aae\.reconstruction"):
        aae_loss(adv, replace(only_mse, reconstruction="median"))


def test_pretraining_and_the_kernel_penalty():
    x, act, uid = _toy_windows(n_per=8)
    cfg = AAEConfig(rounds=1, pretrain_epochs=2, batch_size=32, hidden=8, reg_hidden=8)
    aae, history = train_aae(x, act, uid, 4, 2, cfg, progress=False)
    assert [h["round"] for h in history] == [0, 0, 1] and history[1]["pretrain_epoch"] == 2
    # the penalty is l2 times the hidden kernels' squared sum, in both losses
    batch = TensorBatches.from_numpy(x[:16], act[:16], uid[:16])
    adv = Adversaries.create(128, 32, 4, 2, cfg)
    adv.freeze(True)
    with torch.no_grad():
        for loss in (aae_loss, reconstruction_loss):
            plain = loss(adv, cfg) if loss is aae_loss else loss(cfg)
            penalised = loss(adv, replace(cfg, l2=1e-3)) if loss is aae_loss else loss(replace(cfg, l2=1e-3))
            aae.eval()
            gap = float(penalised(aae, batch) - plain(aae, batch))
            assert gap == pytest.approx(1e-3 * float(aae.kernel_l2()), rel=1e-3)  # a float32 difference


def test_validation_selection_keeps_the_best_epoch_and_stops(monkeypatch):
    model = torch.nn.Linear(1, 1)
    best = BestEpoch(patience=2)
    stops = []
    for epoch, score in enumerate([0.1, 0.5, 0.4, 0.3, 0.9], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        stops.append(best.update(model, epoch, score))
    assert stops == [False, False, False, True, False] and best.best_epoch == 5
    best = BestEpoch(patience=2)
    for epoch, score in enumerate([0.1, 0.5, 0.4], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        best.update(model, epoch, score)
    best.restore(model)
    assert model.weight.item() == 2.0

    # fit_classifier with validation windows stops once the validation F1 stops improving
    import fedmood.studies.aae.classify as classify

    calls = []
    real = classify.train_epoch
    monkeypatch.setattr(classify, "train_epoch", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, act, _ = _toy_windows(n_per=20)
    fit_classifier(x, act, 2, ClassifierConfig(epochs=40, patience=2, batch_size=32), val=(x, act))
    assert 3 <= len(calls) < 40


def test_the_papers_estimator_and_class_weights():
    from fedmood.studies.aae.classify import class_weights
    from fedmood.studies.aae.model import PaperCNN

    net = PaperCNN(2, 128, 24)
    x = torch.randn(3, 2, 128)
    assert net(x).shape == (3, 24)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 32, 32] and {c.kernel_size for c in convs} == {(2, 5)}
    # "same" padding keeps both sensor rows in every block; four 2x poolings: 128 -> 8 samples
    assert net.features(x[:, None]).shape == (3, 32, 2, 8)
    assert [m.out_features for m in net.head if isinstance(m, torch.nn.Linear)] == [256, 64, 24]
    kernels = [m.weight for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))][:-1]
    expected = float(sum((k.detach() ** 2).sum() for k in kernels))
    assert len(kernels) == 6 and float(net.kernel_l2().detach()) == pytest.approx(expected)
    # the paper's weights: the largest class's count over each class's; classes of 3, 2, 1 windows and none
    np.testing.assert_allclose(class_weights(np.array([0, 0, 0, 1, 1, 2]), 4).numpy(), [1, 3 / 2, 3, 0])
    x, act, _ = _toy_windows(n_per=10)
    cfg = ClassifierConfig(epochs=2, batch_size=7, arch="paper", class_weights=True, l2=1e-3)  # a last batch of one
    assert isinstance(fit_classifier(x[:141], act[:141], 2, cfg), PaperCNN)
    with pytest.raises(ValueError, match="arch"):
        ClassifierConfig(arch="resnet")
    with pytest.raises(ValueError, match="l2"):
        ClassifierConfig(l2=1e-3)  # the small CNN has no such penalty


def _toy_protocol():
    """Toy windows as every split of a :class:`Protocol`, and a one-epoch attacker's settings."""
    from fedmood.data.motionsense import SUBJECTS, Standardiser, Windows
    from fedmood.studies.aae.evaluate import Protocol

    x, act, uid = _toy_windows(n_per=6)
    w = Windows(x, act, np.asarray(SUBJECTS)[uid], np.ones(len(x), np.int64), ("a", "b"))
    proto = Protocol(w, w, w, w, w, Standardiser(np.zeros((2, 1)), np.ones((2, 1))))
    return proto, ClassifierConfig(epochs=1, batch_size=32)


def test_the_attacker_is_trained_once_per_windows_settings_and_seed(tmp_path, monkeypatch):
    from fedmood.studies.aae import evaluate as ev

    proto, cfg = _toy_protocol()
    w, x = proto.id_train, proto.id_train.x
    first, made = ev.identity_attacker(proto, cfg, 0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("aae-attacker-*.pt"))) == 1
    assert made["weights"] == ev.weights_digest(first) and made["torch"] == torch.__version__

    def no_training(*_a, **_k):
        raise AssertionError("trained again")

    monkeypatch.setattr(ev, "_train_attacker", no_training)
    lines = []
    again, loaded = ev.identity_attacker(proto, cfg, 0, lines.append, cache_dir=tmp_path)
    np.testing.assert_array_equal(predict(first, x), predict(again, x))
    assert loaded == made  # the provenance travels with the cached weights
    assert "loaded from" in lines[0] and made["weights"] in lines[0] and made["platform"] in lines[0]
    # another seed, other settings or other windows: not the cached weights
    fewer = replace(proto, id_train=w.take(np.arange(10)))
    for other in ((proto, cfg, 1), (proto, replace(cfg, epochs=2), 0), (fewer, cfg, 0)):
        with pytest.raises(AssertionError, match="trained again"):
            ev.identity_attacker(*other, cache_dir=tmp_path)


def test_a_cached_attacker_whose_weights_differ_from_its_record_is_refused(tmp_path):
    from fedmood.studies.aae import evaluate as ev

    proto, cfg = _toy_protocol()
    model, _ = ev.identity_attacker(proto, cfg, 0, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("aae-attacker-*.pt")
    state = model.state_dict()
    first = next(iter(state))
    state[first] = state[first] + 1.0  # e.g. another machine's attacker copied over this one's weights
    torch.save(state, cached)
    with pytest.raises(ValueError, match="differ from those recorded"):
        ev.identity_attacker(proto, cfg, 0, cache_dir=tmp_path)
