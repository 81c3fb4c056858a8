"""The mood study's federation settings, typed: read once, a key that is not a setting refused by name."""

import pytest

from fedmood.errors import InputError
from fedmood.studies.mood.run_config import compose_config
from fedmood.studies.mood.settings import FederationSettings
from fedmood.studies.mood.validation import check_config


def test_the_composed_federation_group_is_exactly_the_settings():
    cfg = compose_config(["training.epochs=7", "federation.clients_per_round=3", "federation.strict=false"])
    fed = FederationSettings.of(cfg)
    assert fed.num_rounds == 7 and fed.clients_per_round == 3 and fed.local_epochs == 1
    assert fed.replies_needed(3) == 3 and fed.node_timeout == fed.round_timeout
    deployment = FederationSettings.of(compose_config(["federation=deployment"]))
    assert deployment.nodes == 3 and deployment.replies_needed(3) == 2 and deployment.node_timeout == 300
    assert FederationSettings.of(compose_config([])).replies_needed(50) is None  # strict: every reply


def test_a_misspelt_federation_key_is_refused_by_name_before_any_work():
    with pytest.raises(InputError, match=r"federation\.num_round: is not a federation setting"):
        compose_config(["+federation.num_round=5"])  # the config is checked as it is composed
    cfg = compose_config([])
    cfg["federation"]["num_round"] = 5
    with pytest.raises(InputError, match=r"federation\.num_round"):
        check_config(cfg)
    with pytest.raises(ValueError, match=r"federation\.num_round is not a federation setting"):
        FederationSettings.of(cfg)
