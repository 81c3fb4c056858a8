"""Privacy mechanisms without Flower's runtime: settings, accounting, DP-SGD, clipping, SecAgg+ ranges, audit."""

import itertools
import json

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM
from flwr.supercore.privacy_accounting import GaussianPrivacyEvent
from opacus.accountants import RDPAccountant

from fedmood.privacy import dpsgd
from fedmood.privacy.accounting import RoundAccountant, noise_for_epsilon, user_level_epsilon
from fedmood.privacy.settings import PrivacyConfigError, PrivacySettings, SecAggSettings
from fedmood.studies.mood.client_app import build_client_app
from fedmood.studies.mood.device import centres_config, local_round
from fedmood.studies.mood.message_audit import audit_violations
from fedmood.studies.mood.server_app import initial_item_arrays
from strategies.central_dp import flower_accountant
from strategies.mods.audit import make_audit_mod
from strategies.secagg import SecAggRangeError, check_secagg_range
from tests.conftest import CENTRES, make_context, make_message, with_privacy


def _items(cfg):
    return {k: v.numpy() for k, v in initial_item_arrays(cfg, len(CENTRES)).items()}


@pytest.mark.parametrize(
    "privacy, field",
    [
        ({"preset": "central_dp_secagg", "central_dp__clipping": "server"}, "central_dp.clipping"),
        ({"preset": "central_dp_secagg", "central_dp__adaptive": True}, "central_dp.adaptive"),
        ({"preset": "dpsgd", "central_dp__enabled": True}, "dpsgd.enabled"),
        ({"preset": "central_dp", "accountant": "moments"}, "accountant"),
        ({"preset": "central_dp", "central_dp__clipping_norm": 0.0}, "central_dp.clipping_norm"),
    ],
)
def test_impossible_privacy_configs_are_refused_naming_the_field(small_cfg, privacy, field):
    with pytest.raises(PrivacyConfigError, match=f"field '{field}'"):
        PrivacySettings.from_cfg(with_privacy(small_cfg, **privacy))


def test_secagg_refuses_ranges_that_would_overflow_the_masked_sum():
    SecAggSettings().check(1000)  # 1000 x 2^22 fits in 2^32
    with pytest.raises(PrivacyConfigError, match="wrap around"):
        SecAggSettings().check(1100)


def test_user_level_epsilon_matches_opacus_and_flower_accountants():
    z, rounds, delta = 1.3, 20, 1 / 50
    ours = RoundAccountant(z, 1.0, delta)
    ours.step(rounds)
    direct = RDPAccountant()
    for _ in range(rounds):
        direct.step(noise_multiplier=z, sample_rate=1.0)
    flower = flower_accountant(delta, 50)
    flower.compose(GaussianPrivacyEvent(noise_multiplier=z, sample_size=50, population_size=50), count=rounds)
    assert ours.epsilon() == pytest.approx(direct.get_epsilon(delta), rel=1e-9)
    assert ours.epsilon() == pytest.approx(flower.get_privacy_spent().epsilon, rel=1e-6)
    # with client sampling (where Flower's accountant does not apply) it is Opacus's sampled Gaussian
    sampled = RDPAccountant()
    sampled.history = [(z, 0.2, rounds)]
    assert user_level_epsilon(z, 0.2, rounds, delta) == pytest.approx(sampled.get_epsilon(delta), rel=1e-9)
    assert user_level_epsilon(z, 0.2, rounds, delta) < ours.epsilon()  # sampling amplifies privacy


def test_epsilon_falls_as_the_noise_multiplier_rises():
    eps = [user_level_epsilon(z, 1.0, 50, 0.02) for z in (0.8, 1.5, 3.0, 6.0, 12.0)]
    assert all(a > b for a, b in itertools.pairwise(eps))


def test_target_epsilon_derives_the_smallest_sufficient_noise():
    z = noise_for_epsilon(1.0, 0.02, 1.0, 50)
    assert user_level_epsilon(z, 1.0, 50, 0.02) <= 1.0
    assert user_level_epsilon(0.95 * z, 1.0, 50, 0.02) > 1.0


