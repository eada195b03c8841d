"""The trained tagger's weights load as data only, and its tagging is the package's own."""

import io
import pickle
import sys
import types

import pytest

from degla.generation import tagger


def test_weights_load_from_the_wheel_as_data_only():
    weights, tagdict, classes = tagger._model()
    assert len(weights) == 94208 and len(tagdict) == 2604 and len(classes) == 45
    assert {"NN", "VBZ", "JJ", "PRP$"} <= set(classes)
    # anything but builtin data is refused, so a tampered file cannot run code
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        tagger._DataOnly(io.BytesIO(pickle.dumps(__import__("os").system, protocol=2))).load()
    with pytest.raises(ValueError, match="sha256"):
        tagger.load_weights(pickle.dumps(({}, {}, set()), protocol=2))


def test_tagging_matches_the_package_algorithm(monkeypatch):
    # the package's own tagger, whose module imports a textblob module that no longer exists (stubbed)
    monkeypatch.setitem(sys.modules, "textblob.packages", types.SimpleNamespace(nltk=None))
    monkeypatch.delitem(sys.modules, "textblob_aptagger.taggers", raising=False)
    from textblob_aptagger.taggers import PerceptronTagger

    reference = PerceptronTagger()
    for sentence in ("A girl in a plaid dress shirt waves at a horse drawn carriage .",
                     "Two puppies chew her slipper near 3 snow-covered benches in 1998 .",
                     "The chef slices onions while a cat watches her cook ."):
        expected = tuple(t for _, t in reference.tag(sentence, tokenize=False))
        assert tagger.penn_tags(tuple(sentence.split())) == expected
