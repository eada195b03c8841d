import os

import pytest
import torch
from datasets import Dataset
from datasets import Image as ImageFeature
from transformers import CLIPImageProcessorPil, CLIPModel, CLIPProcessor

from degla.testing_utils import CLIP_BPE_VOCAB_SIZE, clip_bpe_tokenizer, tiny_clip_config

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))


@pytest.fixture(scope="session")
def shared_dir():
    """`../shared` beside the checkout: real data files (VALSE, SugarCrepe sample, NegCLIP TSV)."""
    if not os.path.isdir(SHARED):
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED


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
