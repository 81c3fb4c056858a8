"""The MetaMF training step with fixed shapes, replayed as one CUDA graph on a GPU.

A step on a batch of 64 ratings launches a few hundred tiny kernels; on a GPU the host's launch
overhead, not the arithmetic, sets the pace (6 ms a step measured on an H100 host, slower than the
CPU). :class:`StaticStep` computes the same step as the sparse path of :func:`fedmood.studies.metamf.train.fit`
(MSE + lazy L2 on the batch's distinct item rows, joint gradient-norm clipping, Adam on the dense
parameters, SparseAdam on the touched item rows) with no data-dependent shapes, so that it can be
captured once and replayed:

* the batch's item rows are gathered into fixed (batch x width) leaves, whose gradients arrive per
  batch position; ``E @ g`` with the equality matrix ``E[a, b] = [items[a] == items[b]]`` sums
  them per distinct item (the coalesced sparse gradient, repeated at every position of that item);
* every sum over distinct items is a sum over positions divided by the item's count in the batch;
* SparseAdam's update of the touched rows is gathered, computed and scattered back (positions of
  the same item write identical values);
* the last, short batch is padded with copies of its first row at weight 0 (its item is already in
  the batch, so the touched rows do not change).

The optimiser state stays in the :class:`~fedmood.studies.metamf.optim.CombinedOptimizer` (Adam + SparseAdam),
so checkpoints are the same whichever path trained. On the CPU the same computation runs eagerly
(tested equal to the sparse path).
"""

from __future__ import annotations

import torch

from fedmood.studies.metamf.model import MetaMF
from fedmood.studies.metamf.optim import CombinedOptimizer
from fedmood.training import Batches

#: Eager steps before capture (they warm up cuBLAS and create the optimiser state; each is a real step).
WARMUP_STEPS = 3


class StaticStep:
    """Callable ``step(batch) -> batch MSE (0-d tensor)`` for :func:`fedmood.training.train_epoch`."""

    def __init__(
        self,
        model: MetaMF,
        opt: CombinedOptimizer,
        weight_decay: float,
        clip_norm: float | None,
        batch_size: int,
        graph: bool | None = None,
    ) -> None:
        self.model, self.wd, self.clip_norm, self.size = model, weight_decay, clip_norm, batch_size
        self.dense_opt, self.row_opt = opt.optimizers
        self.row_params = [model.item_rows.weight, model.item_rows_bias.weight]
        device = self.row_params[0].device
        self.graph_mode = device.type == "cuda" if graph is None else graph
        group = self.row_opt.param_groups[0]
        (self.beta1, self.beta2), self.eps, self.lr = group["betas"], group["eps"], float(group["lr"])
        for p in self.row_params:
            state = self.row_opt.state[p]
            if not state:  # as SparseAdam creates it on its first step
                state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        self.steps = int(self.row_opt.state[self.row_params[0]]["step"])
        self.step_t = torch.tensor(float(self.steps), device=device)
        self.users = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.items = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.ratings = torch.zeros(batch_size, device=device)
        self.weights = torch.zeros(batch_size, device=device)
        self.rows_in_batch = 0  # the weights mark the first rows_in_batch rows
        self.leaves = [torch.zeros(batch_size, p.shape[1], device=device, requires_grad=True) for p in self.row_params]
        self.dense = [p for g in self.dense_opt.param_groups for p in g["params"]]
        self.graph: torch.cuda.CUDAGraph | None = None
        self.loss: torch.Tensor | None = None
        self.eager_steps = 0

    def __call__(self, batch: Batches) -> torch.Tensor:
        n = len(batch)
        if n == 0 or n > self.size:
            raise ValueError(f"StaticStep takes batches of 1..{self.size} rows, got {n}")
        for buf, src in ((self.users, batch.users), (self.items, batch.items), (self.ratings, batch.ratings)):
            buf[:n].copy_(src)
            if n < self.size:
                buf[n:].copy_(src[:1].expand(self.size - n))
        if n != self.rows_in_batch:
            self.weights.fill_(0.0)
            self.weights[:n] = 1.0
            self.rows_in_batch = n
        if not self.graph_mode:
            loss = self._step()
        elif self.graph is not None:
            self.graph.replay()
            loss = self.loss
        elif self.eager_steps < WARMUP_STEPS:  # on a side stream, as CUDA-graph capture requires
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                loss = self._step()
            torch.cuda.current_stream().wait_stream(side)
            self.eager_steps += 1
        else:  # capture records this batch's step without running it; the replay runs it
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.loss = self._step()
            self.graph.replay()
            loss = self.loss
        self.steps += 1
        for p in self.row_params:  # SparseAdam's own counter, for checkpoints and the sparse path
            self.row_opt.state[p]["step"] = self.steps
        return loss  # a graph's output buffer: read before the next step (train_epoch does)

    def _step(self) -> torch.Tensor:
        """One step on the buffers: forward, backward, joint clipping, Adam + row-wise SparseAdam."""
        items, w = self.items, self.weights
        self.dense_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            for leaf, p in zip(self.leaves, self.row_params, strict=True):
                leaf.grad = None
                leaf.copy_(p.index_select(0, items))
        pred = self.model(self.users, items, rows=(self.leaves[0], self.leaves[1]))
        mse = (w * (pred - self.ratings).pow(2)).sum() / w.sum()
        same = (items[:, None] == items[None, :]).to(pred.dtype)  # E[a, b] = items[a] == items[b]
        count = same.sum(1)
        penalty = sum((leaf.pow(2).sum(1) / count).sum() for leaf in self.leaves)
        (mse + 0.5 * self.wd * penalty).backward()
        with torch.no_grad():
            row_grads = [same @ leaf.grad for leaf in self.leaves]  # summed per distinct item
            dense_grads = [p.grad for p in self.dense if p.grad is not None]
            if self.clip_norm is not None:
                squares = [(g.pow(2).sum(1) / count).sum() for g in row_grads]
                squares += [n.pow(2) for n in torch._foreach_norm(dense_grads)]
                factor = (self.clip_norm / (torch.stack(squares).sum().sqrt() + 1e-6)).clamp(max=1.0)
                torch._foreach_mul_(dense_grads, factor)
                row_grads = [g * factor for g in row_grads]
            self.dense_opt.step()
            self._row_adam(row_grads)
        return mse.detach()

    def _row_adam(self, row_grads: list[torch.Tensor]) -> None:
        """SparseAdam's update of the batch's rows (see :func:`torch.optim._functional.sparse_adam`)."""
        b1, b2, items = self.beta1, self.beta2, self.items
        self.step_t += 1
        step_size = self.lr * torch.sqrt(1 - b2**self.step_t) / (1 - b1**self.step_t)
        for p, g in zip(self.row_params, row_grads, strict=True):
            state = self.row_opt.state[p]
            m_old = state["exp_avg"].index_select(0, items)
            v_old = state["exp_avg_sq"].index_select(0, items)
            m = m_old + (g - m_old) * (1 - b1)
            v = v_old + (g * g - v_old) * (1 - b2)
            state["exp_avg"].index_copy_(0, items, m)
            state["exp_avg_sq"].index_copy_(0, items, v)
            p.index_copy_(0, items, p.index_select(0, items) - step_size * m / (v.sqrt() + self.eps))


def uses_static_step(model: MetaMF) -> bool:
    """Whether :func:`fedmood.studies.metamf.train.fit` trains ``model`` with :class:`StaticStep` (on a GPU)."""
    return next(model.parameters()).device.type == "cuda"
