"""Hide the SecAgg+ weight that Flower's ``secaggplus_mod`` leaves in the clear.

``secaggplus_mod`` masks a client's weighted parameters *and its weight* (the server only learns
their sums), but the reply it sends still carries the legacy ``FitRes.num_examples`` unmasked: the
client's number of training rows, per client. :func:`hide_secagg_weight_mod`, placed *outside*
``secaggplus_mod``, replaces it by 1 after the masking is done. The server needs no per-client
weight: SecAgg+ hands it the weighted average already, and averaging identical copies of it with
weight 1 changes nothing.
"""

from __future__ import annotations

from flwr.app import Context, Message, MetricRecord

NUM_EXAMPLES_RECORD = "fitres.num_examples"


def hide_secagg_weight_mod(msg: Message, context: Context, call_next) -> Message:
    """Outermost mod of a SecAgg+ client: the reply's plain ``num_examples`` becomes 1."""
    reply = call_next(msg, context)
    if not reply.has_error() and NUM_EXAMPLES_RECORD in reply.content.metric_records:
        reply.content.metric_records[NUM_EXAMPLES_RECORD] = MetricRecord({"num_examples": 1})
    return reply
