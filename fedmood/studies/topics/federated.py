"""The shared topic model learnt federatedly: one Flower client per user, documents never pooled.

Approximate distributed LDA (Newman et al., JMLR 2009) on Flower: every round the server sends the
global topic-word counts; each device takes the other devices' counts (global minus its own) as
fixed counts, runs ``local_iterations`` Gibbs sweeps over its own documents (its topic assignments
stay on the device, in its ``context.state``) and returns only its own topic-word counts; the
server adds them up exactly. The first round only draws every token's topic at random, so that
all devices sample against one shared table from round 2 on (sampling alone first gives each
device its own topic labels, which do not line up when added). The dictionary is public (given to
every device). With one device the result is plain collapsed Gibbs LDA on its documents.

Two ways to add the counts up, with the same result to the count:

* in the clear (:class:`strategies.count_sum.CountSum`): the server sees every device's counts;
* under Flower's SecAgg+ (``secure=True``): every round is one SecAgg+ round
  (:func:`strategies.secure_rounds.secure_sum`), so the server learns only the global table it
  sends back anyway; each device's counts travel masked, on SecAgg+'s grid
  (:func:`strategies.secagg.to_grid`), and a count too large for the grid fails the run by name.
"""

from __future__ import annotations

import time

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedmood.federated.grid import wait_for_nodes
from fedmood.federated.simulation import simulate
from fedmood.federated.study import NODE_TIMEOUT, run_fedavg_study
from fedmood.privacy.settings import SecAggSettings
from fedmood.seeding import derived_seed
from fedmood.studies.topics.gibbs import GibbsLDA, LDAConfig
from strategies.count_sum import CountSum
from strategies.secagg import to_grid
from strategies.secure_rounds import SecureRounds, secure_sum

COUNTS = "topic-word"
STATE = "topic-assignments"
#: SecAgg+ for counts: the grid's ±2**21 levels hold any count below about two million per device;
#: every device shares its secrets with all the others (a federation of a few to a few dozen users),
#: and half of the shares rebuild a dropped device's mask.
SECURE_COUNTS = SecAggSettings(
    enabled=True,
    num_shares=1.0,
    reconstruction_threshold=0.5,
    clipping_range=2.0**21,
    quantization_range=2**22,
    max_weight=1.0,
)


def device_step(
    docs: list[np.ndarray], context: Context, global_counts: np.ndarray, rnd: int, device: int, spec: dict
) -> np.ndarray:
    """One device's round: its topic-word counts after sampling against the other devices' counts.

    Round 1 (nothing kept in ``context.state`` yet) only draws random topics; later rounds resume
    the device's own topics and run ``spec['iterations']`` sweeps. The topics stay in the state.
    """
    config, v = spec["config"], spec["vocab_size"]
    rng = np.random.default_rng(derived_seed(spec["seed"], rnd, device))
    if STATE in context.state:  # sample against the other devices' counts, from its own last topics
        model = GibbsLDA(config, v).resume(docs, context.state[STATE]["z"].numpy())
        others = np.asarray(global_counts).astype(np.int64) - model.own_counts()
        model.resume(docs, model.ZS, fixed=others)
        for _ in range(spec["iterations"]):
            model.sweep(rng)
    else:  # round 1 only draws random topics: sampling before the devices share a table would
        model = GibbsLDA(config, v).start(docs, rng)  # give each device its own labels
    context.state[STATE] = ArrayRecord({"z": Array(model.ZS.astype(np.int64))})
    return model.own_counts().astype(np.int64)


class _SecureDevice(NumPyClient):
    """A device under SecAgg+: its counts on SecAgg+'s grid, sent at weight ``max_weight`` (= 1)."""

    def __init__(self, user_docs: list[list[np.ndarray]], context: Context, spec: dict) -> None:
        self.device = int(context.node_config["partition-id"])
        self.docs, self.device_context, self.spec = user_docs[self.device], context, spec

    def fit(self, parameters: list[np.ndarray], config: dict):
        counts = device_step(
            self.docs, self.device_context, parameters[0], int(config["server-round"]), self.device, self.spec
        )
        return [to_grid(counts, SECURE_COUNTS, f"device {self.device}'s topic-word counts")], 1, {}


