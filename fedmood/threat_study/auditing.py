"""Empirical privacy audits in one training run (Steinke, Nasr & Jagielski, NeurIPS 2023).

An accountant's ε is a proof about the mechanism as written; an audit checks the mechanism as
run. ``m`` canaries are each included with probability ½ by a fair coin; the mechanism runs once;
the auditor scores every canary from what the mechanism released and, with the numbers of guesses
fixed in advance, guesses "included" for its ``k_pos`` highest scores and "excluded" for its
``k_neg`` lowest. If the mechanism is (ε, δ)-DP, ``v`` correct guesses out of ``r`` are unlikely
beyond a Binomial(r, e^ε/(1+e^ε)) tail plus a δ term (the paper's Theorem 5.2; the p-value of its
Appendix D algorithm, :func:`p_value`); :func:`epsilon_lower_bound` is the largest ε the observed
``v`` rejects at confidence 1 - ``alpha``. A correct implementation can never show a lower bound
above its accountant's ε (except with probability ``alpha``); a broken one (noise switched off)
does.

Three audits of fedmood's mechanisms, each with the canaries a worst-case adversary would choose:

* :func:`audit_dpsgd`: record-level canaries on one device, through the device's own
  :func:`~fedmood.studies.mood.device.local_round` (Opacus, secure noise, Poisson sampling, its
  accountant): canary record ``i`` rates its own item, so it alone moves that item's bias;
* :func:`audit_central_dp`: canary clients through the server's DP wrapper (Flower's fixed
  clipping with fedmood's noise), each pushing one coordinate of its own by the clipping norm;
* :func:`audit_distributed_dp`: the same canary clients through each device's noise-share mod and
  SecAgg+'s exact integer sum.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from fedmood.keys import DPSGD_DELTA, DPSGD_EPSILON, NUM_EXAMPLES


def p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """P[at least ``v`` of ``r`` guesses correct] under (ε, δ)-DP, ``m`` canaries (Steinke et al., App. D)."""
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v} r={r} m={m}")
    q = 1.0 / (1.0 + math.exp(-eps))  # the accuracy of ε-DP randomised response
    tail = float(stats.binom.sf(v - 1, r, q))
    worst, below = 0.0, 0.0
    for i in range(1, v + 1):  # the δ term: the worst slope of the tail just below v
        below += float(stats.binom.pmf(v - i, r, q))
        worst = max(worst, below / i)
    return min(1.0, tail + worst * delta * 2 * m)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, alpha: float = 0.05) -> float:
    """The largest ε for which ``v`` correct guesses out of ``r`` have p-value below ``alpha`` (0 if none)."""
    if p_value(m, r, v, 0.0, delta) >= alpha:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < alpha:
        lo, hi = hi, 2 * hi
        if hi > 1e3:
            return math.inf
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p_value(m, r, v, mid, delta) < alpha else (lo, mid)
    return lo


@dataclass
class AuditResult:
    """One audit: the canaries, the guesses, the lower bound and the accountant's ε at the same δ."""

    mechanism: str
    canaries: int
    guesses: int
    correct: int
    delta: float
    epsilon_lower: float
    accountant_epsilon: float
    noise_off: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def guess(scores: np.ndarray, included: np.ndarray, k_pos: int, k_neg: int) -> tuple[int, int]:
    """``(guesses, correct)``: "in" for the ``k_pos`` highest scores, "out" for the ``k_neg`` lowest."""
    order = np.argsort(scores, kind="stable")
    out_guess, in_guess = order[:k_neg], order[len(order) - k_pos :]
    correct = int(included[in_guess].sum() + (~included[out_guess]).sum())
    return k_pos + k_neg, correct


def coin_flips(m: int, rng: np.random.Generator) -> np.ndarray:
    """Which of ``m`` canaries are included: independent fair coins."""
    return rng.random(m) < 0.5


def _result(name, scores, included, k_pos, k_neg, delta, accountant_eps, noise_off) -> AuditResult:
    r, v = guess(scores, included, k_pos, k_neg)
    bound = epsilon_lower_bound(len(included), r, v, delta)
    return AuditResult(name, len(included), r, v, delta, bound, accountant_eps, noise_off)


class _NoNoise:
    """A "broken" noise source for the failing audits: every draw is zero."""

    secure, name = False, "NO-NOISE"

    def normal(self, shape, std):
        return np.zeros(shape)

    def torch_normal(self, reference, std):
        import torch

        return torch.zeros_like(reference)

    def discrete_gaussian(self, shape, sigma):
        return np.zeros(shape, dtype=np.int64)

    def bernoulli_mask(self, n, p):
        from fedmood.privacy.noise import SecureNoise

        return SecureNoise().bernoulli_mask(n, p)


NO_NOISE = _NoNoise()


