"""FedAvg whose client-side evaluation rides on the next round's training message.

Flower's ``Strategy.start`` runs a train phase and an evaluate phase every round; in simulation
each phase costs at least one polling period of the Virtual Client Engine (0.1 s) plus a second
message per client. When a client's evaluation of the round-r global model can be computed at the
start of round r+1, before it trains (its local state has not changed in between), the numbers are
identical and half the messages are saved. This strategy asks for exactly that:

* round r > 1 train messages carry ``config["evaluate-first"] = True``; the client evaluates the
  received global model on its validation rows first and returns ``val-sse`` and ``val-n``
  (sum of squared errors and row count) with its training metrics;
* a normal evaluate phase runs only after the last round.

Validation metrics are aggregated as sums (``sum(val-sse) / sum(val-n)``), i.e. weighted by each
client's number of validation examples, not training examples; per-client privacy figures
(:data:`SPREAD_KEYS`) are reported as their maximum and mean over the clients.
:func:`validation_history` turns a run's metrics into ``{round: val_mse}`` for every round.

:class:`DeferredEvalFedAvg` is the Message-API strategy; :class:`DeferredEvalLegacyFedAvg` the
same for the legacy path that SecAgg+ needs.
"""

from __future__ import annotations

from collections.abc import Mapping

from flwr.app import ConfigRecord, MetricRecord, RecordDict
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedmood.keys import CLIENT_SECONDS, DPSGD_DELTA, DPSGD_EPSILON, FIT_SECONDS, VAL_MSE, VAL_N, VAL_SSE

SUMMED_KEYS = (VAL_SSE, VAL_N, CLIENT_SECONDS, FIT_SECONDS)
#: Per-client values reported as ``<key>-max`` and ``<key>-mean`` (e.g. each client's DP-SGD ε).
SPREAD_KEYS = (DPSGD_EPSILON, DPSGD_DELTA)


def combine_metrics(weighted: list[tuple[float, Mapping[str, float]]]) -> dict[str, float]:
    """Weighted mean of the clients' metrics; :data:`SUMMED_KEYS` added up; :data:`SPREAD_KEYS` max/mean."""
    total_w = float(sum(w for w, _ in weighted)) or 1.0
    out: dict[str, float] = {}
    spread: dict[str, list[float]] = {}
    for w, metrics in weighted:
        for key, val in metrics.items():
            if key in SUMMED_KEYS:
                out[key] = out.get(key, 0.0) + float(val)
            elif key in SPREAD_KEYS:
                spread.setdefault(key, []).append(float(val))
            else:
                out[key] = out.get(key, 0.0) + float(val) * w / total_w
    for key, vals in spread.items():
        out[spread(key, "max")], out[spread(key, "mean")] = max(vals), sum(vals) / len(vals)
    return out


def _aggregate_with_val_sums(records: list[RecordDict], weighting_key: str) -> MetricRecord:
    """Message-API ``train_metrics_aggr_fn`` around :func:`combine_metrics`."""
    pairs = []
    for rec in records:
        metrics = dict(next(iter(rec.metric_records.values())))
        pairs.append((float(metrics.pop(weighting_key)), metrics))
    return MetricRecord(combine_metrics(pairs))


class DeferredEvalFedAvg(FedAvg):
    """FedAvg that evaluates round r's model during round r+1's training (see module doc).

    ``final_evaluate=False`` skips the evaluate phase after the last round too (under a privacy
    mechanism the devices keep their evaluation in their own reports).
    """

    def __init__(self, num_rounds: int, final_evaluate: bool = True, **kwargs) -> None:
        kwargs.setdefault("train_metrics_aggr_fn", _aggregate_with_val_sums)
        super().__init__(**kwargs)
        self.num_rounds, self.final_evaluate = num_rounds, final_evaluate

    def configure_train(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        config = ConfigRecord(dict(config))
        config["evaluate-first"] = server_round > 1
        return super().configure_train(server_round, arrays, config, grid)

    def configure_evaluate(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        if server_round < self.num_rounds or not self.final_evaluate:
            return []
        return super().configure_evaluate(server_round, arrays, config, grid)


class DeferredEvalLegacyFedAvg(LegacyFedAvg):
    """The legacy-API twin of :class:`DeferredEvalFedAvg` (for the SecAgg+ workflow).

    ``fit_config`` is sent with every fit instruction, plus ``server-round`` and ``evaluate-first``.
    """

    def __init__(self, num_rounds: int, fit_config: dict | None = None, **kwargs) -> None:
        fit_config = dict(fit_config or {})
        kwargs.setdefault(
            "on_fit_config_fn", lambda rnd: {**fit_config, "server-round": rnd, "evaluate-first": rnd > 1}
        )
        kwargs.setdefault("on_evaluate_config_fn", lambda rnd: {**fit_config, "server-round": rnd})
        kwargs.setdefault("fit_metrics_aggregation_fn", lambda pairs: combine_metrics(list(pairs)))
        kwargs.setdefault(
            "evaluate_metrics_aggregation_fn", lambda pairs: combine_metrics([(float(n), m) for n, m in pairs])
        )
        super().__init__(**kwargs)
        self.num_rounds = num_rounds

    def configure_evaluate(self, server_round, parameters, client_manager):
        if server_round < self.num_rounds:
            return []
        return super().configure_evaluate(server_round, parameters, client_manager)


def validation_history(
    train_metrics: Mapping[int, Mapping], final: Mapping | None, num_rounds: int, key: str = VAL_MSE
) -> dict[int, float]:
    """``{round: validation MSE of that round's global model}`` from a deferred-evaluation run.

    ``train_metrics`` maps each round to its aggregated training metrics; ``final`` holds the last
    round's evaluation metrics.
    """
    hist: dict[int, float] = {}
    for rnd, metrics in train_metrics.items():
        if rnd > 1 and metrics and metrics.get(VAL_N, 0) > 0:
            hist[rnd - 1] = float(metrics[VAL_SSE]) / float(metrics[VAL_N])
    if final is not None and key in final:
        hist[num_rounds] = float(final[key])
    return hist
