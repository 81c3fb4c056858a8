"""Public reference diaries: activity items that cost no privacy.

Federated k-modes builds the activity items from the users' own fragments, so its count tables are
personal data: under SecAgg+ they travel as a secure sum, but under differential privacy the
centres would be a release that ε does not cover. A DP run therefore takes its items from public
data instead, as a deployment would from the published UK Time Use Survey diaries: here a generated
cohort coded the same way (UKTUS activity codes, 10-minute slots), seeded with :data:`PUBLIC_SEED`,
never with the run's seed, and clustered by the server itself with the centralised k-modes.
Nothing about any user enters these centres.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from fedmood.studies.mood.clustering import centres_from_clients, kmodes_centralised
from fedmood.studies.mood.data.fragments import N_CODES, load_all_fragments
from fedmood.studies.mood.data.generator import GeneratorConfig, ensure_generated

PUBLIC_SEED = 20_141_015  # the reference cohort's own seed (UKTUS 2014-15 fieldwork), not a run's
PUBLIC_COHORT = GeneratorConfig(n_users=50, n_days=20, seed=PUBLIC_SEED)


@lru_cache(maxsize=4)
def public_centres(k: int, max_iter: int, cache_dir: str) -> np.ndarray:
    """``k`` activity items (encoded centres) clustered from the public reference cohort."""
    folder = ensure_generated(PUBLIC_COHORT, cache_dir)
    fragments = [f.encoded() for f in load_all_fragments(folder)]
    init = centres_from_clients(fragments, k, N_CODES, PUBLIC_SEED)
    _, centres = kmodes_centralised(np.concatenate(fragments), init, max_iter=max_iter, seed=PUBLIC_SEED)
    return centres
