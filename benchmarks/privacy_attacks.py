"""What an honest-but-curious server learns under each privacy mechanism, measured; the audits; MetaMF.

    python benchmarks/privacy_attacks.py [--out results/privacy_attacks/benchmark] [--metamf-users 30]

Runs the federated mood recommender (default data: 50 users x 20 days, 50 rounds) under each
mechanism with the server's view recorded, attacks it (``fedmood.threat_study.attacks``), audits every DP
mechanism in one run (``fedmood.threat_study.auditing``), then attacks federated MetaMF on the first
users of ``ml`` (``../shared/data/metamf``) with and without the devices' rating-level defence. Each
run's results folder lands under ``--out``; all attack rows in ``--out/attacks.csv``. Last line:

    attacks: none_auc=<a> secagg_auc=<b> secagg_sampled_auc=<c> central_dp_server_auc=<d> \\
      distributed_dp_eps1_auc=<e> dpsgd_eps1_auc=<f> replay_auc=<g> audit_eps_lower=<h> \\
      accountant_eps=<i> metamf_exact_share=<j> metamf_defended_rating_mae=<k>      (one line)

(AUCs are the server's within-item AUCs; "sampled" runs take 10 of the 50 clients per round;
``replay_auc`` is an observer regenerating central DP's noise from the config, after the fix;
the audit figures are distributed DP's at ε = 1.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from fedmood.studies.mood.run_config import compose_config
from fedmood.threat_study import experiment as threat_experiment

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "metamf"
SAMPLED = "federation.clients_per_round=10"
DEFENCE = {"enabled": True, "clip": 0.1, "noise_multiplier": 4.0}  # conf/metamf_federated.yaml's, switched on
RUNS = {  # name: (privacy group, overrides)
    "none": ("none", []),
    "secagg": ("secagg", []),
    "secagg_sampled": ("secagg", [SAMPLED]),
    "central_dp": ("central_dp", ["privacy.target_epsilon=1"]),
    "distributed_dp_eps1": ("distributed_dp", ["privacy.target_epsilon=1", SAMPLED]),
    "dpsgd_eps1": ("dpsgd", ["privacy.target_epsilon=1"]),
    "replay_insecure": (
        "central_dp_secagg",
        ["privacy.target_epsilon=1", SAMPLED, "privacy.insecure_replayable_noise=true", "audit.enabled=false"],
    ),
    "replay": ("central_dp_secagg", ["privacy.target_epsilon=1", SAMPLED]),
}


def _row(table: pd.DataFrame, observer: str, attack: str | None = None) -> pd.Series:
    rows = table[(table["observer"] == observer) & ((table["attack"] == attack) if attack else True)]
    return rows.iloc[0]


def metamf_attacks(users: int, rounds: int) -> dict:
    """Federated MetaMF on the first ``users`` of ml: attacked without and with the defence."""
    from fedmood.studies.metamf.data import first_users, load_metamf_dataset
    from fedmood.threat_study.run import attacked_metamf

    data = first_users(load_metamf_dataset(DATA_ROOT, "ml"), users)
    plain = attacked_metamf(data, rounds)
    defended = attacked_metamf(data, rounds, DEFENCE)
    for name, r in (("undefended", plain), ("defended", defended)):
        print(
            f"metamf {name}: ratings={r['ratings']} exact_share={r['exact_share']:.4f} "
            f"rating_mae={r['rating_mae']:.4f} "
            f"rated_precision={r['rated_precision']:.3f} rated_recall={r['rated_recall']:.3f} "
            f"embedding_error={r['embedding_error']:.2e} test_mae={r['test_mae']:.4f} epsilon={r['epsilon']:.3g}",
            flush=True,
        )
    return {"exact": plain["exact_share"], "defended_mae": defended["rating_mae"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=f"results/privacy_attacks/benchmark-{time.strftime('%Y-%m-%d_%H-%M-%S')}")
    ap.add_argument("--metamf-users", type=int, default=30)
    ap.add_argument("--metamf-rounds", type=int, default=50)
    args = ap.parse_args()
    out = Path(args.out)
    tables = {}
    t0 = time.perf_counter()
    for name, (mechanism, overrides) in RUNS.items():
        cfg = compose_config([f"privacy={mechanism}", *overrides], config_name="privacy_attacks")
        t = time.perf_counter()
        table = threat_experiment.run(cfg, out / name)
        tables[name] = table
        server = _row(table, "server")
        print(
            f"[{name}] {time.perf_counter() - t:.0f}s: server {server['attack']} auc_within={server['auc_within']:.3f} "
            f"[{server['auc_within_low']:.3f}, {server['auc_within_high']:.3f}] pooled={server['auc_pooled']:.3f} "
            f"(prior {server['auc_prior']:.3f}) tpr@5%fpr={server['tpr_at_5fpr']:.3f} epsilon={server['epsilon']:.3g} "
            f"audit_lower={server['epsilon_lower']:.3g} val_mse={server['val_mse']:.4f}",
            flush=True,
        )
    all_rows = pd.concat([t.assign(run=name) for name, t in tables.items()], ignore_index=True)
    all_rows.to_csv(out / "attacks.csv", index=False)
    before = _row(tables["replay_insecure"], "release-observer", "replay")["auc_within"]
    print(f"replay attacker on noise drawn from the config seed (before the fix): auc_within={before:.3f}")
    if DATA_ROOT.is_dir():
        metamf = metamf_attacks(args.metamf_users, args.metamf_rounds)
    else:
        print(f"MetaMF data not found at {DATA_ROOT} (see ../shared/data/README.md): MetaMF attack skipped")
        metamf = {"exact": float("nan"), "defended_mae": float("nan")}
    dist = tables["distributed_dp_eps1"].iloc[0]
    print(f"total {time.perf_counter() - t0:.0f}s; tables in {out}")
    print(
        "attacks: "
        f"none_auc={_row(tables['none'], 'server')['auc_within']:.3f} "
        f"secagg_auc={_row(tables['secagg'], 'server')['auc_within']:.3f} "
        f"secagg_sampled_auc={_row(tables['secagg_sampled'], 'server')['auc_within']:.3f} "
        f"central_dp_server_auc={_row(tables['central_dp'], 'server')['auc_within']:.3f} "
        f"distributed_dp_eps1_auc={_row(tables['distributed_dp_eps1'], 'server')['auc_within']:.3f} "
        f"dpsgd_eps1_auc={_row(tables['dpsgd_eps1'], 'server')['auc_within']:.3f} "
        f"replay_auc={_row(tables['replay'], 'release-observer', 'replay')['auc_within']:.3f} "
        f"audit_eps_lower={dist['epsilon_lower']:.3f} accountant_eps={dist['accountant_epsilon']:.3f} "
        f"metamf_exact_share={metamf['exact']:.4f} metamf_defended_rating_mae={metamf['defended_mae']:.4f}"
    )


if __name__ == "__main__":
    main()