def client_app(
    user_docs: list[list[np.ndarray]], config: LDAConfig, vocab_size: int, iterations: int, seed: int, secure: bool
) -> ClientApp:
    """The devices' ClientApp: device ``i`` holds ``user_docs[i]`` (its documents as word indices)."""
    spec = {"config": config, "vocab_size": vocab_size, "iterations": iterations, "seed": seed}
    if secure:
        return ClientApp(client_fn=lambda ctx: _SecureDevice(user_docs, ctx, spec).to_client(), mods=[secaggplus_mod])
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        user = int(context.node_config["partition-id"])
        rnd = int(msg.content["config"]["server-round"])
        counts = device_step(user_docs[user], context, msg.content["arrays"][COUNTS].numpy(), rnd, user, spec)
        reply = {
            "arrays": ArrayRecord({COUNTS: Array(counts)}),
            "metrics": MetricRecord({"tokens": float(sum(len(d) for d in user_docs[user])), "num-examples": 1.0}),
        }
        return Message(RecordDict(reply), reply_to=msg)

    return app


def _secure_server(n: int, rounds: int, start: np.ndarray, out: list) -> ServerApp:
    """The ServerApp of the SecAgg+ path: one secure sum of every device's counts per round."""
    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        wait_for_nodes(grid, n, NODE_TIMEOUT)
        counts = start
        with SecureRounds(grid, context, SECURE_COUNTS, n) as secure:
            for rnd in range(1, rounds + 1):
                t0 = time.perf_counter()
                counts = secure_sum(
                    secure, {"stage": "topic-word"}, SECURE_COUNTS, n, n, True, rnd, NODE_TIMEOUT, sent=[counts]
                )[0]
                row = {"round": rnd, "clients": n, "seconds": time.perf_counter() - t0, "tokens": float(counts.sum())}
                out.append((counts, row))
                print(f"[federated lda] SecAgg+ round {rnd}/{rounds} ({row['seconds']:.1f}s)", flush=True)

    return server


def train_federated_shared(
    user_docs: list[list[np.ndarray]],
    config: LDAConfig,
    vocab_size: int,
    rounds: int,
    local_iterations: int,
    seed: int,
    secure: bool = False,
) -> tuple[np.ndarray, list[dict]]:
    """M_S from ``len(user_docs)`` devices over ``rounds`` rounds; ``(topic-word counts, history)``.

    ``secure``: the counts are added up under SecAgg+ (at least 3 devices), with the same result.
    """
    n = len(user_docs)
    zeros = np.zeros((config.n_topics, vocab_size), dtype=np.int64)
    app = client_app(user_docs, config, vocab_size, local_iterations, seed, secure)
    if secure:
        SECURE_COUNTS.check(n)
        done: list[tuple[np.ndarray, dict]] = []
        simulate(_secure_server(n, rounds, zeros, done), app, n)
        if len(done) != rounds:
            raise RuntimeError(f"federated LDA under SecAgg+ ended after {len(done)} of {rounds} rounds")
        return done[-1][0], [row for _, row in done]
    strategy = CountSum(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n, min_available_nodes=n)
    arrays, history = run_fedavg_study(
        "federated LDA", app, strategy, ArrayRecord({COUNTS: Array(zeros)}), rounds, n,
        row=lambda rnd, m: {"tokens": m.get("tokens", 0.0)},
        progress_line=lambda r: f"[federated lda] round {r['round']}/{rounds} ({r['seconds']:.1f}s)",
    )  # fmt: skip
    return arrays[COUNTS].numpy(), history