def audit_dpsgd(
    cfg: dict,
    user: int,
    centres: np.ndarray | None,
    n_items: int,
    canaries: int = 1000,
    k: int = 100,
    seed: int = 0,
    noise_off: bool = False,
    progress: Callable[[str], None] | None = None,
) -> AuditResult:
    """Record-level audit of DP-SGD on device ``user`` over the run's rounds.

    Canary ``i`` is one training record (rating +1) on its own new item ``n_items + i``, included by
    a coin flip; the device trains its rounds with the canaries that made it in; the auditor scores
    a canary by how far its item's bias rose (it sees the returned item parameters), guesses ``k``
    in and ``k`` out. The accountant's ε is the device's own (its DP-SGD report) at the run's δ.
    """
    from fedmood.studies.mood.data.local import LocalData, load_local_data
    from fedmood.studies.mood.device import local_round, node_context
    from fedmood.studies.mood.model import GLOBAL_KEYS
    from fedmood.studies.mood.server_app import initial_item_arrays

    rng = np.random.default_rng(seed)
    included = coin_flips(canaries, rng)
    base = load_local_data(cfg["data"], user, int(cfg["seed"])).rows(centres)
    new_items = n_items + np.flatnonzero(included)
    items = np.concatenate([base.items, new_items]).astype(np.int64)
    ratings = np.concatenate([base.ratings, np.ones(len(new_items), dtype=np.float32)])
    train = np.concatenate([base.train, len(base.ratings) + np.arange(len(new_items))])
    data = LocalData(user, ratings, train, base.val, items=items)
    model = {k: v.numpy() for k, v in initial_item_arrays(cfg, n_items + canaries).items()}
    start = model[GLOBAL_KEYS[1]].ravel().copy()
    context = node_context(user, 1)
    rounds = int(cfg["federation"]["num_rounds"])
    for rnd in range(1, rounds + 1):
        noise = NO_NOISE if noise_off else None
        update = local_round(cfg, context, model, {"server-round": rnd}, data=data, noise=noise)
        model = update.items  # one device: FedAvg of its update is the update
        if progress is not None:
            progress(f"dpsgd audit round {rnd}/{rounds}")
    scores = model[GLOBAL_KEYS[1]].ravel()[n_items:] - start[n_items:]
    delta = float(update.metrics[DPSGD_DELTA])
    return _result("dpsgd", scores, included, k, k, delta, float(update.metrics[DPSGD_EPSILON]), noise_off)


def _canary_ledger(cfg: dict, m: int, n_users: int | None = None):
    """The run's privacy settings and a ledger for a federation of ``m`` canary clients (dimension ``m``),
    sampled at the run's rate (its clients per round out of its ``n_users``)."""
    from fedmood.privacy.central import PrivacyLedger
    from fedmood.privacy.settings import PrivacySettings

    settings = PrivacySettings.from_cfg(cfg)
    fed = cfg["federation"]
    rate = int(fed["clients_per_round"]) / int(n_users) if fed.get("clients_per_round") and n_users else 1.0
    per_round = max(3, min(m, round(rate * m)))
    fed = {**fed, "clients_per_round": per_round}
    ledger = PrivacyLedger(settings, m, per_round, int(fed["num_rounds"]), fed, m)
    return settings, ledger


def _sampled(m: int, per_round: int) -> np.ndarray:
    """This round's sampled canaries, drawn from OS entropy as a DP run draws its clients."""
    from fedmood.privacy.noise import SecureNoise

    keys = SecureNoise().uniform(m)
    return np.sort(np.argsort(keys)[:per_round])


def audit_central_dp(
    cfg: dict, canaries: int = 500, k: int = 50, seed: int = 0, noise_off: bool = False, n_users: int | None = None
) -> AuditResult:
    """User-level audit of central DP through the server's aggregation (fixed clipping, fedmood's noise).

    Canary client ``i`` is in the federation by a coin flip; when sampled it sends an update of
    length 10 clipping norms along its own coordinate (the wrapper clips it to the norm), or
    (practically) no change when it is out: the neighbouring run in which the user's update is
    removed, as the accountant assumes. The auditor scores a canary by how far its coordinate moved over the
    run's rounds. The accountant is the run's own ledger for a federation of the canaries.
    """


    settings, ledger = _canary_ledger(cfg, canaries, n_users)
    if not settings.central_dp.enabled or settings.central_dp.adaptive:
        raise ValueError("audit_central_dp needs central DP with fixed clipping")
    included = coin_flips(canaries, np.random.default_rng(seed))
    clip = settings.central_dp.clipping_norm
    z = 0.0 if noise_off else ledger.noise_multiplier
    model = np.zeros(canaries, dtype=np.float64)
    for rnd in range(1, ledger.num_rounds + 1):
        members = _sampled(canaries, ledger.per_round)
        # out: no change (1e-12: Flower's clipping divides by the update's norm and fails on exactly 0)
        pushes = {int(i): (10 * clip if included[i] else 1e-12) for i in members}
        if settings.central_dp.clipping == "server":  # the Message-API wrapper clips and noises
            model = _server_clipped_round(settings, z, model, pushes, rnd)
        else:  # SecAgg+ path: the devices' clipping mod, then the server's noise on the sum
            model = _client_clipped_round(settings, z, clip, model, pushes, rnd)
        ledger.released({}, len(members))
    return _result(settings.mechanism, model, included, k, k, ledger.delta, ledger.epsilon(), noise_off)


