"""Rating reconstruction from federated MetaMF's messages, and what the device-side defence leaves.

In federated MetaMF (:mod:`fedmood.studies.metamf.protocol`) the server generates each user's private
parameters Φ_u and receives ∂L/∂Φ_u. For an item ``j`` the user rated ``r``, the rating model maps
the item's embedding ``q_j`` to ``ŷ_j``, and the item-embedding rows of the gradient are
``g_j = 2 (ŷ_j - r) a_j`` with ``a_j = ∂ŷ/∂q_j``: the server, which generated Φ_u, computes ``ŷ_j``
and ``a_j`` itself and reads off ``r = ŷ_j - <g_j, a_j> / (2 |a_j|²)`` (:func:`reconstruct_ratings`).
The device also sends the ids of the items it rated (the collaborative stage, for training and for
evaluation), so the rated set is known, and ``c_u = e_u M`` with the server's own M gives ``e_u``
by least squares (M is 32 x 128 of full row rank).

:func:`attack_federated_metamf` scores these attacks on a recorded run
(:class:`~fedmood.threat_study.attacks.server_view.ServerView` with its exchanges kept): share of the
training ratings recovered to within 0.01 (each rating once, read in the latest round that could
read it), their mean absolute error, precision and recall of the rated set, and the relative
error of the recovered ``e_u`` (round 1, against the device's true starting embedding).
:func:`fedmood.studies.metamf.protocol.private_device_gradients` is the defence: each rating's gradient
clipped and Gaussian noise added on the device, with a rating-level ε.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from fedmood.threat_study.attacks.server_view import ServerView


def _predictions(layers: list[tuple[torch.Tensor, torch.Tensor]], items: torch.Tensor) -> torch.Tensor:
    x = items
    for n, (w, b) in enumerate(layers):
        x = x @ w + b
        if n < len(layers) - 1:
            x = torch.relu(x)
    return x.squeeze(-1)


def reconstruct_ratings(
    phi: dict[str, np.ndarray], grads: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(item ids, ratings, readable)`` read off one device's ∂L/∂Φ_u for the Φ_u the server sent it.

    An item whose ``a_j`` is zero (every hidden unit off for it this round) cannot be read: its guess
    is the model's own prediction ``ŷ_j`` and ``readable`` is False.
    """
    n_layers = sum(1 for k in phi if k.startswith("w"))
    as64 = lambda key: torch.as_tensor(phi[key], dtype=torch.float64)  # noqa: E731
    layers = [(as64(f"w{i}"), as64(f"b{i}")) for i in range(n_layers)]
    q = torch.as_tensor(phi["item_embeddings"], dtype=torch.float64).requires_grad_(True)
    y = _predictions(layers, q)
    (a,) = torch.autograd.grad(y.sum(), q)  # row j: ∂ŷ_j/∂q_j (ŷ_j depends on q_j only)
    g = torch.as_tensor(grads["item_embeddings"], dtype=torch.float64)
    norm2 = (a * a).sum(dim=1)
    readable = norm2 > 0
    rating = y.detach().clone()
    rating[readable] -= (g * a).sum(dim=1)[readable] / (2 * norm2[readable])
    return np.asarray(phi["item_ids"]).astype(np.int64), rating.numpy(), readable.numpy()


@dataclass
class MetaMFAttackResult:
    """How much of each device's data the server recovered (each training rating counted once)."""

    ratings: int
    exact_share: float
    rating_mae: float
    rated_precision: float
    rated_recall: float
    embedding_error: float

    def as_dict(self) -> dict:
        return asdict(self)


def _arrays(record) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in record.items()}


def attack_federated_metamf(
    view: ServerView,
    train: dict[int, dict[int, float]],
    rated: dict[int, set[int]],
    embeddings: dict[int, np.ndarray],
    scale: tuple[float, float] = (1.0, 5.0),
) -> MetaMFAttackResult:
    """Score the attacks on a recorded federated MetaMF run.

    ``train[user]`` maps the items of the user's revealed training ratings to the rating,
    ``rated[user]`` is every item the user rated (train, validation, test) and ``embeddings[user]``
    the device's starting e_u: the evaluator's truth. The attacker knows the rating ``scale`` (public)
    and clips its guesses to it.
    """
    guesses: dict[tuple[int, int], tuple[bool, float]] = {}  # (user, item) -> (read exactly once?, guess)
    seen: dict[int, set[int]] = {}
    emb_errors: list[float] = []
    for sent, replies in view.exchanges:
        by_node = {m.metadata.dst_node_id: m for m in sent}
        for reply in replies:
            if reply.has_error():
                continue
            node = reply.metadata.src_node_id
            user, msg = view.node_user[node], by_node[node]
            stage = msg.content["config"]["stage"]
            if stage == "collaborative":
                got = _arrays(reply.content["arrays"])
                seen.setdefault(user, set()).update(int(i) for i in got["items"])
                if int(msg.content["config"].get("server-round", 0)) == 1 and "split" not in msg.content["config"]:
                    memory = _arrays(msg.content["arrays"])["memory"].astype(np.float64)
                    e_hat = np.linalg.lstsq(memory.T, got["c"].astype(np.float64), rcond=None)[0]
                    true = embeddings[user]
                    emb_errors.append(float(np.linalg.norm(e_hat - true) / np.linalg.norm(true)))
            elif stage == "gradients":
                items, guess, readable = reconstruct_ratings(
                    _arrays(msg.content["arrays"]), _arrays(reply.content["arrays"])
                )
                for item, value, ok in zip(items, np.clip(guess, *scale), readable, strict=True):
                    key = (user, int(item))  # the latest round that could read it, else the latest guess
                    if ok or not guesses.get(key, (False, 0.0))[0]:
                        guesses[key] = (bool(ok), float(value))
    errors_arr = np.asarray([abs(g - train[u][i]) for (u, i), (_, g) in guesses.items()])
    hits = [len(seen.get(u, set()) & rated[u]) for u in rated]
    return MetaMFAttackResult(
        ratings=len(errors_arr),
        exact_share=float((errors_arr < 0.01).mean()) if len(errors_arr) else float("nan"),
        rating_mae=float(errors_arr.mean()) if len(errors_arr) else float("nan"),
        rated_precision=float(sum(hits) / max(sum(len(s) for s in seen.values()), 1)),
        rated_recall=float(sum(hits) / max(sum(len(r) for r in rated.values()), 1)),
        embedding_error=float(np.mean(emb_errors)) if emb_errors else float("nan"),
    )
