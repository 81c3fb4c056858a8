"""Training the anonymiser: rounds of {train the three adversaries, freeze them, train the AAE}.

The loss of the AAE (Malekzadeh et al., IoTDI 2019, eq. 8):

    L = β_d · MSE(x', x) + β_i · (L_i(EncReg(z)) + L_i(DecReg(x'))) + β_a · CE(ActReg(x'), activity)

with ``z`` the latent, ``x'`` the output and ``L_i`` the identity loss of eq. 7
(:func:`fedmood.studies.aae.losses.identity_loss`). EncReg and DecReg are identity classifiers on the
latent and on the output, ActReg an activity classifier on the output; each round first trains
them on the current AAE's latents/outputs (they keep their weights across rounds), then freezes
them and trains the AAE. REP (anonymise the latent only) is the same without the DecReg term.
``MSE`` is the squared error summed over a window's samples and channels, averaged over windows
(``reconstruction="window_sum"``, the default) or averaged over every element (``"mean"``). With
z-scored windows and the paper's β_d = 0.01 the per-element mean is ~250 times weaker than the
identity and activity terms and the output collapses to a code that keeps little but the activity
and generalises worse to unseen users; the per-window sum keeps the signal (both measured in the
README's Table 2 section).
The loops are the package's one trainer (:func:`fedmood.training.train_epoch`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch.nn import functional as F

from fedmood.classification import CosineHead, class_statistics, cross_entropy, positive_cosine_loss, predict
from fedmood.studies.aae.losses import identity_loss
from fedmood.studies.aae.model import Autoencoder, WindowCNN
from fedmood.training import TensorBatches, shuffled_batches, train_epoch


@dataclass(frozen=True)
class AAEConfig:
    """The anonymiser's schedule and loss weights (Hydra ``aae`` group)."""

    rounds: int = 8
    reg_epochs: int = 1
    aae_epochs: int = 1
    lr: float = 1e-3
    batch_size: int = 128
    beta_d: float = 0.01
    beta_i: float = 1.0
    beta_a: float = 2.0
    reconstruction: str = "window_sum"  # or "mean": per-element MSE
    dec_reg: bool = True  # False: REP, the latent alone is anonymised
    hidden: int = 64
    reg_hidden: int = 32
    arch: str = "small"  # the anonymiser's layout: "small" or "paper" (fedmood.studies.aae.model.Autoencoder)
    l2: float = 0.0  # L2 penalty on the anonymiser's hidden kernels (the paper: 1e-3)
    pretrain_epochs: int = 0  # epochs of a plain autoencoder (reconstruction only) before round 1
    identity_warmup: int = 0  # the first rounds' AAE phases train without the identity terms (β_i = 0)
    identity_heads: str = "softmax"  # federated, one user per device: "fedaws" or "lda" (strategies/)
    spreadout_margin: float = 1.0  # FedAwS: the server pushes apart user embeddings closer than this
    spreadout_lr: float = 0.5  # FedAwS: the size of the server's spreadout step
    lda_shrinkage: float = 1e-3  # lda heads: the pooled covariance shrunk this far towards a multiple of I
    server_momentum: float = 0.0  # federated: FedAvgM momentum of the anonymiser rounds (strategies/phase_momentum.py)
    server_lr: float = 1.0  # federated: the server's step on the anonymiser rounds' averaged update

    def __post_init__(self) -> None:
        if self.reconstruction not in ("window_sum", "mean"):
            raise ValueError(f"aae.reconstruction: {self.reconstruction!r} is not 'window_sum' or 'mean'")
        if self.arch not in ("small", "paper"):
            raise ValueError(f"arch: {self.arch!r} is not 'small' or 'paper'")
        if self.identity_heads not in IDENTITY_HEADS:
            raise ValueError(f"identity_heads: {self.identity_heads!r} is not one of {', '.join(IDENTITY_HEADS)}")
        if not 0 <= self.identity_warmup < self.rounds:
            raise ValueError(f"identity_warmup: {self.identity_warmup} is not in [0, rounds={self.rounds})")
        if not 0.0 <= self.lda_shrinkage <= 1.0:
            raise ValueError(f"lda_shrinkage: {self.lda_shrinkage} is not in [0, 1]")
        if not 0.0 <= self.server_momentum < 1.0:
            raise ValueError(f"server_momentum: {self.server_momentum} is not in [0, 1)")
        if self.server_lr <= 0:
            raise ValueError(f"server_lr: {self.server_lr} is not positive")

    @property
    def identity_regularisers(self) -> list[str]:
        """The identity regularisers in use: EncReg, and DecReg unless this is REP (``dec_reg=False``)."""
        return ["enc_reg", "dec_reg"] if self.dec_reg else ["enc_reg"]

    def for_round(self, rnd: int) -> AAEConfig:
        """The settings of round ``rnd``'s AAE phase (1-based): β_i = 0 during ``identity_warmup``."""
        return replace(self, beta_i=0.0) if rnd <= self.identity_warmup else self

    @property
    def head(self) -> str:
        """The identity regularisers' last layer (:class:`WindowCNN`'s ``head``)."""
        return {"softmax": "linear", "fedaws": "cosine", "lda": "lda"}[self.identity_heads]


