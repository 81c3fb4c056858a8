"""A Flower strategy whose aggregate is the exact sum of the clients' arrays (counts), not a mean.

Federated LDA (approximate distributed LDA, Newman et al. 2009) needs the topic-word counts of all
devices added up; FedAvg's weighted mean would return them divided by the number of clients and as
floats. :class:`CountSum` is Flower's FedAvg (sampling, configuration, the checks on replies) with
``aggregate_train`` replaced by an exact integer sum of every array; metrics are summed too.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord
from flwr.serverapp.strategy import FedAvg


class CountSum(FedAvg):
    """FedAvg with ``aggregate_train`` = the sum of the replies' arrays (int64) and metrics."""

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid:
            return None, None
        records = [next(iter(m.content.array_records.values())) for m in valid]
        keys = list(records[0].keys())
        if any(list(r.keys()) != keys for r in records):
            raise ValueError(f"round {server_round}: the clients sent different arrays")
        arrays = ArrayRecord({k: Array(np.sum([r[k].numpy().astype(np.int64) for r in records], axis=0)) for k in keys})
        metrics: dict[str, float] = {}
        for m in valid:
            for record in m.content.metric_records.values():
                for key, value in record.items():
                    metrics[key] = metrics.get(key, 0.0) + float(value)
        return arrays, MetricRecord(metrics)
