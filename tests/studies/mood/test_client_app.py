"""The ClientApp called directly (no Ray): what it sends, what it keeps."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from fedmood.keys import LOCAL_STATE_KEY, PERSONAL_ITEMS_KEY, VAL_MSE_AFTER, VAL_MSE_BEFORE, VAL_ROWS
from fedmood.studies.mood.client_app import build_client_app
from fedmood.studies.mood.data.local import load_local_data
from fedmood.studies.mood.device import centres_config
from fedmood.studies.mood.model import GLOBAL_KEYS
from fedmood.studies.mood.server_app import initial_item_arrays
from tests.conftest import make_context, make_message


@pytest.fixture
def app_and_centres(small_cfg):
    centres = np.array([[0] * 6, [1] * 6, [3] * 6, [4] * 6])
    return build_client_app(lambda _ctx: small_cfg), centres


def _train_msg(cfg, centres, rnd, arrays=None, evaluate_first=False):
    config = ConfigRecord({"server-round": rnd, "evaluate-first": evaluate_first, **centres_config(centres)})
    return make_message(
        RecordDict({"arrays": arrays or initial_item_arrays(cfg, len(centres)), "config": config}), "train"
    )


def test_client_sends_item_parameters_never_its_user_embedding(small_cfg, app_and_centres):
    app, centres = app_and_centres
    ctx = make_context(2, 6)
    reply = app(_train_msg(small_cfg, centres, 1), ctx)
    assert not reply.has_error()
    sent_arrays = {k for rec in reply.content.array_records.values() for k in rec}
    assert sent_arrays == set(GLOBAL_KEYS)
    assert not any("user" in k for k in sent_arrays)
    assert set(reply.content.config_records) == set()
    metrics = reply.content["metrics"]
    assert metrics["num-examples"] == len(load_local_data(small_cfg["data"], 2, small_cfg["seed"]).train)
    # the user's own parameters stay on the device, in its state, and change with training
    kept = ctx.state[LOCAL_STATE_KEY].to_torch_state_dict()
    assert set(kept) == {"user_factors.weight", "user_bias.weight"}
    reply2 = app(_train_msg(small_cfg, centres, 2, reply.content["arrays"], evaluate_first=True), ctx)
    assert reply2.content["metrics"]["val-n"] > 0
    kept2 = ctx.state[LOCAL_STATE_KEY].to_torch_state_dict()
    assert not np.allclose(kept["user_factors.weight"].numpy(), kept2["user_factors.weight"].numpy())


def test_evaluate_matches_deferred_evaluation(small_cfg, app_and_centres):
    app, centres = app_and_centres
    ctx = make_context(1, 6)
    r1 = app(_train_msg(small_cfg, centres, 1), ctx)
    ev = app(
        make_message(
            RecordDict({"arrays": r1.content["arrays"], "config": ConfigRecord(centres_config(centres))}), "evaluate"
        ),
        ctx,
    )
    r2 = app(_train_msg(small_cfg, centres, 2, r1.content["arrays"], evaluate_first=True), ctx)
    m2 = r2.content["metrics"]
    assert np.isclose(ev.content["metrics"]["val-mse"], m2["val-sse"] / m2["val-n"])


def test_clustering_query_sends_only_aggregates(small_cfg, app_and_centres):
    app, centres = app_and_centres
    ctx = make_context(0, 6)
    hist = app(make_message(RecordDict({"config": ConfigRecord({"stage": "histograms"})}), "query"), ctx)
    stats = hist.content["stats"]
    n_frag = len(load_local_data(small_cfg["data"], 0, small_cfg["seed"]).ratings)
    assert stats["marginals"].numpy().sum() == n_frag * 6
    cnt = app(
        make_message(RecordDict({"config": ConfigRecord({"stage": "counts", **centres_config(centres)})}), "query"),
        ctx,
    )
    counts = cnt.content["stats"]["counts"].numpy()
    assert counts.shape == (4, 6, 16) and counts.sum() == n_frag * 6


def test_client_errors_surface(small_cfg, app_and_centres):
    app, centres = app_and_centres
    bad = ArrayRecord({"something_else": initial_item_arrays(small_cfg, 4)["item_bias.weight"]})
    with pytest.raises(ValueError, match="expected global arrays"):
        app(_train_msg(small_cfg, centres, 1, bad), make_context(0, 6))


@pytest.mark.parametrize("items", [False, True])
def test_personalisation_fine_tunes_on_the_device_and_reports_only_errors(small_cfg, app_and_centres, items):
    small_cfg["personalise"] = {"enabled": True, "epochs": 20, "lr": 0.05, "items": items}
    app, centres = app_and_centres
    ctx = make_context(3, 6)
    trained = app(_train_msg(small_cfg, centres, 1), ctx).content["arrays"]
    kept = ctx.state[LOCAL_STATE_KEY].to_torch_state_dict()
    query = ConfigRecord({"stage": "personalise", **centres_config(centres)})
    reply = app(make_message(RecordDict({"arrays": trained, "config": query}), "query"), ctx)
    assert not reply.has_error()
    assert set(reply.content.array_records) == set()  # nothing but the errors leaves the device
    result = reply.content["personalisation"]
    assert result[VAL_ROWS] > 0 and result[VAL_MSE_BEFORE] > 0 and result[VAL_MSE_AFTER] > 0
    # the personalised user parameters replaced the old ones on the device
    new = ctx.state[LOCAL_STATE_KEY].to_torch_state_dict()
    assert not np.allclose(kept["user_factors.weight"].numpy(), new["user_factors.weight"].numpy())
    assert (PERSONAL_ITEMS_KEY in ctx.state) == items
    if items:
        local_items = ctx.state[PERSONAL_ITEMS_KEY].to_torch_state_dict()
        assert not np.allclose(local_items["item_factors.weight"].numpy(), trained["item_factors.weight"].numpy())
