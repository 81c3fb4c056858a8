"""The mood recommender's ClientApp: one per user, holding only that user's data.

What leaves the device: item factors and item biases after a local epoch (``train``), aggregate
metrics, and for the federated clustering per-cluster activity counts and histograms (``query``).
The user's own embedding and bias never leave it (see :mod:`fedmood.studies.mood.device`).

Two thin adapters deliver the same local round (:func:`fedmood.studies.mood.device.local_round`):

* the Message API (``@app.train``), used without SecAgg+, with Flower's client-side clipping
  mods when central DP clips on the clients;
* a legacy ``NumPyClient`` behind Flower's ``secaggplus_mod`` (SecAgg+ exists only on the legacy
  workflow path in this Flower version), with the legacy clipping mod for central DP + SecAgg+.

Which one runs follows the run's ``privacy`` config, which the client reads itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.client import NumPyClient
from flwr.client.mod import fixedclipping_mod as legacy_fixedclipping_mod
from flwr.client.mod import make_ffn, secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod

from fedmood.federated.device_report import add_to_report
from fedmood.keys import NUM_EXAMPLES, VAL_MSE, VAL_N, VAL_SSE
from fedmood.privacy.settings import PrivacySettings
from fedmood.studies.mood.device import (
    CLUSTERING_STAGES,
    clustering_statistics,
    device_data,
    device_store,
    keep_final_model,
    local_evaluation,
    local_round,
    personalise_on_device,
    ranking_on_device,
    report_or_send,
    suggestions,
)
from fedmood.studies.mood.model import GLOBAL_KEYS
from fedmood.studies.mood.run_config import config_from_context
from strategies.mods.distributed_dp import make_distributed_noise_mod
from strategies.mods.faults import hold_mod
from strategies.mods.secagg_weight import hide_secagg_weight_mod
from strategies.secagg import check_secagg_range, to_grid

ConfigFn = Callable[[Context], dict]


def _items(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in record.items()}


def train_on_device(msg: Message, context: Context, cfg: dict) -> Message:
    """Message-API adapter of :func:`local_round`."""
    update = local_round(cfg, context, _items(msg.content["arrays"]), msg.content["config"])
    arrays = ArrayRecord({k: Array(np.ascontiguousarray(update.items[k])) for k in GLOBAL_KEYS})
    metrics = MetricRecord({**update.to_server, NUM_EXAMPLES: update.weight})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


def evaluate_on_device(msg: Message, context: Context, cfg: dict) -> Message:
    """Validation MSE of the global item parameters with this user's own parameters."""
    mse, n = local_evaluation(cfg, context, _items(msg.content["arrays"]), msg.content["config"])
    return Message(RecordDict({"metrics": MetricRecord({VAL_MSE: mse, NUM_EXAMPLES: float(n)})}), reply_to=msg)


def query_on_device(msg: Message, context: Context, cfg: dict) -> Message:
    """Federated k-modes statistics; after training, the final evaluation (under a privacy mechanism),
    personalisation, and for the demo users their suggestions (the last three go to the device's
    report instead of the server under a privacy mechanism: :func:`report_or_send`); the device's
    predicted mood per item (``rank``: into its own report, for measuring suggestion quality in a
    simulation, never sent)."""
    config = msg.content["config"]
    stage, user = config["stage"], device_data(cfg, context).user
    rnd = int(config.get("server-round", 0))
    if stage == "evaluate":
        mse, n = local_evaluation(cfg, context, _items(msg.content["arrays"]), config)
        out = report_or_send(cfg, context, user, "evaluation", {VAL_SSE: mse * n, VAL_N: float(n)}, rnd)
        return Message(RecordDict({"metrics": MetricRecord(out)} if out else {}), reply_to=msg)
    if stage == "personalise":
        result = personalise_on_device(cfg, context, _items(msg.content["arrays"]), config)
        out = report_or_send(cfg, context, user, "personalisation", result, rnd)
        return Message(RecordDict({"personalisation": MetricRecord(out)} if out else {}), reply_to=msg)
    if stage == "suggest":
        if user not in list(config["users"]):
            return Message(RecordDict({}), reply_to=msg)
        top = suggestions(cfg, context, _items(msg.content["arrays"]), config)
        top = report_or_send(cfg, context, user, "suggestions", top, rnd)
        return Message(RecordDict({"suggestions": ConfigRecord(top)} if top else {}), reply_to=msg)
    if stage == "keep":  # the final model, into the device's own store
        keep_final_model(cfg, context, _items(msg.content["arrays"]), config)
        return Message(RecordDict({}), reply_to=msg)
    if stage == "rank":  # into the device's own report only, under every mechanism
        entry = ranking_on_device(cfg, context, _items(msg.content["arrays"]), config)
        add_to_report(cfg, user, "ranking", {"round": rnd, **entry}, store=device_store(cfg, context))
        return Message(RecordDict({}), reply_to=msg)
    if PrivacySettings.from_cfg(cfg).protected:
        raise PermissionError(
            f"clustering statistics ('{stage}') are sent in the clear only without a privacy mechanism; "
            "under SecAgg+ they travel as a secure sum, under DP the centres are public"
        )
    stats = clustering_statistics(cfg, context, config)
    return Message(RecordDict({"stats": ArrayRecord({k: Array(v) for k, v in stats.items()})}), reply_to=msg)


