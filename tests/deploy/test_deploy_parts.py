"""The pieces of the deployment, without starting Flower processes: device stores, user state,
credentials, the server checkpoint, resuming strategies, reply minimums, fault injection."""

from __future__ import annotations

import ipaddress
import stat

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.cli.supernode.register import try_load_public_key
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key
from flwr.serverapp.strategy import Strategy

from fedmood.data.store import StoreError
from fedmood.deploy.credentials import ensure_node_key, ensure_tls
from fedmood.federated.checkpoint import (
    CheckpointError,
    ServerCheckpoint,
    config_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from fedmood.keys import LOCAL_STATE_KEY, RUN_KEY
from fedmood.studies.mood.client_app import build_client_app
from fedmood.studies.mood.data.device_store import (
    device_data_from_store,
    load_user_state,
    node_store,
    provision_devices,
    refresh_fragments,
    save_user_state,
)
from fedmood.studies.mood.data.local import load_local_data
from fedmood.studies.mood.device import centres_config
from fedmood.studies.mood.run_config import run_config_overrides
from fedmood.studies.mood.server_app import initial_item_arrays
from strategies.mods.faults import fault_point
from strategies.resume import ResumeAt
from strategies.strict import ClientRoundError, FailLoudly, successful_replies
from tests.conftest import make_message


@pytest.fixture
def stores(small_logs, tmp_path):
    root = tmp_path / "nodes"
    provision_devices(root, small_logs, 3)
    return root


def test_store_holds_the_same_rows_and_split_as_the_simulation(small_cfg, stores):
    data_cfg, seed = small_cfg["data"], small_cfg["seed"]
    for i in range(3):
        store = node_store(stores, i)
        assert {"meta", "logs", "fragments", "labels"} <= set(store.names())
        got = device_data_from_store(store, data_cfg["val_frac"], seed)
        want = load_local_data(data_cfg, i, seed)
        assert got.user == want.user == i
        np.testing.assert_array_equal(got.fragments, want.fragments)
        np.testing.assert_array_equal(got.ratings, want.ratings)
        np.testing.assert_array_equal(got.train, want.train)
        np.testing.assert_array_equal(got.val, want.val)
    # nothing readable in clear on disk
    raw = b"".join(p.read_bytes() for p in (stores / "node-0" / "store").iterdir())
    assert b"activities" not in raw and b"user_id" not in raw
    assert stat.S_IMODE((stores / "node-0" / "store.key").stat().st_mode) == 0o600


def test_each_device_has_its_own_key(stores):
    other = node_store(stores, 1)
    (stores / "node-0" / "store" / "meta.fmstore").replace(other.path("meta"))  # node 0's record, node 1's key
    with pytest.raises(StoreError, match=r"meta\.fmstore: cannot decrypt"):
        other.get_json("meta")


def test_refresh_recuts_fragments_from_the_stored_raw_logs(small_cfg, stores):
    store = node_store(stores, 0)
    before = device_data_from_store(store, 0.2, 1)
    docs = store.get_json("logs")
    first = sorted(docs)[0]
    store.put_json("logs", {k: v for k, v in docs.items() if k != first})  # the logger dropped a day
    meta = refresh_fragments(store)
    after = device_data_from_store(store, 0.2, 1)
    assert meta["fragments"] == len(before.ratings) - 24 == len(after.ratings)
    np.testing.assert_array_equal(after.fragments, before.fragments[24:])


def test_a_long_lived_clientapp_sees_the_refreshed_fragments(small_cfg, stores):
    from fedmood.studies.mood.data.device_store import node_store_paths
    from fedmood.studies.mood.device import device_data, node_context

    store_dir, key_file = node_store_paths(stores, 0)
    context = node_context(0, 3)
    context.node_config.update({"store": str(store_dir), "store-key-file": str(key_file)})
    before = device_data(small_cfg, context)
    assert device_data(small_cfg, context) is before  # cached while the store is unchanged
    store = node_store(stores, 0)
    docs = store.get_json("logs")
    store.put_json("logs", {k: v for k, v in docs.items() if k != sorted(docs)[0]})
    refresh_fragments(store)  # the device's logger re-cut its rows between two runs
    assert len(device_data(small_cfg, context).ratings) == len(before.ratings) - 24


def test_user_state_is_kept_per_run_and_round_and_pruned(stores):
    store = node_store(stores, 0)
    arrays = {"user_factors.weight": np.ones((1, 3), np.float32)}
    assert load_user_state(store, "aaa", 5) is None
    for rnd in (1, 2, 3):
        save_user_state(store, "aaa", rnd, {k: v * rnd for k, v in arrays.items()})
    kept = sorted(n for n in store.names() if n.startswith("user-state."))
    assert kept == ["user-state.aaa.r2", "user-state.aaa.r3"]
    assert load_user_state(store, "aaa", 4)["user_factors.weight"][0, 0] == 3
    assert load_user_state(store, "aaa", 3)["user_factors.weight"][0, 0] == 2  # resuming round 3
    assert load_user_state(store, "bbb", 4) is None  # another run's state is never used
    save_user_state(store, "bbb", 1, arrays)
    assert [n for n in store.names() if n.startswith("user-state.")] == ["user-state.bbb.r1"]


def test_a_device_with_a_store_restores_its_state_in_a_fresh_process(small_cfg, stores):
    """A SuperNode that restarts (or a resumed run) gets the user's parameters back from the store."""
    cfg = dict(small_cfg, federation=dict(small_cfg["federation"], stores=str(stores)))
    app = build_client_app(lambda _ctx: cfg)
    centres = np.array([[0] * 6, [1] * 6, [3] * 6, [4] * 6])
    config = {"server-round": 1, "evaluate-first": False, RUN_KEY: "0123abcd", **centres_config(centres)}
    arrays = initial_item_arrays(cfg, len(centres))

    def context():  # a node Context as a SuperNode gives it: node config only
        return Context(run_id=1, node_id=7, node_config={"partition-id": 1}, state=RecordDict(), run_config={})

    first = context()
    reply = app(make_message(RecordDict({"arrays": arrays, "config": ConfigRecord(config)}), "train"), first)
    assert not reply.has_error(), reply.error
    trained = first.state[LOCAL_STATE_KEY].to_torch_state_dict()
    assert "user-state.0123abcd.r1" in node_store(stores, 1).names()
    fresh = context()  # the process died: empty state
    reply = app(
        make_message(RecordDict({"arrays": arrays, "config": ConfigRecord({**config, "server-round": 2})}), "evaluate"),
        fresh,
    )
    assert not reply.has_error(), reply.error
    restored = fresh.state[LOCAL_STATE_KEY].to_torch_state_dict()
    for k, v in trained.items():
        np.testing.assert_array_equal(restored[k].numpy(), v.numpy())


def test_credentials_tls_for_loopback_and_node_keys_flower_accepts(tmp_path):
    tls = ensure_tls(tmp_path / "certs")
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert stat.S_IMODE(tls.server_key.stat().st_mode) == 0o600
    assert ensure_tls(tmp_path / "certs").ca_cert.read_bytes() == tls.ca_cert.read_bytes()  # made once
    key = ensure_node_key(tmp_path / "node", "auth")
    assert stat.S_IMODE(key.private.stat().st_mode) == 0o600
    assert try_load_public_key(key.public)  # what `flwr supernode register` reads (P-384 OpenSSH)
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    private = load_ssh_private_key(key.private.read_bytes(), None)  # what flower-supernode reads
    assert isinstance(private.curve, ec.SECP384R1)


def test_checkpoint_round_trip_and_refusals(small_cfg, tmp_path):
    import random

    random.seed(3)
    np.random.seed(4)
    arrays = {"item_factors.weight": np.arange(6, dtype=np.float32).reshape(3, 2)}
    fp = config_fingerprint(small_cfg)
    ckpt = ServerCheckpoint.capture(2, "abc123", fp, arrays, centres=np.eye(3, dtype=np.int64), history={"x": 1})
    draws = (random.random(), np.random.rand())
    path = save_checkpoint(tmp_path / "ck.npz", ckpt)
    back = load_checkpoint(path)
    assert (back.round, back.run_key, back.fingerprint, back.history) == (2, "abc123", fp, {"x": 1})
    np.testing.assert_array_equal(back.arrays["item_factors.weight"], arrays["item_factors.weight"])
    np.testing.assert_array_equal(back.centres, np.eye(3))
    back.restore_generators()
    assert (random.random(), np.random.rand()) == draws  # the generators continue exactly
    other = dict(small_cfg, seed=small_cfg["seed"] + 1)
    assert config_fingerprint(other) != fp
    assert config_fingerprint(dict(small_cfg, results_root="/elsewhere")) == fp
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"ck\.npz"):
        load_checkpoint(path)


