"""Fault injection for deployment tests: make one SuperNode stop answering at a chosen moment.

:func:`hold_mod` is a ClientApp mod that does nothing unless the SuperNode's node config asks for
a fault:

* ``fault-marker``: a file path; the mod writes it when the fault point is reached;
* ``fault-round``: the server round of a training message to stop at, and/or
* ``fault-stage``: a SecAgg+ stage (``setup``, ``share_keys``, ``collect_masked_vectors``,
  ``unmask``) to stop at.

At the fault point the ClientApp writes the marker and then blocks instead of replying, so the
harness (:mod:`fedmood.deploy.federation`) knows the node is inside that round or stage and can
kill the SuperNode for real (SIGKILL of its process tree). The fault fires once: the marker
existing disarms it, so a restarted node with the same config behaves normally.
"""

from __future__ import annotations

import time
from pathlib import Path

from flwr.app import Context, Message
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

HOLD_SECONDS = 3600.0


def fault_point(msg: Message, node_config: dict) -> bool:
    """Whether ``msg`` is the message at which this node is configured to fail."""
    marker = node_config.get("fault-marker")
    if not marker or Path(str(marker)).exists() or msg.metadata.message_type != "train":
        return False
    want_round, want_stage = node_config.get("fault-round"), node_config.get("fault-stage")
    if want_stage is not None:
        configs = msg.content.config_records.get(RECORD_KEY_CONFIGS)
        return configs is not None and configs.get(Key.STAGE) == want_stage
    if want_round is not None:
        config = msg.content.config_records.get("config")
        return config is not None and int(config.get("server-round", -1)) == int(want_round)
    return False


def hold_mod(msg: Message, context: Context, call_next) -> Message:
    """At this node's fault point write the marker and block (the harness then kills the node)."""
    if fault_point(msg, dict(context.node_config)):
        Path(str(context.node_config["fault-marker"])).write_text(f"{msg.metadata.message_type}\n")
        time.sleep(HOLD_SECONDS)
    return call_next(msg, context)
