"""The device's half of distributed DP: its share of discrete Gaussian noise, added inside SecAgg+.

:func:`make_distributed_noise_mod` returns a mod to sit between ``secaggplus_mod`` (outside) and
Flower's ``fixedclipping_mod`` (inside). On the reply of a training round it takes the clipped
model, writes it on SecAgg+'s quantisation grid (nearest level), adds integer noise from the
discrete Gaussian N_Z(0, σ²) drawn from the OS's entropy, and hands the result, still on the grid,
to SecAgg+, which masks and sums it exactly. σ comes from the run's own config
(:func:`fedmood.privacy.distributed.device_share_sigma`), never from the server, so a server cannot
ask for less noise. See :mod:`fedmood.privacy.distributed` for the mechanism and its accounting.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from flwr.app import Context, Message
from flwr.app.message_type import MessageType
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common import recorddict_compat as compat

from fedmood.privacy.distributed import device_share_sigma
from fedmood.privacy.settings import PrivacySettings
from strategies.secagg import to_grid

PARAMS_RECORD = "fitres.parameters"


def federation_size(cfg: dict, context: Context) -> int:
    """How many users the federation has, as the device knows it (its node config, or the config)."""
    nodes = cfg["federation"].get("nodes")
    return int(nodes) if nodes else int(context.node_config["num-partitions"])


def make_distributed_noise_mod(cfg_fn: Callable[[Context], dict]):
    """The noise-share mod; ``cfg_fn(context)`` gives the run's config."""

    def distributed_noise_mod(msg: Message, context: Context, call_next) -> Message:
        reply = call_next(msg, context)
        if msg.metadata.message_type != MessageType.TRAIN or reply.has_error():
            return reply
        if PARAMS_RECORD not in reply.content.array_records:
            return reply
        cfg = cfg_fn(context)
        settings = PrivacySettings.from_cfg(cfg)
        fitres = compat.recorddict_to_fitres(reply.content, keep_input=True)
        arrays = parameters_to_ndarrays(fitres.parameters)
        dim = sum(a.size for a in arrays)
        sigma = device_share_sigma(settings, cfg["federation"], federation_size(cfg, context), dim)
        rnd = int(compat.recorddict_to_fitins(msg.content, keep_input=True).config.get("server-round", 0))
        source = settings.noise(f"distributed/node-{context.node_config['partition-id']}/round-{rnd}")
        step = settings.secagg.grid_step
        levels = [np.rint(a / step).astype(np.int64) + source.discrete_gaussian(a.shape, sigma) for a in arrays]
        noised = [to_grid(q, settings.secagg, "a noised share") for q in levels]
        reply.content.array_records[PARAMS_RECORD] = compat.parameters_to_arrayrecord(
            ndarrays_to_parameters(noised), keep_input=True
        )
        return reply

    return distributed_noise_mod
