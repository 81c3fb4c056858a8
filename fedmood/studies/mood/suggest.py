"""Suggestions: the activity items with the highest predicted mood for one user.

Computed on the device, from the global item parameters and the user's own parameters; the gain
is the predicted mood minus the user's average mood over their own training rows.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from fedmood.studies.mood.data.activities import ACTIVITIES
from fedmood.studies.mood.model import EmbeddingDotBias


@torch.no_grad()
def top_items(model: EmbeddingDotBias, user: int, user_mean: float, n: int) -> list[tuple[int, float, float]]:
    """``[(item, predicted mood, gain over the user's mean), ...]``, best first."""
    n_items = model.item_factors.num_embeddings
    model.eval()
    pred = model(torch.full((n_items,), user, dtype=torch.long), torch.arange(n_items)).numpy()
    order = np.argsort(-pred, kind="stable")[:n]
    return [(int(i), float(pred[i]), float(pred[i] - user_mean)) for i in order]


def describe_centre(centre: np.ndarray | None, item: int) -> str:
    """Human-readable description of an activity item (its centre's activities per slot)."""
    if centre is None:
        return f"item {item}"
    counts = Counter(ACTIVITIES[int(v)].name for v in centre)
    return ", ".join(f"{name} x{c}" if c > 1 else name for name, c in counts.most_common())
