"""A client mod that records every message a client sends, for privacy audits.

``make_audit_mod(folder)`` returns a mod to put *outermost* in a ClientApp's mods: after the app
(and every inner mod: SecAgg+, clipping) has produced the reply, it appends one JSON line to
``folder/node-<partition>.jsonl`` describing exactly what leaves the device: every record's
name, kind and content (arrays with shape, dtype and values; bytes base64-encoded). Alongside,
under ``"device"``, it notes what must *not* have left: the user's own embedding at that moment
(read from ``context.state``), so an auditor can search the sent content for it
(:func:`fedmood.studies.mood.message_audit.audit_violations`). Nothing in the reply is changed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord

from fedmood.keys import LOCAL_STATE_KEY


def _value(v):
    if isinstance(v, bytes):
        return {"bytes": base64.b64encode(v).decode()}
    if isinstance(v, list):
        return [_value(x) for x in v]
    return v


def describe_content(msg: Message) -> dict:
    """Every record of ``msg`` as JSON-able data."""
    out: dict = {}
    if msg.has_error():
        return {"error": msg.error.reason}
    for name, rec in msg.content.items():
        if isinstance(rec, ArrayRecord):
            out[name] = {
                "kind": "arrays",
                "arrays": {
                    k: {"shape": list(a.shape), "dtype": str(a.dtype), "values": a.numpy().ravel().tolist()}
                    for k, a in rec.items()
                },
            }
        elif isinstance(rec, MetricRecord):
            out[name] = {"kind": "metrics", "values": {k: _value(v) for k, v in rec.items()}}
        elif isinstance(rec, ConfigRecord):
            out[name] = {"kind": "config", "values": {k: _value(v) for k, v in rec.items()}}
        else:
            out[name] = {"kind": type(rec).__name__}
    return out


def make_audit_mod(folder: str | Path):
    """A mod that logs each outgoing message of a node to ``folder/node-<partition>.jsonl``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def audit_mod(msg: Message, context: Context, call_next) -> Message:
        records = msg.content.config_records  # read first: SecAgg+'s mod consumes the stage key of the instruction
        stage = ""  # the SecAgg+ protocol stage if there is one, else the application's
        for name in sorted(records, key=lambda n: n == "secaggplus_configs"):
            stage = str(records[name]["stage"]) if "stage" in records[name] else stage
        reply = call_next(msg, context)
        device = {}
        if LOCAL_STATE_KEY in context.state:
            device = {k: v.numpy().ravel().tolist() for k, v in context.state[LOCAL_STATE_KEY].items()}
        line = {
            "partition": int(context.node_config["partition-id"]),
            "message_type": msg.metadata.message_type,
            "stage": stage,
            "sent": describe_content(reply),
            "device": device,
        }
        path = folder / f"node-{line['partition']}.jsonl"
        with path.open("a") as fh:  # one node is served by one process at a time
            fh.write(json.dumps(line) + "\n")
        return reply

    return audit_mod
