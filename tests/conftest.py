import gzip
import os
import shutil

import pytest
import torch
from datasets import Dataset
from datasets import Image as ImageFeature
from transformers import CLIPImageProcessorPil, CLIPModel, CLIPProcessor

from degla.testing_utils import CLIP_BPE_VOCAB_SIZE, clip_bpe_tokenizer, tiny_clip_config

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny random CLIP with the real CLIP tokenizer and a 30-px image processor, saved as a checkpoint."""
    path = tmp_path_factory.mktemp("tiny_clip")
    torch.manual_seed(0)
    CLIPModel(tiny_clip_config(vocab_size=CLIP_BPE_VOCAB_SIZE)).save_pretrained(path)
    processor = CLIPProcessor(image_processor=CLIPImageProcessorPil(size={"shortest_edge": 30},
                                                                 crop_size={"height": 30, "width": 30}),
                              tokenizer=clip_bpe_tokenizer())
    processor.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_dataset_dir(tmp_path_factory):
    """16 captions with embedded images and rule negatives (some missing), saved with `save_to_disk`."""
    from training_helpers import make_rows

    path = tmp_path_factory.mktemp("negatives")
    Dataset.from_dict(make_rows()).cast_column("image", ImageFeature()).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="session")
def sugarcrepe_dir():
    """The 7 official SugarCrepe files, 20 records each (tests/fixtures/sugarcrepe-sample, MIT licence)."""
    return os.path.join(FIXTURES, "sugarcrepe-sample")


@pytest.fixture(scope="session")
def valse_dir(tmp_path_factory):
    """The 11 VALSE instruments, every record, reduced to the fields the loader reads and gzipped in
    tests/fixtures/valse (MIT licence); unpacked here as the `<instrument>.json` files of a VALSE data folder."""
    root = tmp_path_factory.mktemp("valse")
    source = os.path.join(FIXTURES, "valse")
    for name in os.listdir(source):
        if name.endswith(".json.gz"):
            with gzip.open(os.path.join(source, name), "rb") as f, open(root / name[: -len(".gz")], "wb") as out:
                shutil.copyfileobj(f, out)
    return str(root)
