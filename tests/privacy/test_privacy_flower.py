"""Privacy mechanisms in real Flower simulations (Ray): SecAgg+, dropouts, the privacy audit, the sweep."""

import numpy as np
import pandas as pd
import pytest
from flwr.app import Error
from flwr.common.constant import ErrorCode

from fedmood.privacy.settings import SecAggSettings
from fedmood.studies.mood.data.generator import GeneratorConfig, write_day_logs
from fedmood.studies.mood.data.public import public_centres
from fedmood.studies.mood.device import centres_config, local_round
from fedmood.studies.mood.message_audit import audit_violations
from fedmood.studies.mood.model import GLOBAL_KEYS
from fedmood.studies.mood.run import run_federated_simulation
from fedmood.studies.mood.server_app import initial_item_arrays
from strategies.mods.audit import make_audit_mod
from strategies.strict import ClientRoundError
from tests.conftest import logs_config, make_context, run_experiment

pytestmark = pytest.mark.flower
N_ITEMS = 4


@pytest.fixture(scope="module")
def ten_users(tmp_path_factory):
    return write_day_logs(GeneratorConfig(n_users=10, n_days=3, seed=5), tmp_path_factory.mktemp("ten") / "logs")


def _cfg(logs, tmp_path, mechanism, *extra):
    overrides = (f"data.n_clusters={N_ITEMS}", "training.epochs=2", "suggest_users=0", f"privacy={mechanism}")
    return logs_config(logs, tmp_path / "results", *overrides, *extra)


def _fedavg_of(cfg, run, users):
    """Round-1 FedAvg of ``users``' updates, recomputed in-process (the devices are deterministic)."""
    items = {k: v.numpy() for k, v in initial_item_arrays(cfg, N_ITEMS).items()}
    config = {"server-round": 1, **centres_config(run.centres)}
    updates = [local_round(cfg, make_context(u, 10), items, config) for u in users]
    total = sum(u.weight for u in updates)
    mean = {k: sum(u.weight * u.items[k] for u in updates) / total for k in GLOBAL_KEYS}
    return mean, [u.weight for u in updates]


def _quantisation_bound(weights):
    """Worst-case SecAgg+ error of a weighted mean: one quantisation step per client, over the weights."""
    s = SecAggSettings()
    step = 2 * s.clipping_range / s.quantization_range
    return len(weights) * step / (sum(weights) / s.max_weight) + 1e-6


def test_secagg_aggregate_equals_fedavg_within_quantisation_error(small_logs, tmp_path):
    plain = run_federated_simulation(_cfg(small_logs, tmp_path, "none", "training.epochs=1"))
    cfg = _cfg(small_logs, tmp_path, "secagg", "training.epochs=1")
    secure = run_federated_simulation(cfg)
    _, weights = _fedavg_of(cfg, secure, range(6))
    bound = _quantisation_bound(weights)
    for key in GLOBAL_KEYS:
        diff = np.abs(secure.item_state[key] - plain.item_state[key]).max()
        assert 0 < diff <= bound, (key, diff, bound)  # masked and quantised, yet the same average
    # the k-modes count tables travelled as exact secure sums: the same items as in the clear
    assert np.array_equal(secure.centres, plain.centres) and secure.cluster_iterations == plain.cluster_iterations
    # the server saw no metric; the devices' reports give the same errors it would have aggregated
    for key in ("train_mse", "val_mse"):
        assert secure.rounds[0][key] == pytest.approx(plain.rounds[0][key], abs=1e-4), key


def _drop_after_key_sharing(dropped):
    """A mod that makes ``dropped`` clients fail once SecAgg+ keys are shared (before masking)."""

    def mod(msg, ctx, call_next):
        stage = msg.content.config_records.get("secaggplus_configs", {}).get("stage", "")
        if stage == "collect_masked_vectors" and int(ctx.node_config["partition-id"]) in dropped:
            return type(msg)(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason="dropped"), reply_to=msg)
        return call_next(msg, ctx)

    return mod


