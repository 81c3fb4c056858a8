"""The topic-model study's core: corpus readers (and their errors), the Gibbs state, its likelihood."""

import gzip
import math

import numpy as np
import pytest

from fedmood.errors import InputError
from fedmood.studies.topics.corpus import (
    DEFAULT_NIPS,
    Documents,
    Vocabulary,
    read_corpus_file,
    read_nips,
    read_text_folder,
    tokenise,
)
from fedmood.studies.topics.gibbs import GibbsLDA, LDAConfig


def test_the_likelihood_is_the_hand_computed_one_on_a_tiny_corpus():
    model = GibbsLDA(LDAConfig(n_topics=2, alpha=0.5, eta=0.1), vocab_size=3)
    docs = [np.array([0, 1], np.intc), np.array([2], np.intc)]
    model.start(docs, np.random.default_rng(0))
    model.ZS[:] = [0, 1, 1]  # fix the topics, then rebuild the counts by hand
    model.nzw[:] = [[1, 0, 0], [0, 1, 1]]
    model.ndz[:] = [[1, 1], [0, 1]]
    model.nz[:] = [1, 2]
    phi = np.array([[1.1, 0.1, 0.1], [0.1, 1.1, 1.1]]) / np.array([[1.3], [2.3]])
    theta = np.array([[1.5, 1.5], [0.5, 1.5]]) / np.array([[3.0], [2.0]])
    tokens = [(0, 0), (0, 1), (1, 2)]  # (document, word)
    expected = np.mean([math.log2(theta[d] @ phi[:, w]) for d, w in tokens])
    assert model.token_log2_likelihood() == pytest.approx(expected)


def test_a_personal_model_starts_from_the_shared_models_topics():
    prior = np.array([[1000, 0, 5], [0, 1000, 5]])  # word 0 is topic 0's, word 1 topic 1's
    docs = [np.array([0, 0, 1, 1, 2], np.intc), np.array([1, 0], np.intc)]
    personal = GibbsLDA(LDAConfig(n_topics=2), 3).start(docs, np.random.default_rng(0), prior=prior)
    np.testing.assert_array_equal(personal.ZS[personal.WS != 2], [0, 0, 1, 1, 1, 0])
    assert personal.prior.sum() == 0 and personal.nzw.sum() == 7  # initialised from M_S, counts of its own
    kept = GibbsLDA(LDAConfig(n_topics=2), 3).start(docs, np.random.default_rng(0), prior=prior, keep_prior=True)
    assert kept.nzw.sum() == prior.sum() + 7
    rng = np.random.default_rng(1)
    for model in (personal, kept):
        for _ in range(5):
            model.sweep(rng)
        assert model.nzw.sum() == model.prior.sum() + 7 and model.nz.tolist() == model.nzw.sum(axis=1).tolist()
        assert model.ndz.sum(axis=1).tolist() == [5, 2]
        own = np.zeros((2, 3), int)
        np.add.at(own, (model.ZS, model.WS), 1)
        np.testing.assert_array_equal(model.own_counts(), own)
    with pytest.raises(ValueError, match="counts"):
        GibbsLDA(LDAConfig(n_topics=2), 3).start(docs, np.random.default_rng(0), prior=np.ones((3, 3)))


def test_gibbs_sampling_raises_the_likelihood_of_two_clear_topics():
    rng = np.random.default_rng(0)
    docs = [rng.choice(5, 40).astype(np.intc) + (5 if d % 2 else 0) for d in range(20)]  # two disjoint word sets
    model = GibbsLDA(LDAConfig(n_topics=2, alpha=0.1, eta=0.01), 10).start(docs, rng)
    before = model.token_log2_likelihood()
    for _ in range(30):
        model.sweep(rng)
    assert model.token_log2_likelihood() > before + 0.5
    assert model.token_log2_likelihood() == pytest.approx(-math.log2(5), abs=0.1)  # a topic per word set


