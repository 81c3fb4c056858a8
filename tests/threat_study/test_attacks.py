"""The attacks: scoring, the server's view, attribute inference on toy federations, MetaMF reconstruction."""

import numpy as np
import pytest
import torch

from fedmood.privacy.noise import SecureNoise
from fedmood.studies.metamf import protocol as fed
from fedmood.studies.metamf.model import MetaMF
from fedmood.studies.mood.data.generator import GeneratorConfig, write_day_logs
from fedmood.threat_study.attacks.attribute import replay_denoiser
from fedmood.threat_study.attacks.metamf import reconstruct_ratings
from fedmood.threat_study.attacks.scoring import evaluate_attack, within_item_auc
from fedmood.threat_study.run import attacked_run, attacks
from tests.conftest import logs_config


def test_within_item_auc_ignores_what_items_differ_in():
    items = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    labels = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    popular = np.where(items == 0, 10.0, 0.0)  # knows only which item is popular
    assert within_item_auc(items, items, labels, popular) == 0.5
    personal = np.array([3, 2, 1, 0, 5, 1, 2, 0.5])
    assert within_item_auc(items, items, labels, personal) == 1.0
    result = evaluate_attack(np.arange(8) % 4, items, labels, personal, n_boot=50)
    assert result.auc_within == 1.0 and result.auc_pooled >= result.auc_prior
    tied = evaluate_attack(np.arange(8) % 4, items, labels, 1.0 + 1e-15 * np.arange(8), n_boot=50)
    assert tied.auc_within == 0.5 and tied.auc_pooled == tied.auc_prior  # residue is not information


def _small_metamf(n_items=40):
    torch.manual_seed(0)
    model = MetaMF(3, n_items)
    c = torch.randn(128)
    items = torch.tensor([2, 5, 7, 11, 30])
    ratings = torch.tensor([1.0, 4.0, 5.0, 2.0, 3.0])
    phi = fed.generate(model, c, torch.unique(items))
    return phi, items, ratings


def _as_message_arrays(phi, grads):
    sent = {f"{p}{i}": t.detach().numpy() for i, (w, b) in enumerate(phi.layers) for p, t in (("w", w), ("b", b))}
    sent |= {"item_ids": phi.item_ids.numpy(), "item_embeddings": phi.item_embeddings.detach().numpy()}
    names = [f"{p}{i}" for i in range(len(phi.layers)) for p in ("w", "b")] + ["item_embeddings"]
    return sent, {n: g.numpy() for n, g in zip(names, grads, strict=True)}


def test_the_server_reads_every_rating_off_metamf_gradients():
    phi, items, ratings = _small_metamf()
    _, grads = fed.device_gradients(phi, items, ratings)
    ids, guess, _ = reconstruct_ratings(*_as_message_arrays(phi, grads))
    truth = dict(zip(items.tolist(), ratings.tolist(), strict=True))
    assert np.abs(guess - np.array([truth[i] for i in ids])).max() < 1e-4


def test_the_devices_rating_level_defence_blurs_them():
    """Over 40 fresh noise draws (5 ratings each) the server's guesses stay far from the truth.

    Without the defence every guess is within 1e-4 (the test above); with it about one guess in
    seven lands within 0.25 by chance, so the bounds below sit many standard errors from the
    measured rates (mean error 1.5, 13.5% within 0.25) and the test does not flake.
    """
    phi, items, ratings = _small_metamf()
    truth = dict(zip(items.tolist(), ratings.tolist(), strict=True))
    errors = []
    for _ in range(40):
        _, grads = fed.private_device_gradients(
            phi, items, ratings, clip=1.0, noise_multiplier=2.0, noise=SecureNoise()
        )
        ids, guess, _ = reconstruct_ratings(*_as_message_arrays(phi, grads))
        errors.append(np.abs(guess - np.array([truth[i] for i in ids])))
    errors = np.concatenate(errors)
    assert errors.mean() > 0.8 and (errors < 0.25).mean() < 0.35


@pytest.fixture(scope="module")
def toy_logs(tmp_path_factory):
    return write_day_logs(GeneratorConfig(n_users=8, n_days=6, seed=21), tmp_path_factory.mktemp("toy") / "logs")


def _toy(logs, tmp, mechanism, *extra):
    return logs_config(logs, tmp, "data.n_clusters=5", f"privacy={mechanism}", *extra, config_name="privacy_attacks")


@pytest.mark.flower
def test_the_server_reads_preferences_from_updates_and_secagg_hides_them(toy_logs, tmp_path):
    plain = attacks(attacked_run(_toy(toy_logs, tmp_path, "none", "training.epochs=5")), n_boot=20)[0]
    assert plain["attack"] == "client-updates" and plain["auc_within"] > 0.75
    assert plain["auc_pooled"] > plain["auc_prior"]  # it learnt about the persons, not just the items
    secure = attacks(attacked_run(_toy(toy_logs, tmp_path, "secagg", "training.epochs=5")), n_boot=20)
    assert {r["attack"] for r in secure} == {"disaggregation"}
    assert all(r["auc_within"] == 0.5 for r in secure)  # every client every round: nothing to tell apart


def _replay_residual(attacked) -> float:
    """Largest gap, over rounds, between the replay attacker's denoised release and the exact sum."""
    view, clip = attacked.view, float(attacked.cfg["privacy"]["central_dp"]["clipping_norm"])
    denoise = replay_denoiser(int(attacked.cfg["seed"]), attacked.run.privacy["noise_multiplier"], clip)
    gaps = [
        np.abs(a - b).max()
        for rnd in view.rounds
        if view.participants.get(rnd)
        for a, b in zip(
            denoise(rnd, view.participants[rnd], view.aggregate_update(rnd)),
            view.aggregate_update(rnd, exact=True),
            strict=True,
        )
    ]
    return float(max(gaps))


@pytest.mark.flower
def test_sampling_lets_the_disaggregation_attack_through_and_replay_needs_the_seed(toy_logs, tmp_path):
    """With seeded noise the replay attacker recovers the server's exact sums, and so its attack;
    with OS-entropy noise what it subtracts is unrelated to what was added (the residual is noise-sized).

    The secure run's AUC is not compared: on 8 users its value is a draw of the fresh noise.
    """
    extra = ("training.epochs=16", "federation.clients_per_round=4", "privacy.target_epsilon=8")
    replayable = "privacy.insecure_replayable_noise=true"
    insecure = attacked_run(_toy(toy_logs, tmp_path, "central_dp_secagg", *extra, replayable))
    rows = {(r["observer"], r["attack"]): r for r in attacks(insecure, n_boot=20)}
    server = rows[("server", "disaggregation")]  # the exact sums the server unmasked, and who took part
    assert server["auc_within"] > 0.6 and server["auc_pooled"] > server["auc_prior"]
    replay = rows[("release-observer", "replay")]
    assert replay["auc_within"] == pytest.approx(server["auc_within"], abs=0.02)  # the seeded noise subtracted
    assert _replay_residual(insecure) < 1e-4
    secure = attacked_run(_toy(toy_logs, tmp_path, "central_dp_secagg", *extra))
    std = secure.run.privacy["noise_multiplier"] * float(secure.cfg["privacy"]["central_dp"]["clipping_norm"]) / 4
    assert _replay_residual(secure) > std  # the largest of hundreds of fresh normal draws, twice the noise