def _server_clipped_round(settings, z: float, model: np.ndarray, pushes: dict[int, float], rnd: int) -> np.ndarray:
    from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.serverapp.strategy import FedAvg

    from strategies.central_dp import wrap_central_dp

    wrapper = wrap_central_dp(FedAvg(), settings.central_dp, z, len(pushes), settings.noise)
    wrapper.current_arrays = ArrayRecord({"w": Array(model)})
    replies = []
    for i, push in pushes.items():
        sent = model.copy()
        sent[i] += push
        weight = MetricRecord({NUM_EXAMPLES: 1.0})
        content = RecordDict({"arrays": ArrayRecord({"w": Array(sent)}), "metrics": weight})
        replies.append(Message(content, reply_to=_instruction()))
    out, _ = wrapper.aggregate_train(rnd, replies)
    return out["w"].numpy().astype(np.float64)


def _client_clipped_round(
    settings, z: float, clip: float, model: np.ndarray, pushes: dict[int, float], rnd: int
) -> np.ndarray:
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.strategy import FedAvg as LegacyFedAvg

    from strategies.central_dp import ClientClippedSum

    strategy = ClientClippedSum(LegacyFedAvg(), z, clip, settings.noise)
    results = []
    for i, push in pushes.items():
        sent = model.copy()
        sent[i] += min(push, clip)  # what fixedclipping_mod leaves of the canary's update
        results.append((None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([sent]), 1, {})))
    params, _ = strategy.aggregate_fit(rnd, results, [])
    return parameters_to_ndarrays(params)[0].astype(np.float64)


def _instruction():
    """A train instruction built outside a run (public API only), to reply to."""
    import time

    from flwr.app import Message, Metadata, RecordDict

    md = Metadata(
        run_id=1,
        message_id="",
        src_node_id=0,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="",
        created_at=time.time(),
        ttl=3600,
        message_type="train",
    )
    return Message(RecordDict({}), metadata=md)


def audit_distributed_dp(
    cfg: dict, canaries: int = 500, k: int = 50, seed: int = 0, noise_off: bool = False, n_users: int | None = None
) -> AuditResult:
    """User-level audit of distributed DP through each device's noise-share mod and SecAgg+'s exact sum.

    The canaries are as in :func:`audit_central_dp`, already clipped (Flower's clipping mod runs
    before the share is added). Each sampled canary's reply goes through
    :func:`strategies.mods.distributed_dp.make_distributed_noise_mod` (its real code, its noise from
    OS entropy); the integer shares are summed exactly, as SecAgg+ does, and the server releases
    their average. The accountant is the run's ledger, stepped with each round's number of shares.
    """
    from flwr.app import Context, Message, RecordDict
    from flwr.common import Code, FitIns, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat

    from strategies.mods.distributed_dp import make_distributed_noise_mod

    settings, ledger = _canary_ledger(cfg, canaries, n_users)
    if not settings.distributed_dp.enabled:
        raise ValueError("audit_distributed_dp needs privacy=distributed_dp")
    included = coin_flips(canaries, np.random.default_rng(seed))
    clip, step = settings.distributed_dp.clipping_norm, settings.secagg.grid_step
    audit_cfg = {**cfg, "federation": {**cfg["federation"], "clients_per_round": ledger.per_round, "nodes": canaries}}
    mod = make_distributed_noise_mod(lambda _ctx: audit_cfg)
    model = np.zeros(canaries, dtype=np.float64)
    for rnd in range(1, ledger.num_rounds + 1):
        members = _sampled(canaries, ledger.per_round)
        instruction = _instruction()
        fit_ins = FitIns(ndarrays_to_parameters([model]), {"server-round": rnd})
        instruction.content = compat.fitins_to_recorddict(fit_ins, True)
        total = np.zeros(canaries, dtype=np.int64)
        for i in members:
            sent = model.copy()
            sent[i] += clip if included[i] else 0.0
            res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters([sent]), 1, {})
            reply = Message(compat.fitres_to_recorddict(res, True), reply_to=instruction)
            node = {"partition-id": int(i)}
            context = Context(run_id=1, node_id=int(i) + 1, node_config=node, state=RecordDict(), run_config={})
            shared = reply if noise_off else mod(instruction, context, lambda _m, _c, r=reply: r)
            values = parameters_to_ndarrays(compat.recorddict_to_fitres(shared.content, True).parameters)[0]
            total += np.rint(values / step).astype(np.int64)
        model = total * step / len(members)
        ledger.released({}, len(members))
    return _result("distributed_dp", model, included, k, k, ledger.delta, ledger.epsilon(), noise_off)