def test_secagg_round_completes_when_30_percent_drop_out_after_sharing_keys(ten_users, tmp_path):
    dropped = {2, 5, 8}
    extra = ("training.epochs=1", "federation.strict=false", "federation.min_replies=7")
    cfg = _cfg(ten_users, tmp_path, "secagg", *extra)
    run = run_federated_simulation(cfg, client_mods=[_drop_after_key_sharing(dropped)])
    assert run.rounds[0]["clients"] == 7
    survivors = [u for u in range(10) if u not in dropped]
    expected, weights = _fedavg_of(cfg, run, survivors)
    for key in GLOBAL_KEYS:  # the dropped clients' masks were removed: the sum of the survivors only
        assert np.abs(run.item_state[key] - expected[key]).max() <= _quantisation_bound(weights)


def test_a_client_that_fails_under_secagg_fails_the_run(small_logs, tmp_path):
    def fail_one(msg, ctx, call_next):
        stage = msg.content.config_records.get("secaggplus_configs", {}).get("stage", "")
        if stage == "collect_masked_vectors" and int(ctx.node_config["partition-id"]) == 3:
            raise RuntimeError("device 3 broke")
        return call_next(msg, ctx)

    with pytest.raises(ClientRoundError, match=r"5 of 6 nodes contributed.*a node failed: device 3 broke$"):
        run_federated_simulation(_cfg(small_logs, tmp_path, "secagg", "training.epochs=1"), client_mods=[fail_one])


@pytest.mark.parametrize("mechanism", ["none", "secagg", "central_dp", "central_dp_secagg", "distributed_dp", "dpsgd"])
def test_privacy_audit_no_message_carries_user_data(small_logs, tmp_path, mechanism):
    cfg = _cfg(small_logs, tmp_path, mechanism)
    audit_dir = tmp_path / "audit"
    run = run_federated_simulation(cfg, client_mods=[make_audit_mod(audit_dir)])
    report = audit_violations(audit_dir, cfg, N_ITEMS)
    assert report.violations == []
    assert report.by_type.get("train", 0) >= 6 * 2 and report.by_type.get("query", 0) >= 6
    if mechanism in ("secagg", "central_dp_secagg", "distributed_dp"):
        # per client and round: the two item arrays and the weight, masked; no plain array at all
        # secagg: the k-modes statistics are secure sums too (histograms, then counts); under DP the
        # items come from public diaries: no device statistic at all
        clustering = 6 * 3 + 6 * 2 * run.cluster_iterations if mechanism == "secagg" else 0
        assert report.masked_vectors == 6 * 2 * 3 + clustering and report.plain_item_arrays == 0
    else:
        assert report.plain_item_arrays == 6 * 2 * 2
    p = run.privacy
    if mechanism not in ("none", "secagg"):  # DP: items from the public diaries, no device statistic
        assert run.cluster_iterations == 0
        assert np.array_equal(run.centres, public_centres(N_ITEMS, 20, cfg["data"]["cache_dir"]))
    if mechanism.startswith("central_dp") or mechanism == "distributed_dp":
        assert p["dp_level"] == "user" and np.isfinite(p["epsilon"]) and p["delta"] == 1e-5
    if mechanism == "central_dp":  # Flower's own accountant applies here and agrees
        assert p["epsilon"] == pytest.approx(p["epsilon_flower"], rel=1e-6)
    if mechanism == "dpsgd":
        assert p["dp_level"] == "record" and p["epsilon"] >= p["epsilon_mean"] * (1 - 1e-12) > 0
    assert np.isfinite(run.rounds[-1]["val_mse"])


def test_privacy_sweep_writes_one_table_and_one_figure(small_logs, tmp_path):
    run_experiment(
        "privacy_utility",
        "-m",
        "privacy=none,central_dp",
        "privacy.target_epsilon=2,8",
        "data=logs",
        f"data.logs_dir={small_logs}",
        f"data.n_clusters={N_ITEMS}",
        "training.epochs=2",
        f"results_root={tmp_path}",
        "hydra.sweep.dir=" + str(tmp_path / "sweep"),
    )
    table = pd.read_csv(tmp_path / "sweep" / "privacy_utility.csv")
    assert sorted(table["mechanism"]) == ["central_dp", "central_dp", "none"]  # 'none' ran once
    dp = table[table["mechanism"] == "central_dp"].sort_values("epsilon")
    assert dp["epsilon"].tolist() == pytest.approx([2, 8], abs=0.05)
    assert dp["noise_multiplier"].iloc[0] > dp["noise_multiplier"].iloc[1]
    assert {"delta", "val_mse", "sec_per_round"} <= set(table.columns)
    assert (tmp_path / "sweep" / "figures" / "privacy_utility.png").is_file()
