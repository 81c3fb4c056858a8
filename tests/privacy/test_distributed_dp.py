"""Distributed DP: the devices' discrete Gaussian shares, their accounting, and a real SecAgg+ run."""

import math

import numpy as np
import pytest

from fedmood.privacy import distributed
from fedmood.privacy.accounting import user_level_epsilon
from fedmood.privacy.central import PrivacyLedger
from fedmood.privacy.noise import SecureNoise
from fedmood.privacy.settings import PrivacyConfigError, PrivacySettings, SecAggSettings
from fedmood.studies.mood.device import centres_config, local_round
from fedmood.studies.mood.model import GLOBAL_KEYS
from fedmood.studies.mood.run import run_federated_simulation
from fedmood.studies.mood.server_app import initial_item_arrays
from tests.conftest import logs_config, make_context, with_privacy

STEP = SecAggSettings().grid_step


def test_the_sum_of_m_shares_carries_z_times_the_sensitivity():
    z, clip, dim, m = 3.0, 0.05, 500, 8
    sigma = distributed.share_sigma(z, clip, STEP, dim, m)
    shares = sum(SecureNoise().discrete_gaussian(20_000, sigma) for _ in range(m))
    sensitivity = distributed.grid_sensitivity(clip, STEP, dim)
    assert sensitivity == pytest.approx(clip / STEP + math.sqrt(dim))
    assert shares.std() / (z * sensitivity) == pytest.approx(1.0, abs=0.02)
    # accounting: exactly z with m shares (tau underflows), more shares only add noise, fewer remove it
    assert distributed.effective_noise_multiplier(sigma, m, clip, STEP, dim) == pytest.approx(z, rel=1e-12)
    assert distributed.effective_noise_multiplier(sigma, 2 * m, clip, STEP, dim) == pytest.approx(z * math.sqrt(2))
    assert distributed.effective_noise_multiplier(sigma, m // 2, clip, STEP, dim) == pytest.approx(z / math.sqrt(2))


def test_tau_penalises_tiny_shares():
    """Kairouz et al.'s correction: for shares of sigma ~ 1 level the sum is not quite Gaussian."""
    z_tiny = distributed.effective_noise_multiplier(0.3, 10, 1e-6, 1e-6, 4)
    assert z_tiny < 0.3 * math.sqrt(10) / distributed.grid_sensitivity(1e-6, 1e-6, 4)


def test_dropouts_raise_the_epsilon_of_that_round(small_cfg):
    cfg = with_privacy(small_cfg, preset="distributed_dp", target_epsilon=2.0)
    settings = PrivacySettings.from_cfg(cfg)
    fed = dict(cfg["federation"], strict=False, min_replies=4)
    full, dropped = (PrivacyLedger(settings, 6, None, 3, fed, dim=204) for _ in range(2))
    for _ in range(3):
        full.released({}, 4)
        dropped.released({}, 3)  # fewer shares than the noise was sized for: less noise in the sum
    assert full.epsilon() == pytest.approx(2.0, abs=0.05)  # sized for 4 shares, every round had 4
    assert dropped.epsilon() > 1.1 * full.epsilon()


@pytest.mark.parametrize(
    "privacy, field",
    [
        ({"preset": "distributed_dp", "secagg__enabled": False}, "distributed_dp.enabled"),
        ({"preset": "distributed_dp", "secagg__max_weight": 1000.0}, "secagg.max_weight"),
        ({"preset": "distributed_dp", "central_dp__enabled": True}, "dpsgd.enabled"),
        ({"preset": "distributed_dp", "distributed_dp__clipping_norm": 0.0}, "distributed_dp.clipping_norm"),
    ],
)
def test_impossible_distributed_configs_are_refused(small_cfg, privacy, field):
    with pytest.raises(PrivacyConfigError, match=f"field '{field}'"):
        PrivacySettings.from_cfg(with_privacy(small_cfg, **privacy))


def test_noise_that_does_not_fit_secaggs_range_is_refused_before_any_work(small_cfg):
    cfg = with_privacy(small_cfg, preset="distributed_dp", distributed_dp__noise_multiplier=5000.0)
    with pytest.raises(PrivacyConfigError, match=r"field 'secagg\.clipping_range'.*noise share"):
        PrivacyLedger(PrivacySettings.from_cfg(cfg), 6, None, 3, cfg["federation"], dim=204)


@pytest.mark.flower
def test_the_server_unmasks_the_clipped_mean_plus_the_shares_noise(small_logs, tmp_path):
    cfg = logs_config(
        small_logs,
        tmp_path,
        "data.n_clusters=4",
        "training.epochs=1",
        "suggest_users=0",
        "personalise.enabled=false",
        "privacy=distributed_dp",
        "privacy.distributed_dp.noise_multiplier=4.0",
    )
    run = run_federated_simulation(cfg)
    # what the clipped, un-noised mean would have been: the devices are deterministic without DP-SGD
    items = {k: v.numpy() for k, v in initial_item_arrays(cfg, 4).items()}
    config = {"server-round": 1, **centres_config(run.centres)}
    clip = cfg["privacy"]["distributed_dp"]["clipping_norm"]
    clipped = []
    for user in range(6):
        new = local_round(cfg, make_context(user, 6), items, config).items
        update = np.concatenate([(new[k] - items[k]).ravel() for k in GLOBAL_KEYS])
        clipped.append(update * min(1.0, clip / np.linalg.norm(update)))
    released = np.concatenate([(run.item_state[k] - items[k]).ravel() for k in GLOBAL_KEYS])
    noise = released - np.mean(clipped, axis=0)
    dim = noise.size
    expected = 4.0 * distributed.grid_sensitivity(clip, STEP, dim) * STEP / 6  # z * Δ on the sum, over 6
    assert noise.std() == pytest.approx(expected, rel=0.25)
    assert abs(noise.mean()) < 4 * expected / math.sqrt(dim)
    p = run.privacy
    assert p["mechanism"] == "distributed_dp" and p["protects_against"].startswith("the server")
    # against the server: one release at z = 4 (all 6 shares summed), no amplification by sampling
    assert p["epsilon"] == pytest.approx(user_level_epsilon(4.0, 1.0, 1, 1e-5), rel=1e-9)
