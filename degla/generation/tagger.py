"""A trained contextual part-of-speech tagger: Honnibal's greedy averaged perceptron.

The weights are those of ``textblob-aptagger`` 0.2.0 (MIT; Matthew Honnibal and Steven Loria),
``trontagger-0.1.0.pickle``: the perceptron trained on the Wall Street Journal treebank (the model
NLTK later adopted as its default English tagger), 94,208 features, a dictionary of 2,604
unambiguous words and the 45 Penn Treebank tags. Its features read the word, its neighbours two
either side and the two tags decided before it, so it reads a word in its sentence ("a dress
shirt", "a tree filled forest", "her display").

The file is read from the installed wheel (no download, and the package itself is never imported:
it needs a textblob that no longer exists) by an unpickler that builds nothing but builtin
containers, strings and numbers (:class:`_DataOnly`), and checked against its sha256. The tagging
(:func:`penn_tags`) is the package's own algorithm, written again here: greedy, left to right.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections import defaultdict
from functools import lru_cache
from importlib import metadata

DISTRIBUTION = "textblob-aptagger"
WEIGHTS = "textblob_aptagger/trontagger-0.1.0.pickle"
WEIGHTS_SHA256 = "1109164b3d28dce58f96b763128bab2fd8754c3921fd3330de2724ac6d1ada7c"
_START, _END = ("-START-", "-START2-"), ("-END-", "-END2-")


class _DataOnly(pickle.Unpickler):
    """An unpickler that builds only builtin data: the one global it resolves is ``set`` (the
    pickle stores the tag set as ``__builtin__.set``); anything else is refused, so the file
    cannot run code."""

    def find_class(self, module: str, name: str):
        if module in {"builtins", "__builtin__"} and name == "set":
            return set
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from the tagger's weights (data only)")


def weights_path() -> str:
    """The weights file of the installed ``textblob-aptagger`` wheel."""
    try:
        path = metadata.distribution(DISTRIBUTION).locate_file(WEIGHTS)
    except metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise FileNotFoundError(f"the tagger's weights ({WEIGHTS}) are not installed: "
                                f"`pip install -e \".[tagger]\"` (or `pip install --no-deps {DISTRIBUTION}==0.2.0`)")
    return str(path)


def load_weights(data: bytes) -> tuple[dict, dict, tuple]:
    """(feature -> {tag: weight}, word -> tag, tags) from the bytes of the weights file, after
    checking their sha256."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"the tagger's weights have sha256 {digest}, expected {WEIGHTS_SHA256}: "
                         f"reinstall `{DISTRIBUTION}==0.2.0`")
    weights, tagdict, classes = _DataOnly(io.BytesIO(data), encoding="latin1").load()
    return weights, tagdict, tuple(sorted(classes))


@lru_cache(maxsize=1)
def _model() -> tuple[dict, dict, tuple]:
    with open(weights_path(), "rb") as f:
        return load_weights(f.read())


def _normalize(word: str) -> str:
    if "-" in word and word[0] != "-":
        return "!HYPHEN"
    if word.isdigit() and len(word) == 4:
        return "!YEAR"
    if word[0].isdigit():
        return "!DIGITS"
    return word.lower()


@lru_cache(maxsize=8192)
def penn_tags(words: tuple[str, ...], allowed: tuple[frozenset | None, ...] | None = None) -> tuple[str, ...]:
    """The Penn Treebank tag of each of ``words`` (one sentence, tokenized, as written), in context;
    with ``allowed``, each word's tag is the best of its set (None: any tag), and the choice is
    the context of the words after it."""
    weights, tagdict, classes = _model()
    context = _START + tuple(_normalize(w) for w in words) + _END
    prev, prev2 = _START
    out = []
    for i, word in enumerate(words):
        tag = tagdict.get(word)
        options = classes if allowed is None or allowed[i] is None else allowed[i]
        if tag not in options:
            c = i + 2
            features = ("bias", f"i suffix {word[-3:]}", f"i pref1 {word[0]}", f"i-1 tag {prev}",
                        f"i-2 tag {prev2}", f"i tag+i-2 tag {prev} {prev2}", f"i word {context[c]}",
                        f"i-1 tag+i word {prev} {context[c]}", f"i-1 word {context[c - 1]}",
                        f"i-1 suffix {context[c - 1][-3:]}", f"i-2 word {context[c - 2]}",
                        f"i+1 word {context[c + 1]}", f"i+1 suffix {context[c + 1][-3:]}",
                        f"i+2 word {context[c + 2]}")
            scores = defaultdict(float)
            for feature in features:
                for label, weight in weights.get(feature, {}).items():
                    scores[label] += weight
            tag = max(options, key=lambda label: (scores[label], label))
        out.append(tag)
        prev2, prev = prev, tag
    return tuple(out)