#: How the identity regularisers end: softmax (trained), fedaws (class embeddings, strategies/fedaws.py),
#: lda (a linear discriminant on frozen features, fitted from the devices' statistics: strategies/fedlda.py).
IDENTITY_HEADS = ("softmax", "fedaws", "lda")


@dataclass
class Adversaries:
    """EncReg, DecReg, ActReg and their optimisers (kept across rounds)."""

    enc_reg: WindowCNN
    dec_reg: WindowCNN
    act_reg: WindowCNN
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)

    @classmethod
    def create(cls, width: int, latent_width: int, n_users: int, n_activities: int, cfg: AAEConfig) -> Adversaries:
        adv = cls(
            WindowCNN(2, latent_width, n_users, cfg.reg_hidden, head=cfg.head),
            WindowCNN(2, width, n_users, cfg.reg_hidden, head=cfg.head),
            WindowCNN(2, width, n_activities, cfg.reg_hidden),
        )
        adv.optimizers = {k: torch.optim.Adam(m.parameters(), lr=cfg.lr) for k, m in adv.models().items()}
        return adv

    def models(self) -> dict[str, WindowCNN]:
        return {"enc_reg": self.enc_reg, "dec_reg": self.dec_reg, "act_reg": self.act_reg}

    def freeze(self, frozen: bool) -> None:
        for m in self.models().values():
            m.requires_grad_(not frozen)
            m.train(not frozen)
            if m.kind == "lda":  # the discriminant's trunk is never trained, its class layer is fitted
                m.features.requires_grad_(False)


def reconstruction_error(out: torch.Tensor, x: torch.Tensor, cfg: AAEConfig) -> torch.Tensor:
    """The squared error of ``out`` against ``x``: summed over a window and averaged over windows
    (``cfg.reconstruction="window_sum"``) or averaged over every element (``"mean"``)."""
    mse = F.mse_loss(out, x)
    return mse * x[0].numel() if cfg.reconstruction == "window_sum" else mse


def aae_loss(adv: Adversaries, cfg: AAEConfig) -> Callable[[Autoencoder, TensorBatches], torch.Tensor]:
    """The AAE's loss on a batch of (windows, activity, identity), with the adversaries frozen."""

    def loss(aae: Autoencoder, batch: TensorBatches) -> torch.Tensor:
        x, activity, identity = batch.tensors
        z, out = aae(x)
        private = identity_loss(adv.enc_reg(z), identity)
        if cfg.dec_reg:
            private = private + identity_loss(adv.dec_reg(out), identity)
        mse = reconstruction_error(out, x, cfg)
        total = cfg.beta_d * mse + cfg.beta_i * private + cfg.beta_a * F.cross_entropy(adv.act_reg(out), activity)
        return total + cfg.l2 * aae.kernel_l2() if cfg.l2 else total

    return loss


def reconstruction_loss(cfg: AAEConfig) -> Callable[[Autoencoder, TensorBatches], torch.Tensor]:
    """A plain autoencoder's loss (the pretraining of the initial latent codes): the reconstruction
    term of :func:`aae_loss` alone (same ``reconstruction`` and ``l2``)."""

    def loss(aae: Autoencoder, batch: TensorBatches) -> torch.Tensor:
        x = batch.tensors[0]
        mse = reconstruction_error(aae(x)[1], x, cfg)
        return mse + cfg.l2 * aae.kernel_l2() if cfg.l2 else mse

    return loss


