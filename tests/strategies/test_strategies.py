import pytest
from flwr.app import Error, MetricRecord, RecordDict

from strategies.deferred_eval import _aggregate_with_val_sums
from strategies.strict import ClientRoundError, check_replies
from tests.conftest import make_message


def _reply(content=None, error=None):
    msg = make_message(RecordDict({}), "train")
    from flwr.app import Message

    if error:
        return Message(error, reply_to=msg)
    return Message(content, reply_to=msg)


def test_check_replies_fails_on_error_or_missing_reply():
    ok = _reply(RecordDict({"metrics": MetricRecord({"num-examples": 1.0})}))
    assert len(check_replies("train", 1, 1, [ok])) == 1
    with pytest.raises(ClientRoundError, match=r"1 of 2 clients failed.*boom"):
        check_replies("train", 3, 2, [ok, _reply(error=Error(code=0, reason="boom"))])
    with pytest.raises(ClientRoundError, match="1 replies for 2 messages"):
        check_replies("train", 3, 2, [ok])


def test_validation_is_weighted_by_validation_examples():
    recs = [
        RecordDict({"m": MetricRecord({"num-examples": 10.0, "train-mse": 1.0, "val-sse": 2.0, "val-n": 1.0})}),
        RecordDict({"m": MetricRecord({"num-examples": 30.0, "train-mse": 3.0, "val-sse": 6.0, "val-n": 9.0})}),
    ]
    agg = _aggregate_with_val_sums(recs, "num-examples")
    assert agg["train-mse"] == pytest.approx(2.5)
    assert agg["val-sse"] / agg["val-n"] == pytest.approx(0.8)


def test_flower_run_config_maps_onto_hydra_config(small_logs):
    from fedmood.studies.mood.run_config import compose_config, run_config_overrides

    run_config = {
        "num-server-rounds": 7,
        "data.n-users": 3,
        "data.logs-dir": str(small_logs),
        "seed": 1,
        "privacy-mechanism": "secagg",
    }
    overrides = run_config_overrides(run_config)
    assert "training.epochs=7" in overrides and "data.n_users=3" in overrides and "privacy=secagg" in overrides
    cfg = compose_config([*overrides, "data.source=logs"])
    assert cfg["training"]["epochs"] == 7 and cfg["federation"]["num_rounds"] == 7
    assert cfg["privacy"]["secagg"]["enabled"] and cfg["privacy"]["mechanism"] == "secagg"
    assert cfg["data"]["logs_dir"] == str(small_logs) and cfg["seed"] == 1


def test_flowers_secaggplus_workflow_still_combines_shares_by_that_name():
    """ReportingSecAggPlusWorkflow.unmask_stage rebinds the module's ``combine_shares`` during the stage
    (each secret from ``threshold`` shares): a Flower upgrade that moves it must fail here, by name."""
    import sys

    from flwr.common.secure_aggregation.crypto.shamir import combine_shares, create_shares
    from flwr.server.workflow import SecAggPlusWorkflow

    module = sys.modules[SecAggPlusWorkflow.__module__]
    assert module.combine_shares is combine_shares
    shares = create_shares(b"0123456789abcdef0123456789abcdef", 4, 7)
    assert combine_shares(shares[:4]) == combine_shares(shares) == b"0123456789abcdef0123456789abcdef"
