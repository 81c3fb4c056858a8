"""Server side of federated MetaMF: a round of per-client messages in four stages.

Flower's strategies send every client the same model; MetaMF's server instead *generates* each
sampled client's private parameters from that client's collaborative vector, so every message is
different and a round has four exchanges (see :mod:`fedmood.studies.metamf.protocol` for the maths):
``collaborative`` -> ``gradients`` -> ``memory-share`` -> ``step``. The strategy also counts the
array payload bytes each client receives and sends.
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedmood.studies.metamf import protocol as fed
from fedmood.studies.metamf.model import MetaMF
from fedmood.studies.metamf.optim import CombinedOptimizer, clip_factor
from strategies.strict import check_replies


def _payload(content: RecordDict) -> int:
    return sum(len(a.data) for rec in content.array_records.values() for a in rec.values())


class MetaGeneratorStrategy:
    """Federated MetaMF rounds driven over a Flower ``Grid``."""

    def __init__(
        self,
        model: MetaMF,
        optimizers: list[torch.optim.Optimizer],
        clip_norm: float,
        weight_decay: float,
        clients_per_round: int | None = None,
        timeout: float = 600.0,
        seed: int = 0,
    ) -> None:
        self.model, self.clip_norm, self.weight_decay = model, clip_norm, weight_decay
        self.optimizer = CombinedOptimizer(optimizers)  # clipped here, jointly with the devices' shares
        self.clients_per_round, self.timeout, self.rng = clients_per_round, timeout, random.Random(seed)

    def _exchange(self, grid: Grid, rnd: int, stage: str, per_node: dict[int, RecordDict], sizes: dict) -> dict:
        msgs = []
        for node, content in per_node.items():
            content["config"] = ConfigRecord({**dict(content.get("config", {})), "stage": stage, "server-round": rnd})
            sizes["down"][node] += _payload(content)
            msgs.append(Message(content, dst_node_id=node, message_type="query"))
        replies = check_replies(stage, rnd, len(msgs), grid.send_and_receive(msgs, timeout=self.timeout))
        out = {}
        for r in replies:
            sizes["up"][r.metadata.src_node_id] += _payload(r.content)
            out[r.metadata.src_node_id] = r.content
        return out

    @torch.no_grad()
    def _phi_message(self, c: torch.Tensor, items: torch.Tensor) -> RecordDict:
        """Φ_u generated from ``c`` for ``items``, as a message's content."""
        phi = fed.generate(self.model, c, items)
        layers = {f"{p}{i}": t for i, (w, b) in enumerate(phi.layers) for p, t in (("w", w), ("b", b))}
        return RecordDict(
            {
                "arrays": fed.to_arrays(**layers, item_ids=phi.item_ids, item_embeddings=phi.item_embeddings),
                "config": ConfigRecord({"layers": len(phi.layers)}),
            }
        )

    def evaluate(self, grid: Grid, node_ids: list[int], rnd: int, split: str) -> dict:
        """Device-side evaluation on ``split`` (valid/test) of every node: MAE, MSE and each user's sums.

        Two exchanges: M down / c_u and the split's item ids up; Φ_u for those items down / the
        summed absolute and squared errors and the row count up. Nothing is stepped.
        """
        sizes = {"down": dict.fromkeys(node_ids, 0), "up": dict.fromkeys(node_ids, 0)}
        memory = self.model.memory.detach().clone()
        split_cfg = ConfigRecord({"split": split})
        first = self._exchange(
            grid,
            rnd,
            "collaborative",
            {n: RecordDict({"arrays": fed.to_arrays(memory=memory), "config": split_cfg}) for n in node_ids},
            sizes,
        )
        phis = {}
        for n in node_ids:
            a = first[n]["arrays"]
            phis[n] = self._phi_message(fed.tensor(a, "c"), fed.tensor(a, "items"))
            phis[n]["config"] = ConfigRecord({**dict(phis[n]["config"]), "split": split})
        replies = self._exchange(grid, rnd, "evaluate", phis, sizes)
        per_user = {
            int(r["metrics"]["user"]): (
                float(r["metrics"]["abs-sum"]),
                float(r["metrics"]["sq-sum"]),
                int(r["metrics"]["rows"]),
            )
            for r in replies.values()
        }
        rows = sum(v[2] for v in per_user.values())
        return {
            "mae": sum(v[0] for v in per_user.values()) / max(rows, 1),
            "mse": sum(v[1] for v in per_user.values()) / max(rows, 1),
            "rows": rows,
            "per_user": per_user,
            "bytes_down_per_client": float(np.mean(list(sizes["down"].values()))),
            "bytes_up_per_client": float(np.mean(list(sizes["up"].values()))),
        }

    def round(self, grid: Grid, node_ids: list[int], rnd: int) -> dict[str, float]:
        """One round; returns its training MSE, seconds and mean bytes down/up per client."""
        t0 = time.perf_counter()
        m = self.clients_per_round or len(node_ids)
        nodes = sorted(self.rng.sample(sorted(node_ids), m))
        sizes = {"down": dict.fromkeys(nodes, 0), "up": dict.fromkeys(nodes, 0)}
        memory = self.model.memory.detach().clone()
        first = self._exchange(
            grid, rnd, "collaborative", {n: RecordDict({"arrays": fed.to_arrays(memory=memory)}) for n in nodes}, sizes
        )
        c = {n: fed.tensor(first[n]["arrays"], "c") for n in nodes}
        items = {n: fed.tensor(first[n]["arrays"], "items") for n in nodes}
        total_rows = int(sum(first[n]["metrics"]["rows"] for n in nodes))
        phis = {n: self._phi_message(c[n], items[n]) for n in nodes}
        second = self._exchange(grid, rnd, "gradients", phis, sizes)
        self.optimizer.zero_grad()
        grad_c = {}
        for n in nodes:
            a = second[n]["arrays"]
            grads = [fed.tensor(a, k) for k in a]
            grad_c[n] = fed.server_backward(self.model, c[n], items[n], grads, max(total_rows, 1))
        fed.lazy_l2_items(self.model, torch.unique(torch.cat(list(items.values()))), self.weight_decay)
        third = self._exchange(
            grid,
            rnd,
            "memory-share",
            {n: RecordDict({"arrays": fed.to_arrays(grad_c=grad_c[n])}) for n in nodes},
            sizes,
        )
        self.model.memory.grad = sum(fed.tensor(third[n]["arrays"], "share") for n in nodes)
        device_sq = [float(third[n]["metrics"]["grad-e-sq"]) for n in nodes]
        scale = clip_factor([self.optimizer.squared_grad_norm(), *device_sq], self.clip_norm)
        self.optimizer.scale_grads(scale)
        self.optimizer.step()
        self._exchange(
            grid, rnd, "step", {n: RecordDict({"config": ConfigRecord({"scale": scale})}) for n in nodes}, sizes
        )
        sse = sum(float(second[n]["metrics"]["sse"]) for n in nodes)
        return {
            "round": rnd,
            "clients": m,
            "train_mse": sse / max(total_rows, 1),
            "clip_scale": scale,
            "seconds": time.perf_counter() - t0,
            "bytes_down_per_client": float(np.mean(list(sizes["down"].values()))),
            "bytes_up_per_client": float(np.mean(list(sizes["up"].values()))),
        }
