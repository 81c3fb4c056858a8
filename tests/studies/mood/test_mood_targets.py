"""Experiment scale (about a minute): the issue's targets on the default config. `make test-slow`."""

import pytest

from fedmood.studies.mood import experiment as mood_experiment
from fedmood.studies.mood.run_config import compose_config


@pytest.mark.slow
@pytest.mark.flower
def test_default_config_meets_the_targets():
    res = mood_experiment.run(compose_config(["suggest_users=0"]), out_dir=None, progress=False)
    assert res["extra"]["val_mse_ratio"] <= 1.10
    assert res["extra"]["time_per_epoch_ratio"] <= 3.0
    assert res["extra"]["cluster_ari"] > 0.9
