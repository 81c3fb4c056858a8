"""The personal topic-model study on NIPS, with the issue's summary line last.

    python benchmarks/topics.py [--size quick|full] [--data-path ../shared/data/nips]

Runs ``experiments/topics.py``'s study (``conf/topics_size/``; full by default: the paper's protocol,
10 seeds) into ``results/topics/benchmark-<size>`` and prints

    topics: k=.. local_ll_it10=.. personal_ll_it10=.. gain_it10_pct=.. iters_saved_pct=..
    heldout_ppl_local=.. heldout_ppl_personal=.. fed_vs_pooled_ll=.. sec_per_iter_300docs=..   (one line)
"""

from __future__ import annotations

import argparse
import sys

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fedmood.paths import CONF_DIR, PROJECT_ROOT
from fedmood.studies.topics.corpus import DEFAULT_NIPS
from fedmood.studies.topics.experiment import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="full", choices=["quick", "full"])
    ap.add_argument("--data-path", default=str(DEFAULT_NIPS))
    args = ap.parse_args()
    if not (DEFAULT_NIPS.is_dir() or args.data_path != str(DEFAULT_NIPS)):
        sys.exit(f"NIPS corpus not found at {args.data_path} (see ../shared/data/README.md); pass --data-path")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("topics", overrides=[f"topics_size={args.size}"]), resolve=True)
    cfg["data_path"] = args.data_path
    s = run(cfg, PROJECT_ROOT / "results" / "topics" / f"benchmark-{args.size}")
    print(f"topics study: {s['seconds']:.0f} s, peak RSS {s['peak_rss_mb']:.0f} MB, K={s['k']}, {s['seeds']} seeds")
    if "wiki_gain_pct_mean" in s:
        print(
            f"Wikipedia (Fig. 6; paper 3.22..4.53 %, average 3.85 %, 37.8 % iterations saved): K={s['wiki_k']}, "
            f"{s['wiki_categories']} categories, gain at iteration 10 {s['wiki_gain_pct_min']:.2f}..."
            f"{s['wiki_gain_pct_max']:.2f} %, average {s['wiki_gain_pct_mean']:.2f} %, "
            f"iterations saved {s['wiki_iters_saved_pct']:.1f} % (in the {s['wiki_reached_runs']} of "
            f"{s['wiki_runs']} runs where the personal model reaches the local one's final likelihood)"
        )
    print(
        f"topics: k={s['k']} local_ll_it10={s['local_ll_it10']:.3f} personal_ll_it10={s['personal_ll_it10']:.3f} "
        f"gain_it10_pct={s['gain_it10_pct']:.2f} iters_saved_pct={s['iters_saved_pct']:.1f} "
        f"heldout_ppl_local={s['heldout_ppl_local']:.0f} heldout_ppl_personal={s['heldout_ppl_personal']:.0f} "
        f"fed_vs_pooled_ll={s['fed_vs_pooled_ll']:.3f} sec_per_iter_300docs={s['sec_per_iter_300docs']:.3f}"
    )


if __name__ == "__main__":
    main()