def test_dpsgd_epsilon_composes_across_rounds(small_cfg):
    cfg = with_privacy(small_cfg, preset="dpsgd")
    ctx = make_context(1, 6)
    eps, conf = [], {"server-round": 1, **centres_config(CENTRES)}
    items = _items(cfg)
    for rnd in (1, 2, 3):
        update = local_round(cfg, ctx, items, {**conf, "server-round": rnd})
        eps.append(update.metrics["dpsgd-epsilon"])
        items = update.items
    assert eps[0] < eps[1] < eps[2]
    history = dpsgd.load_history(ctx.state)
    n_train = int(update.metrics["train-rows"])
    rate = dpsgd.sample_rate(n_train, cfg["training"]["batch_size"])
    steps = sum(h[2] for h in history)
    assert steps == 3 * round(1 / rate)  # one local epoch of Poisson batches per round, all accounted
    direct = RDPAccountant()
    direct.history = [(1.0, rate, steps)]
    assert eps[-1] == pytest.approx(direct.get_epsilon(1e-5, alphas=dpsgd.DEVICE_RDP_ORDERS), rel=1e-9)
    assert update.metrics["dpsgd-delta"] == 1e-5  # min(1/n^1.1, 1e-5), well below 1/n


def test_dpsgd_target_epsilon_is_reached_by_the_end_of_the_run(small_cfg):
    cfg = with_privacy(small_cfg, preset="dpsgd", target_epsilon=3.0)
    ctx = make_context(2, 6)
    items = _items(cfg)
    for rnd in range(1, cfg["federation"]["num_rounds"] + 1):
        update = local_round(cfg, ctx, items, {"server-round": rnd, **centres_config(CENTRES)})
        items = update.items
    assert 2.7 < update.metrics["dpsgd-epsilon"] <= 3.0


def _train_msg(cfg, config_extra=None):
    config = ConfigRecord({"server-round": 1, **centres_config(CENTRES), **(config_extra or {})})
    return make_message(RecordDict({"arrays": initial_item_arrays(cfg, 4), "config": config}), "train")


def _update_norm(reply, sent_msg):
    new, old = reply.content["arrays"], sent_msg.content["arrays"]
    return float(np.sqrt(sum(((new[k].numpy() - old[k].numpy()) ** 2).sum() for k in new)))


def test_client_side_clipping_bounds_every_update_before_it_is_sent(small_cfg):
    clip = 1e-3
    plain = build_client_app(lambda _c: small_cfg)
    msg = _train_msg(small_cfg)
    assert _update_norm(plain(msg, make_context(0, 6)), msg) > 10 * clip  # so clipping has work to do
    cfg = with_privacy(small_cfg, preset="central_dp", central_dp__clipping="client")
    app = build_client_app(lambda _c: cfg)
    msg = _train_msg(cfg, {KEY_CLIPPING_NORM: clip})
    reply = app(msg, make_context(0, 6))
    assert not reply.has_error()
    assert _update_norm(reply, msg) <= clip * (1 + 1e-5)
    assert reply.content["metrics"]["num-examples"] == 1.0  # equal weights under central DP


class _SpyFedAvg(FedAvg):
    """Records the (clipped) updates the DP wrapper hands on for aggregation."""

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        self.seen = [r.content["arrays"].to_numpy_ndarrays() for r in replies]
        return super().aggregate_train(server_round, replies)


