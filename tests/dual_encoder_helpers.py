"""Tiny random checkpoints of every dual-encoder family, built in code and saved with their processors, as
`save_pretrained` writes a real one (tests/test_eval_dual_encoders.py, tests/test_eval_report_families.py).

Each has hidden size 32 and 2 layers; its tokenizer is the family's own class over a small vocabulary trained here
on the shipped SugarCrepe captions: SentencePiece (`SiglipTokenizer`, as `google/siglip-*`), a byte-level BPE in
`Siglip2Tokenizer` (Gemma's layout, lower-casing normaliser), WordPiece in `BertTokenizer` (ALIGN)."""

from __future__ import annotations

import io
import json
import os

import torch

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TINY = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)


def corpus() -> list[str]:
    """The captions and negatives of the shipped SugarCrepe sample (tokenizer training text)."""
    folder = os.path.join(FIXTURES, "sugarcrepe-sample")
    texts = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            for record in json.load(open(os.path.join(folder, name))).values():
                texts += [record["caption"], record["negative_caption"]]
    return texts


def save_tiny_siglip(path: str, seed: int = 0) -> str:
    """`SiglipModel` + `SiglipProcessor` (`SiglipTokenizer` over a 250-piece SentencePiece model with SigLIP's
    ids: pad 0, eos 1 (`</s>`, also the pad token), unk 2; `SiglipImageProcessorPil` at 30 px)."""
    import sentencepiece as spm
    from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel, SiglipProcessor, SiglipTokenizer

    os.makedirs(path, exist_ok=True)
    model_file = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter([t.lower() for t in corpus()]), model_writer=model_file,
                                   vocab_size=250, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, model_type="unigram",
                                   num_threads=1, minloglevel=2)
    spiece = os.path.join(path, "spiece.model")
    with open(spiece, "wb") as f:
        f.write(model_file.getvalue())
    tokenizer = SiglipTokenizer(vocab_file=spiece, model_max_length=64)
    torch.manual_seed(seed)
    config = SiglipConfig(text_config=dict(vocab_size=tokenizer.vocab_size, max_position_embeddings=64,
                                           pad_token_id=1, bos_token_id=None, eos_token_id=1, **TINY),
                          vision_config=dict(image_size=30, patch_size=5, **TINY))
    SiglipModel(config).save_pretrained(path)
    image_processor = SiglipImageProcessorPil(size={"height": 30, "width": 30})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def save_tiny_siglip2(path: str, seed: int = 0) -> str:
    """`Siglip2Model` (NaFlex) + `Siglip2Processor` (`Siglip2Tokenizer` over a 300-token BPE trained here;
    `Siglip2ImageProcessorPil` with 4-px patches, at most 16 of them)."""
    from tokenizers.trainers import BpeTrainer
    from transformers import Siglip2Config, Siglip2ImageProcessorPil, Siglip2Model, Siglip2Processor, Siglip2Tokenizer

    tokenizer = Siglip2Tokenizer()
    tokenizer._tokenizer.train_from_iterator(corpus(), trainer=BpeTrainer(
        vocab_size=300, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]))
    torch.manual_seed(seed)
    config = Siglip2Config(text_config=dict(vocab_size=len(tokenizer), max_position_embeddings=64, pad_token_id=0,
                                            bos_token_id=2, eos_token_id=1, **TINY),
                           vision_config=dict(num_patches=16, patch_size=4, **TINY))
    Siglip2Model(config).save_pretrained(path)
    image_processor = Siglip2ImageProcessorPil(patch_size=4, max_num_patches=16)
    Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def save_tiny_siglip2_fixres(path: str, seed: int = 0) -> str:
    """A SigLIP 2 FixRes checkpoint as Google ships them: a `SiglipModel` with a `GemmaTokenizer` (which neither
    lower-cases nor pads on the right by itself) in a `SiglipProcessor`."""
    from tokenizers.trainers import BpeTrainer
    from transformers import GemmaTokenizer, SiglipConfig, SiglipImageProcessorPil, SiglipModel, SiglipProcessor

    tokenizer = GemmaTokenizer()
    tokenizer._tokenizer.train_from_iterator(corpus(), trainer=BpeTrainer(
        vocab_size=300, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]))
    torch.manual_seed(seed)
    config = SiglipConfig(text_config=dict(vocab_size=len(tokenizer), max_position_embeddings=64, pad_token_id=0,
                                           bos_token_id=2, eos_token_id=1, **TINY),
                          vision_config=dict(image_size=32, patch_size=4, **TINY))
    SiglipModel(config).save_pretrained(path)
    image_processor = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def save_tiny_align(path: str, seed: int = 0) -> str:
    """`AlignModel` (2-stage EfficientNet, 2-layer BERT) + `AlignProcessor` (uncased `BertTokenizer` over the
    corpus' words; `EfficientNetImageProcessorPil` as kakaobrain/align-base's config, scaled: resize 40, centre
    crop 32, values in [-1, 1])."""
    from transformers import AlignConfig, AlignModel, AlignProcessor, BertTokenizer, EfficientNetImageProcessorPil

    words = sorted({w for t in corpus() for w in t.lower().replace(".", " ").replace(",", " ").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "'"] + words
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, model_max_length=64)
    torch.manual_seed(seed)
    config = AlignConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=64, **TINY),
        vision_config=dict(image_size=32, kernel_sizes=[3, 3], in_channels=[32, 16], out_channels=[16, 32],
                           strides=[1, 2], num_block_repeats=[1, 1], expand_ratios=[1, 2], hidden_dim=32,
                           width_coefficient=1.0, depth_coefficient=1.0, depthwise_padding=[]),
        projection_dim=32)
    AlignModel(config).save_pretrained(path)
    image_processor = EfficientNetImageProcessorPil(
        size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32}, do_center_crop=True, resample=2,
        rescale_factor=1 / 127.5, rescale_offset=True, do_normalize=False, include_top=False)
    AlignProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


SAVERS = {"siglip": save_tiny_siglip, "siglip2": save_tiny_siglip2, "align": save_tiny_align}
