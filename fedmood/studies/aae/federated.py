"""The anonymiser trained federatedly on Flower: one client per training subject.

Each client holds only its own windows and knows only its own identity label (its index among the
training subjects); the AAE and the three adversaries (whose identity heads are shared) travel as
one record. With one user per device a softmax identity head learns "my user for everything" and
the FedAvg of such heads identifies nobody; with ``identity_heads=fedaws`` the heads end in user
embeddings (a cosine head), each device trains its own user's embedding on its own windows only and
the server aggregates them with FedAwS (:mod:`strategies.fedaws`); with ``identity_heads=lda`` the
heads are linear discriminants on frozen, seeded convolutional features, which need no training:
each device sends the count, sum and scatter of its own windows' features and the server fits
the heads from their sums (:mod:`strategies.fedlda`; the same heads as a fit on the pooled
windows). Rounds alternate
(``strategies/alternating.py``): in an *adversaries* round every client trains EncReg/DecReg/ActReg
on its own AAE latents/outputs; in an *anonymiser* round it trains the AAE against the frozen
adversaries with the loss of :func:`fedmood.studies.aae.train.aae_loss`; FedAvg (weighted by
windows) after each, and with ``server_momentum`` the anonymiser rounds' average update drives a server step with
momentum (:mod:`strategies.phase_momentum`: a FedAvg round moves the AAE far less than a centralised
phase). 2 x ``rounds`` Flower rounds reproduce the centralised schedule.
"""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedmood.classification import predict
from fedmood.federated.study import run_fedavg_study
from fedmood.keys import NUM_EXAMPLES
from fedmood.seeding import derived_seed, torch_seeded
from fedmood.studies.aae.model import Autoencoder
from fedmood.studies.aae.train import (
    AAEConfig,
    Adversaries,
    aae_loss,
    discriminant_statistics,
    encode_all,
    train_adversaries,
)
from fedmood.training import TensorBatches, shuffled_batches, train_epoch
from strategies.alternating import AlternatingFedAvg
from strategies.fedaws import FedAwS
from strategies.fedlda import STATS_RECORD, FederatedLDA
from strategies.phase_momentum import PhaseMomentum

PHASES = ("adversaries", "anonymiser")


def build_networks(cfg: AAEConfig, width: int, n_users: int, n_activities: int) -> tuple[Autoencoder, Adversaries]:
    """The AAE and the three adversaries, freshly initialised."""
    aae = Autoencoder(2, cfg.hidden, arch=cfg.arch)
    latent_width = aae.encoder(torch.zeros(1, 2, width)).shape[2]
    return aae, Adversaries.create(width, latent_width, n_users, n_activities, cfg)


def to_record(aae: Autoencoder, adv: Adversaries) -> ArrayRecord:
    """All four networks as one ArrayRecord (keys prefixed by network)."""
    state = {f"aae.{k}": v for k, v in aae.state_dict().items()}
    for name, model in adv.models().items():
        state.update({f"{name}.{k}": v for k, v in model.state_dict().items()})
    return ArrayRecord(state)


def load_record(record: ArrayRecord, aae: Autoencoder, adv: Adversaries) -> None:
    """Load the four networks from a record written by :func:`to_record`."""
    state = record.to_torch_state_dict()
    for name, model in {"aae": aae, **adv.models()}.items():
        model.load_state_dict({k[len(name) + 1 :]: v for k, v in state.items() if k.startswith(name + ".")})


def record_bytes(record: ArrayRecord) -> int:
    return sum(len(a.data) for a in record.values())


def statistics_bytes(adv: Adversaries, cfg: AAEConfig, n_users: int) -> int:
    """Bytes of discriminant statistics a client sends in an adversaries round (``lda`` heads;
    float64 count, per-user sums and a d x d scatter per head; 0 for other heads)."""
    models = [adv.models()[n] for n in cfg.identity_regularisers]
    dims = [m.head[1].in_features for m in models if m.kind == "lda"]
    return sum(8 * (n_users + n_users * d + d * d) for d in dims)