class LegacyMoodClient(NumPyClient):
    """Legacy adapter of :func:`local_round` for the SecAgg+ workflow."""

    def __init__(self, cfg: dict, context: Context) -> None:
        self.cfg, self.device_context = cfg, context
        self.privacy = PrivacySettings.from_cfg(cfg)

    def fit(self, parameters: list[np.ndarray], config: dict):
        settings = self.privacy.secagg
        if config.get("stage") in CLUSTERING_STAGES:  # a secure sum of the federated k-modes counts
            stats = clustering_statistics(self.cfg, self.device_context, config)
            return [to_grid(v, settings, f"clustering '{k}'") for k, v in stats.items()], int(settings.max_weight), {}
        received = dict(zip(GLOBAL_KEYS, parameters, strict=True))
        update = local_round(self.cfg, self.device_context, received, config)
        out = [update.items[k] for k in GLOBAL_KEYS]
        check_secagg_range(GLOBAL_KEYS, out, parameters, update.weight, settings)
        return out, int(update.weight), update.to_server


def legacy_client_app(cfg_fn: ConfigFn, privacy: PrivacySettings) -> ClientApp:
    """The SecAgg+ client. Mods, outermost first: the weight hidden, ``secaggplus_mod``, the distributed
    DP noise share, clipping (central or distributed DP). A reply passes them innermost first."""
    mods = [hide_secagg_weight_mod, secaggplus_mod]
    if privacy.distributed_dp.enabled:
        mods.append(make_distributed_noise_mod(cfg_fn))
    if privacy.central_dp.enabled or privacy.distributed_dp.enabled:
        mods.append(legacy_fixedclipping_mod)
    return ClientApp(client_fn=lambda ctx: LegacyMoodClient(cfg_fn(ctx), ctx).to_client(), mods=mods)


def train_mods(privacy: PrivacySettings) -> list:
    """Flower's client-side clipping mods for central DP that clips on the clients."""
    dp = privacy.central_dp
    if not dp.enabled or dp.clipping != "client":
        return []
    return [adaptiveclipping_mod if dp.adaptive else fixedclipping_mod]


def build_client_app(cfg_fn: ConfigFn, mods: list | None = None) -> ClientApp:
    """The ClientApp; ``cfg_fn(context)`` gives the experiment config (closure or run config).

    ``mods`` wrap every message (e.g. :func:`strategies.mods.audit.make_audit_mod`).
    """
    app = ClientApp(mods=mods or [])

    @app.train()
    def _train(msg: Message, context: Context) -> Message:
        cfg = cfg_fn(context)
        privacy = PrivacySettings.from_cfg(cfg)
        if privacy.secagg.enabled:
            return legacy_client_app(cfg_fn, privacy)(msg, context)
        return make_ffn(lambda m, c: train_on_device(m, c, cfg), train_mods(privacy))(msg, context)

    @app.evaluate()
    def _evaluate(msg: Message, context: Context) -> Message:
        cfg = cfg_fn(context)
        privacy = PrivacySettings.from_cfg(cfg)
        if privacy.secagg.enabled:
            return legacy_client_app(cfg_fn, privacy)(msg, context)
        return evaluate_on_device(msg, context, cfg)

    @app.query()
    def _query(msg: Message, context: Context) -> Message:
        return query_on_device(msg, context, cfg_fn(context))

    return app


#: For ``flwr run .``: the config comes from the run config (pyproject's [tool.flwr.app.config]).
#: ``hold_mod`` is inert unless a SuperNode's node config asks for a fault (deployment tests).
app = build_client_app(config_from_context, mods=[hold_mod])
