"""The shared topic model learnt federatedly: one Flower client per user, documents never pooled.

Approximate distributed LDA (Newman et al., JMLR 2009) on Flower: every round the server sends the
global topic-word counts; each device takes the other devices' counts (global minus its own) as
fixed counts, runs ``local_iterations`` Gibbs sweeps over its own documents (its topic assignments
stay on the device, in its ``context.state``) and returns only its own topic-word counts; the
server adds them up exactly (:class:`strategies.count_sum.CountSum`). The first round only draws
every token's topic at random, so that all devices sample against one shared table from round 2
on (sampling alone first gives each device its own topic labels, which do not line up when added).
The dictionary is public (given to every device). With one device the result is plain collapsed
Gibbs LDA on its documents.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedmood.federated.study import run_fedavg_study
from fedmood.seeding import derived_seed
from fedmood.studies.topics.gibbs import GibbsLDA, LDAConfig
from strategies.count_sum import CountSum

COUNTS = "topic-word"
STATE = "topic-assignments"


def client_app(user_docs: list[list[np.ndarray]], config: LDAConfig, vocab_size: int, iterations: int, seed: int):
    """The devices' ClientApp: device ``i`` holds ``user_docs[i]`` (its documents as word indices)."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        user = int(context.node_config["partition-id"])
        docs = user_docs[user]
        rnd = int(msg.content["config"]["server-round"])
        rng = np.random.default_rng(derived_seed(seed, rnd, user))
        if STATE in context.state:  # sample against the other devices' counts, from its own last topics
            model = GibbsLDA(config, vocab_size).resume(docs, context.state[STATE]["z"].numpy())
            others = msg.content["arrays"][COUNTS].numpy().astype(np.int64) - model.own_counts()
            model.resume(docs, model.ZS, fixed=others)
            for _ in range(iterations):
                model.sweep(rng)
        else:  # round 1 only draws random topics: sampling before the devices share a table would
            model = GibbsLDA(config, vocab_size).start(docs, rng)  # give each device its own labels
        context.state[STATE] = ArrayRecord({"z": Array(model.ZS.astype(np.int64))})
        reply = {
            "arrays": ArrayRecord({COUNTS: Array(model.own_counts().astype(np.int64))}),
            "metrics": MetricRecord({"tokens": float(len(model.WS)), "num-examples": 1.0}),
        }
        return Message(RecordDict(reply), reply_to=msg)

    return app


def train_federated_shared(
    user_docs: list[list[np.ndarray]], config: LDAConfig, vocab_size: int, rounds: int, local_iterations: int, seed: int
) -> tuple[np.ndarray, list[dict]]:
    """M_S from ``len(user_docs)`` devices over ``rounds`` rounds; ``(topic-word counts, history)``."""
    n = len(user_docs)
    start = ArrayRecord({COUNTS: Array(np.zeros((config.n_topics, vocab_size), dtype=np.int64))})
    strategy = CountSum(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n, min_available_nodes=n)
    app = client_app(user_docs, config, vocab_size, local_iterations, seed)
    arrays, history = run_fedavg_study(
        "federated LDA", app, strategy, start, rounds, n,
        row=lambda rnd, m: {"tokens": m.get("tokens", 0.0)},
        progress_line=lambda r: f"[federated lda] round {r['round']}/{rounds} ({r['seconds']:.1f}s)",
    )  # fmt: skip
    return arrays[COUNTS].numpy(), history