class _Recorder(Strategy):
    def __init__(self):
        super().__init__()
        self.calls = []

    def summary(self):
        pass

    def configure_train(self, server_round, arrays, config, grid):
        self.calls.append(("configure_train", server_round))
        return []

    def aggregate_train(self, server_round, replies):
        self.calls.append(("aggregate_train", server_round))
        return None, None

    def configure_evaluate(self, server_round, arrays, config, grid):
        self.calls.append(("configure_evaluate", server_round))
        return []

    def aggregate_evaluate(self, server_round, replies):
        self.calls.append(("aggregate_evaluate", server_round))
        return None


def test_resume_at_shifts_every_round_number():
    inner = _Recorder()
    s = ResumeAt(inner, 3)
    s.configure_train(1, None, ConfigRecord(), None)
    s.aggregate_train(1, [])
    s.configure_evaluate(2, None, ConfigRecord(), None)
    s.aggregate_evaluate(2, [])
    assert inner.calls == [
        ("configure_train", 4),
        ("aggregate_train", 4),
        ("configure_evaluate", 5),
        ("aggregate_evaluate", 5),
    ]


def _reply(ok: bool) -> Message:
    msg = make_message(RecordDict({}), "train")
    if ok:
        return Message(
            RecordDict({"arrays": ArrayRecord(), "metrics": MetricRecord({"num-examples": 1.0})}), reply_to=msg
        )
    return Message(Error(code=0, reason="Node Unavailable"), reply_to=msg)


