"""One way to derive the seed of a random stream from the run's seed and the stream's coordinates.

Every study seeds its per-round, per-client and per-user streams with :func:`derived_seed`, so
two streams of one run never share a seed by accident and a run is reproduced from its seed alone.
The mood study keeps the bases it has always used (so that its published numbers reproduce); the
other studies use the defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: A prime larger than any coordinate's combined range: the run's seed moves every stream.
SEED_BASE = 1_000_003
#: A prime larger than the number of clients/users: (round, client) pairs give distinct seeds.
PART_BASE = 1_009


def derived_seed(seed: int, *parts: int, seed_base: int = SEED_BASE, part_base: int = PART_BASE) -> int:
    """``seed * seed_base + (parts in base part_base)``, e.g. ``seed * 1_000_003 + round * 1_009 + client``.

    Distinct coordinates give distinct seeds as long as each part but the first stays below
    ``part_base`` and the combined parts below ``seed_base``.
    """
    combined = 0
    for part in parts:
        combined = combined * part_base + int(part)
    return int(seed) * seed_base + combined


@contextmanager
def torch_seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global (CPU) generator seeded by ``seed``, and leave the caller's
    random state as it was: the block's draws (initialisation, dropout) reproduce wherever it runs."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