def test_server_side_clipping_happens_before_the_noise():
    rng = np.random.default_rng(0)
    current = ArrayRecord([rng.normal(size=(10, 5)).astype(np.float32), rng.normal(size=(10, 1)).astype(np.float32)])
    replies = []
    for _ in range(4):
        arrays = ArrayRecord(
            [a + rng.normal(scale=1.0, size=a.shape).astype(np.float32) for a in current.to_numpy_ndarrays()]
        )
        content = RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": 1.0})})
        replies.append(Message(content, reply_to=make_message(RecordDict({}), "train")))
    spy = _SpyFedAvg()
    dp = DifferentialPrivacyServerSideFixedClipping(spy, noise_multiplier=1.0, clipping_norm=0.5, num_sampled_clients=4)
    dp.current_arrays = current
    out, _ = dp.aggregate_train(1, replies)
    base = current.to_numpy_ndarrays()
    norms = [np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(seen, base, strict=True))) for seen in spy.seen]
    assert max(norms) <= 0.5 * (1 + 1e-5) and min(norms) > 0.49  # every update clipped to the norm
    mean = [np.mean([s[i] for s in spy.seen], axis=0) for i in range(2)]
    noise = np.concatenate([(o - m).ravel() for o, m in zip(out.to_numpy_ndarrays(), mean, strict=True)])
    assert 0.05 < noise.std() < 0.25  # noise stdev z * clip / clients = 0.125, added after clipping


def test_secagg_range_check_fails_loudly_instead_of_silent_clipping():
    s = SecAggSettings(clipping_range=2.0, max_weight=100.0)
    ok = [np.full((3, 2), 1.9)]
    check_secagg_range(["w"], ok, ok, 100.0, s)
    with pytest.raises(SecAggRangeError, match="would clip 'w'"):
        check_secagg_range(["w"], [np.full((3, 2), 2.1)], ok, 100.0, s)
    check_secagg_range(["w"], [np.full((3, 2), 2.1)], ok, 50.0, s)  # scaled by weight / max_weight
    with pytest.raises(SecAggRangeError, match="max_weight"):
        check_secagg_range(["w"], ok, ok, 101.0, s)


def test_default_secagg_range_is_safe_for_the_trained_model(small_cfg):
    """Item parameters after many local epochs at a high learning rate stay far inside +-8."""
    cfg = dict(small_cfg, training=dict(small_cfg["training"], lr_max=0.05, weight_decay=0.0))
    ctx, items = make_context(3, 6), _items(small_cfg)
    for rnd in range(1, 4):
        update = local_round(cfg, ctx, items, {"server-round": rnd, **centres_config(CENTRES)})
        items = update.items
    peak = max(float(np.abs(v).max()) for v in items.values())
    assert peak < SecAggSettings().clipping_range / 4


def test_audit_finds_a_leaked_user_embedding(small_cfg, tmp_path):
    """The audit can fail: a client that sends its user factors is caught."""
    audit = make_audit_mod(tmp_path)

    def leaky(msg, ctx, call_next):
        reply = call_next(msg, ctx)
        user = ctx.state["user-state"]["user_factors.weight"].numpy()
        reply.content["metrics"]["leak"] = [float(v) for v in user.ravel()]
        return reply

    app = build_client_app(lambda _c: small_cfg, mods=[audit, leaky])
    app(_train_msg(small_cfg), make_context(0, 6))
    report = audit_violations(tmp_path, small_cfg, n_items=4)
    assert report.messages == 1
    assert any("user embedding was sent" in v for v in report.violations)
    assert any("'metrics.leak' is not an aggregate metric" in v for v in report.violations)
    clean = tmp_path / "clean"
    app = build_client_app(lambda _c: small_cfg, mods=[make_audit_mod(clean)])
    app(_train_msg(small_cfg), make_context(0, 6))
    assert audit_violations(clean, small_cfg, n_items=4).violations == []
    line = json.loads((clean / "node-0.jsonl").read_text())
    assert set(line["sent"]["arrays"]["arrays"]) == {"item_factors.weight", "item_bias.weight"}
    assert torch.tensor(line["device"]["user_factors.weight"]).numel() == small_cfg["model"]["n_factors"]


