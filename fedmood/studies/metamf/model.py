"""MetaMF (Lin et al., SIGIR 2020) and NoMetaMF (Müllner et al., ECIR 2021), gather-based.

For user u with embedding ``e_u`` (32): the collaborative vector ``c_u = e_u M`` (memory M,
32 x 128) feeds a meta recommender that *generates* u's private model:

* the rating-prediction MLP 32 -> 8 -> ReLU -> 1: for each layer, ``h = ReLU(Linear(128, 512)(c_u))``,
  a weight head ``Linear(512, in*out)`` and a bias head ``Linear(512, out)``;
* u's item-embedding table by the low-rank ("rise-dimensional") trick:
  ``h = ReLU(Linear(128, 512)(c_u))``, ``A_u = Linear(512, items*8)(h)`` viewed (items x 8),
  ``B_u = Linear(512, 8*32)(h)`` viewed (8 x 32), table ``A_u B_u`` (items x 32).

The reference code materialises ``A_u`` for every item and every row of the batch
(batch x items x 32) and picks one row by a one-hot product. Here only the 8 rows of
``Linear(512, items*8)`` that an item needs are gathered: the same numbers
(:meth:`MetaMF.forward_full_table` is the naive version, kept for tests), with
O(batch x 8 x 512) instead of O(batch x items x 512) work. NoMetaMF freezes the layers that
generate the rating MLP's weights and biases at their random initialisation.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

#: Parameter-name prefixes of the layers NoMetaMF freezes (the rating-model generators).
RATING_GENERATOR_PREFIXES = ("rating_hidden.", "rating_weight.", "rating_bias.")


class MetaMF(nn.Module):
    """MetaMF; ``meta=False`` gives NoMetaMF (see module doc)."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        user_dim: int = 32,
        mem_dim: int = 128,
        hidden: int = 512,
        item_dim: int = 32,
        item_rank: int = 8,
        layers: tuple[int, ...] = (8,),
        meta: bool = True,
        sparse: bool = True,
    ) -> None:
        super().__init__()
        self.n_items, self.item_dim, self.item_rank = n_items, item_dim, item_rank
        self.user_embedding = nn.Embedding(n_users, user_dim)
        self.memory = nn.Parameter(torch.empty(user_dim, mem_dim))
        sizes = [item_dim, *layers, 1]
        self.shapes = list(itertools.pairwise(sizes))
        self.rating_hidden = nn.ModuleList(nn.Linear(mem_dim, hidden) for _ in self.shapes)
        self.rating_weight = nn.ModuleList(nn.Linear(hidden, i * o) for i, o in self.shapes)
        self.rating_bias = nn.ModuleList(nn.Linear(hidden, o) for _, o in self.shapes)
        self.item_hidden = nn.Linear(mem_dim, hidden)
        # Linear(hidden, items * rank) generating A_u, stored item by item: row i holds the rank x hidden
        # weights (and rank biases) that produce item i's rows of A_u, so a batch gathers its items'
        # rows only, and with ``sparse=True`` gets sparse gradients for them.
        self.item_rows = nn.Embedding(n_items, item_rank * hidden, sparse=sparse)
        self.item_rows_bias = nn.Embedding(n_items, item_rank, sparse=sparse)
        self.item_basis = nn.Linear(hidden, item_rank * item_dim)  # B_u
        self.reset_parameters()
        self.meta = meta
        if not meta:
            for name, p in self.named_parameters():
                if name.startswith(RATING_GENERATOR_PREFIXES):
                    p.requires_grad_(False)

    def reset_parameters(self) -> None:
        """Xavier-normal weights, zero biases (as the reference code)."""
        for name, p in self.named_parameters():
            if name.startswith("item_rows."):  # Xavier of the Linear(hidden, items * rank) it stands for
                fan_in, fan_out = p.shape[1] // self.item_rank, p.shape[0] * self.item_rank
                nn.init.normal_(p, std=(2.0 / (fan_in + fan_out)) ** 0.5)
            elif name.endswith("bias") or name.startswith("item_rows_bias."):
                nn.init.zeros_(p)
            else:
                nn.init.xavier_normal_(p)

    def collaborative(self, users: torch.Tensor) -> torch.Tensor:
        """``c_u = e_u M`` for a batch of users."""
        # index_select rather than the embedding op: the same rows and gradient, and its backward
        # (an index_add) has no host sync, so the step can be captured as a CUDA graph.
        return self.user_embedding.weight.index_select(0, users) @ self.memory

    def rating_model(self, c: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Generated ``(weight (B, in, out), bias (B, out))`` of each rating-MLP layer."""
        out = []
        for (i, o), hid, w, b in zip(
            self.shapes, self.rating_hidden, self.rating_weight, self.rating_bias, strict=True
        ):
            h = F.relu(hid(c))
            out.append((w(h).view(-1, i, o), b(h)))
        return out

    def item_embeddings(
        self, c: torch.Tensor, items: torch.Tensor, rows: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Row ``items[b]`` of user b's generated item table, without building the table.

        ``rows`` optionally gives the batch's gathered ``(item_rows, item_rows_bias)`` rows (as
        :mod:`fedmood.studies.metamf.static_step` does, to get their gradients densely, per batch position).
        """
        h = F.relu(self.item_hidden(c))  # (B, hidden)
        k = self.item_rank
        weight, bias = rows if rows is not None else (self.item_rows(items), self.item_rows_bias(items))
        rows_w = weight.view(-1, k, h.shape[1])  # (B, k, hidden): only the rows needed
        a = torch.einsum("bkh,bh->bk", rows_w, h) + bias
        basis = self.item_basis(h).view(-1, k, self.item_dim)  # (B, k, item_dim)
        return torch.bmm(a.unsqueeze(1), basis).squeeze(1)

    def predict(self, x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Run the generated rating MLP on item embeddings ``x`` (B, item_dim)."""
        for n, (w, b) in enumerate(layers):
            x = torch.bmm(x.unsqueeze(1), w).squeeze(1) + b
            if n < len(layers) - 1:
                x = F.relu(x)
        return x.squeeze(-1)

    def forward(
        self, users: torch.Tensor, items: torch.Tensor, rows: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        c = self.collaborative(users)
        return self.predict(self.item_embeddings(c, items, rows), self.rating_model(c))

    def forward_full_table(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The reference computation: every user's full item table, then a one-hot pick (tests only)."""
        c = self.collaborative(users)
        h = F.relu(self.item_hidden(c))
        weight = self.item_rows.weight.view(self.n_items * self.item_rank, -1)
        rows = F.linear(h, weight, self.item_rows_bias.weight.view(-1))
        table = torch.bmm(
            rows.view(-1, self.n_items, self.item_rank),
            self.item_basis(h).view(-1, self.item_rank, self.item_dim),
        )  # (B, items, item_dim)
        one_hot = F.one_hot(items, self.n_items).to(table.dtype)
        x = (table * one_hot.unsqueeze(-1)).sum(1)
        return self.predict(x, self.rating_model(c))