def test_a_round_goes_on_with_enough_replies_and_keeps_the_model_without():
    seen = []
    inner = _Recorder()
    s = FailLoudly(inner, on_aggregate=lambda *a: seen.append(a), strict=False, min_replies=2)
    s._sent["train"] = 3
    s.aggregate_train(1, [_reply(True), _reply(False), _reply(True)])  # one dead node: goes on
    assert inner.calls == [("aggregate_train", 1)] and seen[-1][3] == 2
    assert s.aggregate_train(2, [_reply(True), _reply(False), _reply(False)]) == (None, None)  # too few
    assert inner.calls == [("aggregate_train", 1)] and seen[-1][1] is None
    strict = FailLoudly(_Recorder(), strict=True)
    strict._sent["train"] = 2
    with pytest.raises(ClientRoundError):
        strict.aggregate_train(1, [_reply(True), _reply(False)])
    assert len(successful_replies("query", 0, 3, [_reply(True), _reply(False), _reply(True)], 2)) == 2
    with pytest.raises(ClientRoundError, match="1 of 3 nodes replied, 2 needed"):
        successful_replies("query", 0, 3, [_reply(True), _reply(False)], 2)


def test_fault_point_fires_once_at_the_configured_round_or_stage(tmp_path):
    marker = tmp_path / "fault"
    node = {"fault-marker": str(marker), "fault-round": 3}
    train = lambda rnd: make_message(RecordDict({"config": ConfigRecord({"server-round": rnd})}), "train")  # noqa: E731
    assert not fault_point(train(2), node) and fault_point(train(3), node)
    assert not fault_point(make_message(RecordDict({"config": ConfigRecord({"server-round": 3})}), "evaluate"), node)
    assert not fault_point(train(3), {})  # no fault configured
    marker.write_text("x")
    assert not fault_point(train(3), node)  # fired already
    marker.unlink()
    stage = {"fault-marker": str(marker), "fault-stage": "collect_masked_vectors"}
    secagg = lambda s: make_message(RecordDict({RECORD_KEY_CONFIGS: ConfigRecord({Key.STAGE: s})}), "train")  # noqa: E731
    assert not fault_point(secagg("share_keys"), stage) and fault_point(secagg("collect_masked_vectors"), stage)


def test_run_config_selects_the_engine_and_takes_extra_overrides():
    got = run_config_overrides(
        {"engine": "deployment", "num-server-rounds": 4, "overrides": "federation.nodes=3 'results_root=/a b'"}
    )
    assert got == ["federation=deployment", "training.epochs=4", "federation.nodes=3", "results_root=/a b"]


