"""One-run privacy audits (Steinke, Nasr & Jagielski 2023): the bound, and the three mechanisms audited."""

import numpy as np
import pytest

from fedmood.studies.mood.data.public import public_centres
from fedmood.threat_study.auditing import (
    audit_central_dp,
    audit_distributed_dp,
    audit_dpsgd,
    epsilon_lower_bound,
    guess,
    p_value,
)
from tests.conftest import logs_config


def test_the_bound_grows_with_correct_guesses_and_never_comes_from_chance():
    bounds = [epsilon_lower_bound(1000, 100, v, 1e-5) for v in (50, 70, 90, 100)]
    assert bounds[0] == 0.0 and bounds == sorted(bounds) and 3.4 < bounds[-1] < 3.5
    assert p_value(1000, 100, 100, bounds[-1], 1e-5) == pytest.approx(0.05, abs=1e-3)
    assert epsilon_lower_bound(1000, 100, 100, 0.2) < bounds[-1]  # a large δ explains more
    scores, included = np.arange(10.0), np.array([0, 0, 0, 1, 0, 1, 1, 0, 1, 1], dtype=bool)
    assert guess(scores, included, 2, 2) == (4, 4)


@pytest.fixture
def audit_cfg(small_logs, tmp_path):
    def make(mechanism: str) -> dict:
        overrides = ("data.n_clusters=4", "training.epochs=10", f"privacy={mechanism}", "privacy.target_epsilon=2")
        return logs_config(small_logs, tmp_path, *overrides)

    return make


def _audit(mechanism, cfg, noise_off):
    if mechanism == "dpsgd":
        centres = public_centres(4, 20, cfg["data"]["cache_dir"])
        return audit_dpsgd(cfg, 0, centres, 4, canaries=1000, k=100, noise_off=noise_off)
    audit = audit_central_dp if mechanism == "central_dp" else audit_distributed_dp
    return audit(cfg, canaries=500, k=50, noise_off=noise_off)


@pytest.mark.parametrize("mechanism", ["dpsgd", "central_dp", "distributed_dp"])
def test_the_lower_bound_stays_below_the_accountants_epsilon(audit_cfg, mechanism):
    result = _audit(mechanism, audit_cfg(mechanism), noise_off=False)
    assert result.accountant_epsilon == pytest.approx(2.0, abs=0.05) and result.delta == 1e-5
    assert result.epsilon_lower <= result.accountant_epsilon


@pytest.mark.parametrize("mechanism", ["dpsgd", "central_dp", "distributed_dp"])
def test_with_the_noise_switched_off_the_audit_exceeds_the_accountant(audit_cfg, mechanism):
    """The audit can fail: the same run with its noise removed (a broken mechanism) is caught."""
    result = _audit(mechanism, audit_cfg(mechanism), noise_off=True)
    assert result.correct == result.guesses
    assert result.epsilon_lower > 1.5 * result.accountant_epsilon
