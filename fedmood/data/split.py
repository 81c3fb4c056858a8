"""The one data-splitting helper: a seeded per-user train/validation split.

Splitting per user keeps each user's validation rows on their own device in the federated run, and
the centralised baseline uses exactly the same rows (the union of the users' splits).
"""

from __future__ import annotations

import numpy as np


def split_indices(n: int, val_frac: float, seed: int, user: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of ``n`` rows, ``round(val_frac * n)`` of them for validation.

    Deterministic in ``(seed, user)``; a user with at least 2 rows keeps at least one of each.
    """
    if not 0.0 <= val_frac < 1.0:
        raise ValueError(f"val_frac must be in [0, 1), got {val_frac}")
    perm = np.random.default_rng([seed, user, 0x5EED]).permutation(n)
    n_val = round(val_frac * n)
    if n >= 2 and val_frac > 0:
        n_val = min(max(n_val, 1), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