def test_readers_name_the_file_and_line_of_bad_input(tmp_path):
    assert tokenise("The Cat's 3 HATS, and a hat!") == ["cat", "hats", "hat"]
    good = tmp_path / "c.gz"
    with gzip.open(good, "wt") as f:
        f.write("neuron network ca3\n\nspike train\n")
    assert read_corpus_file(good).tokens == [["neuron", "network", "ca3"], ["spike", "train"]]
    assert read_corpus_file(tmp_path / "c").source.endswith("c.gz")  # the .gz copy of a missing plain file
    (tmp_path / "bad.txt").write_text("fine words\nnot Preprocessed\n")
    with pytest.raises(InputError, match=r"bad\.txt:2: 'Preprocessed'"):
        read_corpus_file(tmp_path / "bad.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.txt: not UTF-8"):
        read_corpus_file(tmp_path / "latin1.txt")
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(InputError, match="no documents"):
        read_corpus_file(tmp_path / "blank.txt")
    with pytest.raises(InputError, match="no such file"):
        read_corpus_file(tmp_path / "missing")
    mine = tmp_path / "mine"
    with pytest.raises(InputError, match="not a folder"):
        read_text_folder(mine)
    mine.mkdir()
    with pytest.raises(InputError, match=r"no \.txt files"):
        read_text_folder(mine)
    (mine / "a.txt").write_text("the and of")
    with pytest.raises(InputError, match="no words"):
        read_text_folder(mine)
    (mine / "b.txt").write_text("Gardening tomatoes in the greenhouse")
    assert read_text_folder(mine).tokens == [["gardening", "tomatoes", "greenhouse"]]
    with pytest.raises(InputError, match="NIPS folder"):
        read_nips(tmp_path / "nowhere")


def test_the_vocabulary_is_the_shared_models_dictionary():
    docs = Documents([["b", "a", "b"], ["c", "b", "a"]])
    vocab = Vocabulary.build(docs, min_count=2)
    assert vocab.words == ["b", "a"]
    assert [d.tolist() for d in vocab.encode(Documents([["a", "z", "b"]]))] == [[1, 0]]  # unknown words dropped


@pytest.mark.skipif(not DEFAULT_NIPS.is_dir(), reason=f"NIPS not at {DEFAULT_NIPS} (see ../shared/data/README.md)")
def test_the_shared_nips_copy():
    train, test = read_nips()
    assert (len(train), len(test)) == (1000, 500)


def test_the_protocol_personal_starts_higher_and_its_savings_and_perplexity():
    from fedmood.studies.topics.protocol import (
        Curves,
        completion_perplexity,
        iterations_saved,
        iterations_to_reach,
        local_and_personal,
        train_shared,
    )

    rng = np.random.default_rng(3)
    topics = [np.arange(0, 6), np.arange(6, 12), np.arange(12, 18)]
    docs = [rng.choice(topics[d % 3], 60).astype(np.intc) for d in range(60)]
    config = LDAConfig(n_topics=3, alpha=0.1, eta=0.01)
    shared = train_shared(docs[:40], config, 18, iterations=20, seed=0)
    curves, _local, personal = local_and_personal(shared.own_counts(), docs[40:], config, iterations=5, seed=1)
    assert curves.personal[0] > curves.local[0]  # starting from M_S beats starting from nothing
    assert curves.personal[-1] == pytest.approx(-math.log2(6), abs=0.15)
    assert iterations_to_reach([-3.0, -2.0, -1.0], -2.0) == 2 and iterations_to_reach([-3.0], -1.0) is None
    assert iterations_saved(Curves(local=[-3.0, -2.5, -2.0, -1.0], personal=[-2.0, -1.0])) == pytest.approx(0.5)
    good = completion_perplexity(personal.topic_word(), docs[40:], config)
    flat = completion_perplexity(np.full((3, 18), 1 / 18), docs[40:], config)
    assert good == pytest.approx(6, rel=0.15) and flat == pytest.approx(18, rel=1e-6)
