"""The device side of federated MetaMF: one user's revealed ratings and user embedding.

``query`` messages carry the round's stage (see :mod:`fedmood.studies.metamf.protocol`):
``collaborative`` (receive M, send c_u and the batch's item ids), ``gradients`` (receive Φ_u,
send ∂L/∂Φ_u and the summed squared error), ``memory-share`` (receive ∂L/∂c_u, send e_uᵀ ∂L/∂c_u
and ‖∂L/∂e_u‖²), ``step`` (receive the joint clip factor, step e_u with the device's own Adam);
for evaluation ``collaborative`` with ``split`` = valid/test, then ``evaluate`` (receive Φ_u for that
split's items, send the summed errors and the row count only).
The embedding and its Adam state live in ``context.state``; the ratings never leave the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedmood.privacy.noise import SecureNoise
from fedmood.seeding import derived_seed
from fedmood.studies.metamf import protocol as fed
from fedmood.studies.metamf.data import Ratings

STATE = "metamf-device"


def initial_embedding(user: int | None, n_users: int, user_dim: int, seed: int) -> torch.Tensor:
    """A device's starting e_u: Xavier-normal of the (users x dim) table, seeded by its user id."""
    gen = torch.Generator().manual_seed(derived_seed(seed, user) if user is not None else seed)
    std = math.sqrt(2.0 / (n_users + user_dim))
    return torch.randn(user_dim, generator=gen) * std


class Device:
    """A user's device: its rows, embedding and Adam state (restored from / saved to ``context.state``)."""

    def __init__(self, rows: Ratings, context: Context, user_dim: int, n_users: int, lr: float, wd: float, seed: int):
        self.rows, self.context = rows, context
        if STATE not in context.state:
            e = initial_embedding(int(rows.users[0]) if len(rows) else None, n_users, user_dim, seed)
            context.state[STATE] = fed.to_arrays(e=e, exp_avg=torch.zeros(user_dim), exp_avg_sq=torch.zeros(user_dim))
            context.state["metamf-step"] = ConfigRecord({"step": 0.0})
        rec = context.state[STATE]
        self.e = fed.tensor(rec, "e").clone().requires_grad_(True)
        self.opt = torch.optim.Adam([self.e], lr=lr, weight_decay=wd)
        step = float(context.state["metamf-step"]["step"])
        if step > 0:
            self.opt.state[self.e] = {
                "step": torch.tensor(step),
                "exp_avg": fed.tensor(rec, "exp_avg").clone(),
                "exp_avg_sq": fed.tensor(rec, "exp_avg_sq").clone(),
            }

    def save(self) -> None:
        st = self.opt.state.get(self.e, {})
        zeros = torch.zeros_like(self.e)
        self.context.state[STATE] = fed.to_arrays(
            e=self.e, exp_avg=st.get("exp_avg", zeros), exp_avg_sq=st.get("exp_avg_sq", zeros)
        )
        self.context.state["metamf-step"] = ConfigRecord({"step": float(st.get("step", torch.tensor(0.0)))})


def _phi(msg: Message) -> fed.PrivateParameters:
    a, n_layers = msg.content["arrays"], int(msg.content["config"]["layers"])
    return fed.PrivateParameters(
        [(fed.tensor(a, f"w{i}"), fed.tensor(a, f"b{i}")) for i in range(n_layers)],
        fed.tensor(a, "item_ids"),
        fed.tensor(a, "item_embeddings"),
    )


def handle(msg: Message, context: Context, cfg: dict, rows_of: Callable[[str], Ratings]) -> Message:
    """One stage of a federated MetaMF round on this device; ``rows_of(split)`` gives its rows."""
    t = cfg["training"]
    config = msg.content["config"]
    stage = config["stage"]
    split = str(config.get("split", "train"))
    if split not in ("train", "valid", "test"):
        raise ValueError(f"federated MetaMF: unknown split {split!r} in the {stage!r} message")
    rows = rows_of(split)
    train_rows = rows if split == "train" else rows_of("train")  # the embedding's seed: the user's id
    device = Device(
        train_rows, context, 32, int(cfg["n_users"]), float(t["lr"]), float(t["weight_decay"]), int(cfg["seed"])
    )
    items, ratings = torch.as_tensor(rows.items), torch.as_tensor(rows.ratings)
    if stage == "collaborative":
        memory = fed.tensor(msg.content["arrays"], "memory")
        context.state["metamf-memory"] = fed.to_arrays(memory=memory)
        out = RecordDict(
            {
                "arrays": fed.to_arrays(c=(device.e @ memory).detach(), items=torch.unique(items)),
                "metrics": MetricRecord({"rows": float(len(rows))}),
            }
        )
    elif stage == "gradients":
        phi = _phi(msg)
        defence = cfg.get("defence") or {}
        if defence.get("enabled"):  # rating-level DP on what leaves the device (see fed.private_device_gradients)
            clip, z = float(defence["clip"]), float(defence["noise_multiplier"])
            sse, grads = fed.private_device_gradients(phi, items, ratings, clip, z, SecureNoise())
        else:
            sse, grads = fed.device_gradients(phi, items, ratings)
        names = [f"{p}{i}" for i in range(len(phi.layers)) for p in ("w", "b")] + ["item_embeddings"]
        out = RecordDict(
            {"arrays": fed.to_arrays(**dict(zip(names, grads, strict=True))), "metrics": MetricRecord({"sse": sse})}
        )
    elif stage == "memory-share":
        grad_c = fed.tensor(msg.content["arrays"], "grad_c")
        memory = fed.tensor(context.state["metamf-memory"], "memory")
        grad_e = grad_c @ memory.T
        context.state["metamf-grad"] = fed.to_arrays(grad_e=grad_e)
        out = RecordDict(
            {
                "arrays": fed.to_arrays(share=fed.memory_share(device.e.detach(), grad_c)),
                "metrics": MetricRecord({"grad-e-sq": float(grad_e.pow(2).sum())}),
            }
        )
    elif stage == "evaluate":
        abs_sum, sq_sum = fed.device_errors(_phi(msg), items, ratings) if len(rows) else (0.0, 0.0)
        metrics = {"abs-sum": abs_sum, "sq-sum": sq_sum, "rows": float(len(rows))}
        out = RecordDict({"metrics": MetricRecord({**metrics, "user": float(context.node_config["partition-id"])})})
    elif stage == "step":
        device.e.grad = fed.tensor(context.state["metamf-grad"], "grad_e") * float(config["scale"])
        device.opt.step()
        device.save()
        out = RecordDict({})
    else:
        raise ValueError(f"unknown federated MetaMF stage {stage!r}")
    return Message(out, reply_to=msg)


def build_client_app(
    cfg_fn: Callable[[Context], dict], rows_fn: Callable[[dict, int, str], Ratings], mods: list | None = None
) -> ClientApp:
    """The ClientApp; ``rows_fn(cfg, partition, split)`` gives the device's rows of a split (train: revealed).

    With ``cfg["defence"]["enabled"]`` the device clips and noises its ∂L/∂Φ_u (rating-level DP).
    """
    app = ClientApp(mods=mods or [])

    @app.query()
    def _query(msg: Message, context: Context) -> Message:
        cfg = cfg_fn(context)
        partition = int(context.node_config["partition-id"])
        return handle(msg, context, cfg, lambda split: rows_fn(cfg, partition, split))

    return app