def test_dp_runs_refuse_federated_clustering_statistics(small_cfg):
    cfg = with_privacy(small_cfg, preset="central_dp")
    assert PrivacySettings.from_cfg(cfg).centres(cfg["data"]) == "public"  # auto: public under DP
    cfg["data"] = dict(cfg["data"], centres="federated")
    with pytest.raises(PrivacyConfigError, match=r"field 'data\.centres'.*outside the DP guarantee"):
        PrivacySettings.from_cfg(cfg)
    plain = dict(small_cfg, data=dict(small_cfg["data"], centres="federated"))
    assert PrivacySettings.from_cfg(plain).centres(plain["data"]) == "federated"


def test_integers_travel_exactly_through_secaggs_quantisation():
    """to_grid/from_grid through Flower's own quantise, modular sum and dequantise (the workflow's maths)."""
    from flwr.common.secure_aggregation.quantization import dequantize, quantize

    from strategies.secagg import from_grid, to_grid

    s = SecAggSettings()
    rng = np.random.default_rng(1)
    clients = [rng.integers(-(2**20), 2**20, size=(7, 3)) for _ in range(9)]
    q = [quantize([to_grid(c, s)], s.clipping_range, s.quantization_range)[0].astype(np.int64) for c in clients]
    total = sum(q) % s.modulus_range
    average = (dequantize([total], s.clipping_range, s.quantization_range)[0] - 8 * (len(clients) - 1)) / len(clients)
    assert np.array_equal(from_grid(average, len(clients), s), sum(clients))
    with pytest.raises(SecAggRangeError, match="does not fit"):
        to_grid(np.array([2**21]), s)
    with pytest.raises(PrivacyConfigError, match="power of two"):
        SecAggSettings(clipping_range=10.0).check(10)


def test_device_reports_give_the_pooled_errors_and_the_largest_epsilon(tmp_path):
    from fedmood.federated.device_report import add_to_report, merge_reports, read_reports

    cfg = {"federation": {"device_reports": str(tmp_path)}}
    for user, (rows, mse) in enumerate([(10, 0.2), (30, 0.1)]):
        for rnd in (1, 2):
            entry = {"train-mse": mse, "train-rows": rows, "dpsgd-epsilon": rnd + user, "dpsgd-delta": 1e-5}
            if rnd == 2:
                entry.update({"val-sse": mse * rows / 4, "val-n": rows / 4})
            add_to_report(cfg, user, "round", {**entry, "dpsgd-noise": 1.0, "round": rnd})
            report = read_reports(tmp_path)[user]["round"][-1]
            assert report["train-mse"] == mse
        add_to_report(cfg, user, "evaluation", {"round": 3, "val-sse": 1.0 + user, "val-n": 10.0})
    rows = [{"round": 1}, {"round": 2}]
    found = merge_reports(rows, read_reports(tmp_path))
    assert rows[0]["train_mse"] == pytest.approx((10 * 0.2 + 30 * 0.1) / 40)
    assert rows[0]["val_mse"] == pytest.approx((0.2 * 2.5 + 0.1 * 7.5) / 10)  # round 1's model, evaluated in round 2
    assert rows[1]["val_mse"] == pytest.approx(3.0 / 20)  # the final evaluation
    assert rows[0]["epsilon"] == 2 and rows[1]["epsilon"] == 3
    assert found["dpsgd"] == {"epsilon": 3, "epsilon_mean": 2.5, "delta": 1e-5, "noise_multiplier": 1.0}


def test_audit_refuses_per_client_metrics_under_a_privacy_mechanism(small_cfg, tmp_path):
    """The stricter rule can fail: a SecAgg+ run whose device also sends its training error is caught."""
    cfg = with_privacy(small_cfg, preset="dpsgd")
    audit = make_audit_mod(tmp_path)

    def leaky(msg, ctx, call_next):
        reply = call_next(msg, ctx)
        reply.content["metrics"]["train_mse"] = 0.1
        return reply

    app = build_client_app(lambda _c: cfg, mods=[audit, leaky])
    app(_train_msg(cfg), make_context(0, 6))
    report = audit_violations(tmp_path, cfg, n_items=4)
    assert any("'metrics.train_mse' = 0.1 is per-client under a privacy mechanism" in v for v in report.violations)