def test_resume_picks_the_checkpoint_only_when_it_can_reproduce_the_run(small_cfg, tmp_path):
    from fedmood.privacy.settings import PrivacySettings
    from fedmood.studies.mood.server_app import resume_checkpoint

    path = tmp_path / "ck.npz"
    fed = dict(small_cfg["federation"], checkpoint=str(path), resume=True, stores=str(tmp_path / "nodes"))
    cfg = dict(small_cfg, federation=fed)
    privacy = PrivacySettings.from_cfg(cfg)
    assert resume_checkpoint(cfg, privacy) is None  # nothing to resume yet: start fresh
    arrays = {"item_bias.weight": np.zeros((4, 1), np.float32)}
    save_checkpoint(path, ServerCheckpoint.capture(1, "k", config_fingerprint(cfg), arrays))
    assert resume_checkpoint(cfg, privacy).round == 1
    no_stores = dict(cfg, federation=dict(fed, stores=None))
    with pytest.raises(CheckpointError, match="stores"):  # the devices' parameters would be lost
        resume_checkpoint(no_stores, privacy)
    other = dict(cfg, training=dict(cfg["training"], lr_max=1.0))
    with pytest.raises(CheckpointError, match="another config"):
        resume_checkpoint(other, PrivacySettings.from_cfg(other))
    assert resume_checkpoint(dict(cfg, federation=dict(fed, resume=False)), privacy) is None


def test_personalised_parameters_are_kept_in_the_store(small_cfg, stores):
    cfg = dict(small_cfg, federation=dict(small_cfg["federation"], stores=str(stores)))
    cfg["personalise"] = dict(cfg["personalise"], items=True, epochs=1)
    app = build_client_app(lambda _ctx: cfg)
    centres = np.array([[0] * 6, [1] * 6, [3] * 6, [4] * 6])
    config = ConfigRecord({"stage": "personalise", "server-round": 4, RUN_KEY: "feed", **centres_config(centres)})
    ctx = Context(run_id=1, node_id=3, node_config={"partition-id": 0}, state=RecordDict(), run_config={})
    msg = make_message(RecordDict({"arrays": initial_item_arrays(cfg, 4), "config": config}), "query")
    reply = app(msg, ctx)
    assert not reply.has_error(), reply.error
    store = node_store(stores, 0)
    assert {"personal-state", "personal-items"} <= set(store.names())
    kept = ctx.state[LOCAL_STATE_KEY].to_torch_state_dict()
    for k, v in store.get_arrays("personal-state").items():
        np.testing.assert_array_equal(v, kept[k].numpy())


def test_a_restarted_dpsgd_device_keeps_counting_its_privacy_loss(small_logs, tmp_path):
    """The accountant's history travels with the user's stored state: ε after a restart is the
    ε of a device that never restarted (else a restart would silently under-report it)."""
    from fedmood.keys import DPSGD_EPSILON
    from fedmood.studies.mood.device import local_round
    from fedmood.studies.mood.run_config import compose_config

    provision_devices(tmp_path / "nodes", small_logs, 2)
    cfg = compose_config(
        ["data=logs", f"data.logs_dir={small_logs}", "data.n_clusters=4", "privacy=dpsgd", "training.epochs=3"]
    )
    cfg["federation"] = dict(cfg["federation"], stores=str(tmp_path / "nodes"))
    centres = np.array([[0] * 6, [1] * 6, [3] * 6, [4] * 6])
    items = {k: v.numpy() for k, v in initial_item_arrays(cfg, 4).items()}

    def ctx():
        return Context(run_id=1, node_id=1, node_config={"partition-id": 1}, state=RecordDict(), run_config={})

    def config(rnd, key):
        return {"server-round": rnd, "evaluate-first": False, RUN_KEY: key, **centres_config(centres)}

    steady = ctx()
    eps = [local_round(cfg, steady, items, config(r, "aaaa")).metrics[DPSGD_EPSILON] for r in (1, 2)]
    local_round(cfg, ctx(), items, config(1, "bbbb"))
    restarted = local_round(cfg, ctx(), items, config(2, "bbbb")).metrics[DPSGD_EPSILON]  # a fresh process
    assert eps[1] > eps[0]
    assert restarted == pytest.approx(eps[1], rel=1e-9)
