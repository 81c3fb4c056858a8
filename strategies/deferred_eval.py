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
client's number of validation examples, not training examples. :func:`validation_history` turns a
``Result`` into ``{round: val_mse}`` for every round.
"""

from __future__ import annotations

from flwr.app import ConfigRecord, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, Result

VAL_SSE, VAL_N = "val-sse", "val-n"
#: Per-client seconds spent in the train handler and in the training loop (summed over clients).
CLIENT_SECONDS, FIT_SECONDS = "client-seconds", "fit-seconds"
SUMMED_KEYS = (VAL_SSE, VAL_N, CLIENT_SECONDS, FIT_SECONDS)


def _aggregate_with_val_sums(records: list[RecordDict], weighting_key: str) -> MetricRecord:
    """Weighted mean of the training metrics; the :data:`SUMMED_KEYS` added up."""
    weights = [next(iter(r.metric_records.values()))[weighting_key] for r in records]
    total_w = float(sum(weights))
    out: dict[str, float] = {}
    for rec, w in zip(records, weights, strict=True):
        for key, val in next(iter(rec.metric_records.values())).items():
            if key == weighting_key:
                continue
            if key in SUMMED_KEYS:
                out[key] = out.get(key, 0.0) + float(val)
            else:
                out[key] = out.get(key, 0.0) + float(val) * w / total_w
    return MetricRecord(out)


class DeferredEvalFedAvg(FedAvg):
    """FedAvg that evaluates round r's model during round r+1's training (see module doc)."""

    def __init__(self, num_rounds: int, **kwargs) -> None:
        kwargs.setdefault("train_metrics_aggr_fn", _aggregate_with_val_sums)
        super().__init__(**kwargs)
        self.num_rounds = num_rounds

    def configure_train(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        config = ConfigRecord(dict(config))
        config["evaluate-first"] = server_round > 1
        return super().configure_train(server_round, arrays, config, grid)

    def configure_evaluate(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        if server_round < self.num_rounds:
            return []
        return super().configure_evaluate(server_round, arrays, config, grid)


def validation_history(result: Result, num_rounds: int, key: str = "val_mse") -> dict[int, float]:
    """``{round: validation MSE of that round's global model}`` from a DeferredEvalFedAvg run."""
    hist: dict[int, float] = {}
    for rnd, metrics in result.train_metrics_clientapp.items():
        if rnd > 1 and metrics.get(VAL_N, 0) > 0:
            hist[rnd - 1] = float(metrics[VAL_SSE]) / float(metrics[VAL_N])
    final = result.evaluate_metrics_clientapp.get(num_rounds)
    if final is not None:
        hist[num_rounds] = float(final[key])
    return hist