def client_round(
    msg: Message, data: TensorBatches, cfg: AAEConfig, width: int, n_users: int, n_activities: int, seed: int
) -> Message:
    """One client's round: train what the phase says on its own windows, return all networks.

    Every random draw of the round (batch order; ActReg's dropout, which draws from the global
    generator) comes from a seed of (run seed, round, user), so a run reproduces whichever
    simulation worker plays which client in which order."""
    config = msg.content["config"]
    phase, rnd = str(config["phase"]), int(config["server-round"])
    round_seed = derived_seed(seed, rnd, int(data.tensors[2][0]))
    with torch_seeded(round_seed):
        aae, adv = build_networks(cfg, width, n_users, n_activities)
        load_record(msg.content["arrays"], aae, adv)
        gen = torch.Generator().manual_seed(round_seed)
        extra: dict[str, ArrayRecord] = {}
        if phase == "adversaries":
            encoded = encode_all(aae, data.tensors[0])  # once, for the trained regularisers and the statistics
            metrics = train_adversaries(aae, adv, data, cfg, gen, encoded)
            if cfg.identity_heads == "lda":
                stats = discriminant_statistics(adv, encoded, data.tensors[2], cfg, n_users)
                extra[STATS_RECORD] = ArrayRecord({k: Array(v) for k, v in stats.items()})
        elif phase == "anonymiser":
            adv.freeze(True)
            opt = torch.optim.Adam(aae.parameters(), lr=cfg.lr)
            loss_fn = aae_loss(adv, cfg.for_round((rnd + 1) // 2))
            for _ in range(cfg.aae_epochs):
                batches = shuffled_batches(data, cfg.batch_size, gen)
                metrics = {"aae_loss": train_epoch(aae, batches, opt, None, loss_fn=loss_fn)}
        else:
            raise ValueError(f"federated AAE: unknown phase {phase!r}")
    content = {"arrays": to_record(aae, adv), "metrics": MetricRecord({**metrics, NUM_EXAMPLES: len(data)}), **extra}
    return Message(RecordDict(content), reply_to=msg)


#: The class-embedding arrays of the identity heads (WindowCNN's last layer) in :func:`to_record`'s names.
EMBEDDINGS = {name: f"{name}.head.4.class_embeddings" for name in ("enc_reg", "dec_reg")}
#: The discriminant heads' class layer (weight, bias) in :func:`to_record`'s names.
DISCRIMINANTS = {name: (f"{name}.head.1.weight", f"{name}.head.1.bias") for name in ("enc_reg", "dec_reg")}


def identity_strategy(cfg: AAEConfig, n_users: int):
    """FedAvg alternating the phases; with ``server_momentum`` or ``server_lr`` set the anonymiser
    rounds end in a server step with momentum (:class:`strategies.phase_momentum.PhaseMomentum`);
    with ``identity_heads=fedaws`` the identity heads' user embeddings are aggregated by FedAwS
    (:class:`strategies.fedaws.FedAwS`), with ``lda`` the heads are fitted from the devices'
    statistics (:class:`strategies.fedlda.FederatedLDA`)."""
    strategy = AlternatingFedAvg(
        PHASES, fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n_users, min_available_nodes=n_users
    )
    if cfg.server_momentum or cfg.server_lr != 1.0:
        strategy = PhaseMomentum(strategy, cfg.server_lr, cfg.server_momentum, phase="anonymiser")
    names = cfg.identity_regularisers
    if cfg.identity_heads == "fedaws":
        return FedAwS(strategy, [EMBEDDINGS[n] for n in names], margin=cfg.spreadout_margin, lr=cfg.spreadout_lr)
    if cfg.identity_heads == "lda":
        return FederatedLDA(strategy, {n: DISCRIMINANTS[n] for n in names}, shrinkage=cfg.lda_shrinkage)
    return strategy


@torch.no_grad()
def identity_head_accuracy(
    record: ArrayRecord, held_out: tuple[np.ndarray, np.ndarray], cfg: AAEConfig, n_activities: int
) -> dict[str, float]:
    """Accuracy (%) of the aggregated identity heads on held-out windows of the training users (their
    identity among them), each head on what it sees: EncReg the AAE's latents, DecReg its outputs."""
    x, users = held_out
    aae, adv = build_networks(cfg, x.shape[2], int(users.max()) + 1, n_activities)
    load_record(record, aae, adv)
    z, out = encode_all(aae, torch.as_tensor(np.asarray(x, np.float32)))
    seen = {"enc_reg": z, "dec_reg": out}
    return {
        f"{n}_heldout_acc": 100 * float((predict(adv.models()[n], seen[n]) == users).mean())
        for n in cfg.identity_regularisers
    }


def run_federated_aae(
    client_data: list[tuple[np.ndarray, np.ndarray]],
    n_activities: int,
    cfg: AAEConfig,
    seed: int = 0,
    progress: bool = True,
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Autoencoder, list[dict]]:
    """Train the anonymiser with FedAvg, client k holding ``client_data[k]`` = (windows, activities).

    Returns the final AAE and a history row per Flower round (phase, seconds, client metrics,
    bytes each client receives and sends). With ``held_out`` = (windows, client index of their user)
    every adversaries round also measures the aggregated identity heads on those windows
    (:func:`identity_head_accuracy`; the experiment holds them, no client sends them).
    """
    n_users, width = len(client_data), client_data[0][0].shape[2]
    torch.manual_seed(seed)
    aae, adv = build_networks(cfg, width, n_users, n_activities)
    initial = to_record(aae, adv)
    per_message = record_bytes(initial)
    datasets = [
        TensorBatches.from_numpy(np.asarray(x, np.float32), np.asarray(a, np.int64), np.full(len(a), k, np.int64))
        for k, (x, a) in enumerate(client_data)
    ]
    client = ClientApp()

    @client.train()
    def _train(msg: Message, context: Context) -> Message:
        data = datasets[int(context.node_config["partition-id"])]
        return client_round(msg, data, cfg, width, n_users, n_activities, seed)

    strategy = identity_strategy(cfg, n_users)

    def measure(rnd: int, record: ArrayRecord) -> dict:
        if held_out is None or strategy.phase(rnd) != "adversaries":
            return {}
        return identity_head_accuracy(record, held_out, cfg, n_activities)

    stats_bytes = statistics_bytes(adv, cfg, n_users)

    def row(rnd: int, metrics: dict) -> dict:
        out = {"phase": strategy.phase(rnd)}
        out.update({k: float(v) for k, v in metrics.items() if k != NUM_EXAMPLES})
        out["bytes_down_per_client"] = out["bytes_up_per_client"] = per_message
        if out["phase"] == "adversaries":
            out["bytes_up_per_client"] += stats_bytes
        return out

    def line(r: dict) -> str:
        shown = " ".join(f"{k}={v:.3f}" for k, v in r.items() if k.endswith(("_acc", "_loss")) and v == v)
        return f"[federated aae] round {r['round']}/{2 * cfg.rounds} {r['phase']}: {shown} ({r['seconds']:.1f}s)"

    final, history = run_fedavg_study(
        "federated AAE", client, strategy, initial, 2 * cfg.rounds, n_users, row=row,
        progress_line=line if progress else None, measure=measure,
    )  # fmt: skip
    load_record(final, aae, adv)
    return aae, history