@torch.no_grad()
def encode_all(aae: Autoencoder, x: torch.Tensor, batch_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and outputs of every window (evaluation mode)."""
    aae.eval()
    parts = [aae(x[s : s + batch_size]) for s in range(0, len(x), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def train_adversaries(
    aae: Autoencoder,
    adv: Adversaries,
    data: TensorBatches,
    cfg: AAEConfig,
    gen: torch.Generator,
    encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Train EncReg/DecReg/ActReg for ``reg_epochs`` on the current AAE's latents and outputs; their accuracies.

    ``encoded``: the AAE's (latents, outputs) of ``data``, where the caller has them already
    (:func:`encode_all`). Regularisers with an ``"lda"`` head are not trained here: they are fitted
    from statistics (:func:`discriminant_statistics`)."""
    x, activity, identity = data.tensors
    z, out = encode_all(aae, x) if encoded is None else encoded
    adv.freeze(False)
    inputs = {"enc_reg": (z, identity), "dec_reg": (out, identity), "act_reg": (out, activity)}
    accuracy = {}
    for name in [*cfg.identity_regularisers, "act_reg"]:
        model = adv.models()[name]
        if model.kind == "lda":
            continue
        batches = TensorBatches(inputs[name])
        loss = _positive_loss if isinstance(model.head[-1], CosineHead) else cross_entropy
        for _ in range(cfg.reg_epochs):
            train_epoch(model, shuffled_batches(batches, cfg.batch_size, gen), adv.optimizers[name], None, loss_fn=loss)
        accuracy[f"{name}_acc"] = float((predict(model, inputs[name][0]) == inputs[name][1].numpy()).mean())
    return accuracy


@torch.no_grad()
def discriminant_statistics(
    adv: Adversaries, encoded: tuple[torch.Tensor, torch.Tensor], identity: torch.Tensor, cfg: AAEConfig, n_users: int
) -> dict[str, np.ndarray]:
    """For each identity regulariser with an ``"lda"`` head, the statistics of its features on the
    AAE's latents (EncReg) or outputs (DecReg) of windows of the users ``identity`` (``encoded``:
    :func:`encode_all`'s (latents, outputs)), per user: count, sum and scatter
    (:func:`fedmood.classification.class_statistics`), as ``{"<regulariser>.<statistic>": array}``."""
    seen = dict(zip(("enc_reg", "dec_reg"), encoded, strict=True))
    users = identity.numpy()
    stats: dict[str, np.ndarray] = {}
    for name in cfg.identity_regularisers:
        model = adv.models()[name]
        if model.kind != "lda":
            continue
        features = model.embed_all(seen[name]).double().numpy()
        for user in np.unique(users):
            rows = class_statistics(features[users == user], int(user), n_users)
            for part, value in rows.items():
                key = f"{name}.{part}"
                stats[key] = stats[key] + value if key in stats else value
    return stats


def _positive_loss(model: WindowCNN, batch: TensorBatches) -> torch.Tensor:
    """FedAwS's device loss for an identity head with class embeddings: its own user only."""
    x, y = batch.tensors[:2]
    return positive_cosine_loss(model(x), y, model.head[-1].scale)


def train_aae(
    x: np.ndarray,
    activity: np.ndarray,
    identity: np.ndarray,
    n_users: int,
    n_activities: int,
    cfg: AAEConfig,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Autoencoder, list[dict]]:
    """Train the anonymiser on z-scored windows with their activity and identity labels (0-based)."""
    if cfg.identity_heads != "softmax":
        raise ValueError(
            f"aae.identity_heads={cfg.identity_heads} is for the federated AAE (federated.identity_heads)"
        )
    torch.manual_seed(seed)
    aae = Autoencoder(x.shape[1], cfg.hidden, arch=cfg.arch)
    latent_width = aae.encoder(torch.zeros(1, *x.shape[1:])).shape[2]
    adv = Adversaries.create(x.shape[2], latent_width, n_users, n_activities, cfg)
    opt = torch.optim.Adam(aae.parameters(), lr=cfg.lr)
    data = TensorBatches.from_numpy(
        np.asarray(x, np.float32), np.asarray(activity, np.int64), np.asarray(identity, np.int64)
    )
    gen = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, cfg.pretrain_epochs + 1):
        t0 = time.perf_counter()
        mse = train_epoch(aae, shuffled_batches(data, cfg.batch_size, gen), opt, None, loss_fn=reconstruction_loss(cfg))
        history.append({"round": 0, "pretrain_epoch": epoch, "aae_loss": mse, "seconds": time.perf_counter() - t0})
        if progress:
            print(f"[aae] pretraining {epoch}/{cfg.pretrain_epochs} loss={mse:.4f} {history[-1]['seconds']:.1f}s")
    for rnd in range(1, cfg.rounds + 1):
        t0 = time.perf_counter()
        record: dict[str, float] = {"round": rnd, **train_adversaries(aae, adv, data, cfg, gen)}
        adv.freeze(True)
        for _ in range(cfg.aae_epochs):
            record["aae_loss"] = train_epoch(
                aae, shuffled_batches(data, cfg.batch_size, gen), opt, None, loss_fn=aae_loss(adv, cfg.for_round(rnd))
            )
        _, out = encode_all(aae, data.tensors[0])
        record["mse"] = float(F.mse_loss(out, data.tensors[0]))
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if progress:
            accs = " ".join(f"{k}={v:.3f}" for k, v in record.items() if k.endswith("_acc"))
            print(
                f"[aae] round {rnd}/{cfg.rounds} {accs} loss={record['aae_loss']:.4f} mse={record['mse']:.4f} "
                f"{record['seconds']:.1f}s",
                flush=True,
            )
    return aae, history
