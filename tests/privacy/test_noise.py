"""DP noise nobody can replay: secure sources, the samplers' distributions, and every mechanism's draws."""

import math

import numpy as np
import pytest
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.serverapp.strategy import FedAvg

from fedmood.privacy.noise import ReplayableNoise, SecureNoise
from fedmood.privacy.settings import PrivacySettings
from fedmood.studies.mood.device import centres_config, local_round
from fedmood.studies.mood.server_app import initial_item_arrays
from strategies.central_dp import ClientClippedSum, SecureServerSideFixedClipping
from tests.conftest import CENTRES, make_context, make_message, with_privacy


def test_secure_draws_differ_and_have_the_asked_moments():
    a, b = SecureNoise().normal(200_000, 2.0), SecureNoise().normal(200_000, 2.0)
    assert not np.array_equal(a, b)
    for x in (a, b):
        assert abs(x.mean()) < 0.05 and abs(x.std() - 2.0) < 0.05  # 11 and 16 standard errors
        assert abs(((x / 2.0) ** 4).mean() - 3.0) < 0.2  # Gaussian kurtosis, 9 standard errors


def test_replayable_noise_is_a_function_of_seed_and_stream_only():
    same = [ReplayableNoise(7, "central/round-1").normal(100, 1.0) for _ in range(2)]
    assert np.array_equal(*same)
    assert not np.array_equal(same[0], ReplayableNoise(7, "central/round-2").normal(100, 1.0))
    assert not np.array_equal(same[0], ReplayableNoise(8, "central/round-1").normal(100, 1.0))


def _discrete_gaussian_pmf(sigma: float, support: np.ndarray) -> np.ndarray:
    grid = np.arange(-int(20 * sigma) - 20, int(20 * sigma) + 21)
    norm = np.exp(-(grid**2) / (2 * sigma**2)).sum()
    return np.exp(-(support**2) / (2 * sigma**2)) / norm


@pytest.mark.parametrize("sigma", [0.7, 2.0, 5.5])
def test_discrete_gaussian_matches_its_pmf(sigma):
    n = 200_000
    x = SecureNoise().discrete_gaussian(n, sigma)
    assert x.dtype == np.int64
    support = np.arange(-int(4 * sigma) - 2, int(4 * sigma) + 3)
    observed = np.array([(x == k).sum() for k in support]) / n
    expected = _discrete_gaussian_pmf(sigma, support)
    assert np.abs(observed - expected).max() < 5 * math.sqrt(expected.max() / n)  # within 5 standard errors
    assert abs(x.mean()) < 5 * sigma / math.sqrt(n)


def test_discrete_gaussian_variance_at_large_sigma():
    x = SecureNoise().discrete_gaussian(100_000, 3000.0)
    assert abs(x.std() / 3000.0 - 1) < 0.02 and abs(x.mean()) < 60


SHAPES = ((100, 50), (100, 1))


def _replies(current, n=4, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        arrays = ArrayRecord([a + rng.normal(scale=scale, size=a.shape).astype(np.float32) for a in current])
        content = RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": 1.0})})
        out.append(Message(content, reply_to=make_message(RecordDict({}), "train")))
    return out


def _central_release(replayable: bool, seed: int = 4006) -> np.ndarray:
    """One release of Flower's server-side fixed-clipping wrapper on fixed inputs (noise only differs)."""
    settings = PrivacySettings(insecure_replayable_noise=replayable, seed=seed)
    current = [np.zeros(SHAPES[0], np.float32), np.zeros(SHAPES[1], np.float32)]
    dp = SecureServerSideFixedClipping(FedAvg(), noise_multiplier=1.0, clipping_norm=0.5, num_sampled_clients=4)
    dp.noise_for = settings.noise
    dp.current_arrays = ArrayRecord(current)
    out, _ = dp.aggregate_train(1, _replies(current))
    return np.concatenate([a.ravel() for a in out.to_numpy_ndarrays()])


def _replayed_central_noise(seed: int) -> np.ndarray:
    """What an attacker holding config.yaml regenerates: the replayable stream of release 1."""
    noise = ReplayableNoise(seed, "central/release-1")
    return np.concatenate([noise.normal(shape, 0.125).ravel() for shape in SHAPES]).astype(np.float32)


def test_central_dp_noise_differs_between_runs_of_the_same_config_and_cannot_be_replayed():
    first, second = _central_release(False), _central_release(False)
    assert not np.allclose(first, second)  # same seed, same inputs: the noise differs
    np.random.seed(4006)  # what Flower's wrapper drew from before: the global generator seeded from the config
    old = np.random.normal(0, 0.125, len(first))
    replayed = _replayed_central_noise(4006)
    for guess in (old, replayed):
        assert abs(np.corrcoef(first, guess)[0, 1]) < 0.08  # nothing regenerated (5000 values: sd 0.014)
    # behind the test-only switch the same attacker recovers the noise: what is left is the clipped mean
    insecure = _central_release(True)
    assert np.array_equal(insecure, _central_release(True))
    assert np.corrcoef(insecure, replayed)[0, 1] > 0.99
    assert np.sqrt(((insecure - replayed) ** 2).sum()) <= 0.5 + 1e-3  # the mean of 4 updates clipped to 0.5


def test_legacy_central_noise_is_calibrated_to_the_clients_in_the_sum():
    class Mean:
        def aggregate_fit(self, rnd, results, failures):
            arrays = [parameters_to_ndarrays(r.parameters) for _, r in results]
            return ndarrays_to_parameters([np.mean(a, axis=0) for a in zip(*arrays, strict=True)]), {}

    class Res:
        def __init__(self, x):
            self.parameters = ndarrays_to_parameters([x])

    strategy = ClientClippedSum(Mean(), 2.0, 1.0, noise_for=PrivacySettings().noise)
    for n in (4, 8):
        results = [(None, Res(np.zeros(40_000, np.float64)))] * n
        params, _ = strategy.aggregate_fit(1, results, [])
        noise = parameters_to_ndarrays(params)[0]
        assert abs(noise.std() / (2.0 / n) - 1) < 0.02  # z * clip / (clients in the sum)


def test_dpsgd_noise_and_sampling_differ_between_runs_with_the_same_seed(small_cfg):
    cfg = with_privacy(small_cfg, preset="dpsgd")
    items = {k: v.numpy() for k, v in initial_item_arrays(cfg, len(CENTRES)).items()}
    config = {"server-round": 1, **centres_config(CENTRES)}
    runs = [local_round(cfg, make_context(1, 6), items, config).items["item_bias.weight"] for _ in range(2)]
    assert not np.allclose(*runs)
    replay = with_privacy(small_cfg, preset="dpsgd", insecure_replayable_noise=True)
    again = [local_round(replay, make_context(1, 6), items, config).items["item_bias.weight"] for _ in range(2)]
    assert np.array_equal(*again)  # the test-only switch: the whole DP-SGD round is a function of the config
