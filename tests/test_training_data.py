"""The negatives data pipeline: schemas (rule columns, NegCLIP TSV), K slots, fill policy, images, collation."""

import os

import numpy as np
import pytest
import torch
from datasets import Dataset
from PIL import Image

from degla.schema import check_negatives_dataset
from degla.testing_utils import clip_bpe_tokenizer
from degla.training.data import DeGLACollator, assign_negative_slots, check_images, parse_negative_slots
from degla.training.formats import TrainDataError, load_negatives_dataset, read_negclip_tsv

RULE_COLUMNS = ["neg_reshuffle", "neg_swap_nouns", "neg_swap_adjectives", "neg_replace_adjectives", "neg_replace_nouns"]


def rule_rows(**overrides):
    rows = {"caption": ["a red cat on a blue mat", "a dog under a green tree", "a tall man with a small hat"],
            "image_path": ["a.png", "b.png", "c.png"],
            "neg_reshuffle": ["a mat on a blue red cat", None, "a small man with a tall hat"],
            "neg_swap_nouns": ["a red mat on a blue cat", "a tree under a green dog", None],
            "neg_swap_adjectives": ["a blue cat on a red mat", None, "a small man with a tall hat"],
            "neg_replace_adjectives": [None, "a dog under a brown tree", "a short man with a small hat"],
            "neg_replace_nouns": ["a red dog on a blue mat", "a cat under a green tree", None]}
    rows.update(overrides)
    return Dataset.from_dict(rows)


NEGCLIP_TSV = os.path.join(os.path.dirname(__file__), "fixtures", "negclip", "valid_neg_clip_excerpt.tsv")


def test_negclip_tsv_reads_the_real_file():
    ds = read_negclip_tsv(NEGCLIP_TSV)
    assert len(ds) == 301  # 303 lines: the last record's quoted caption spans two lines
    assert ds[300]["caption"].startswith("A bunch of people are sitting around while a guy plays")
    assert ds[0]["caption"] == "A child holding a flowered umbrella and petting a yak."
    assert ds[0]["image_path"].endswith("COCO_val2014_000000184613.jpg")
    assert ds[0]["negative_pool"][0].startswith("A umbrella holding")
    loaded = load_negatives_dataset(NEGCLIP_TSV)
    picked, stats = assign_negative_slots(loaded.select(range(200)), num_negatives=4)
    assert all(len(n) == 4 for n in picked["negatives"])
    assert stats.sources["rule"] > 0 and stats.sources["other_caption"] > 0  # NegCLIP has ~2 negatives a caption
    assert all(c not in negs for c, negs in zip(picked["caption"], picked["negatives"]))


def test_default_slots_merge_the_two_swap_rules():
    assert parse_negative_slots("reshuffle;swap_nouns,swap_adjectives;replace_adjectives;replace_nouns") == (
        ("reshuffle",), ("swap_nouns", "swap_adjectives"), ("replace_adjectives",), ("replace_nouns",))
    with pytest.raises(ValueError, match="unknown rules"):
        parse_negative_slots("reshuffle;swap_verbs")


def test_slot_filling_is_counted_and_deterministic():
    ds = rule_rows()
    a, stats = assign_negative_slots(ds, num_negatives=4, seed=3)
    b, _ = assign_negative_slots(ds, num_negatives=4, seed=3)
    assert a["negatives"] == b["negatives"]
    first, swaps = a[0]["negatives"], {ds[0]["neg_swap_nouns"], ds[0]["neg_swap_adjectives"]}
    # row 0 lacks replace_adjectives: its other slots take their rules, the gap takes the unused swap negative
    assert first[0] == ds[0]["neg_reshuffle"] and first[2] == ds[0]["neg_replace_nouns"]
    assert {first[1], first[3]} == swaps
    assert stats.rows == 3 and stats.rows_dropped == 0
    assert sum(stats.sources.values()) == 12
    assert stats.sources["other_rule"] >= 1
    assert "dropped" in stats.summary()


def test_drop_policy_counts_dropped_captions():
    ds = rule_rows(neg_reshuffle=[None, None, None], neg_swap_adjectives=[None, None, None])
    kept, stats = assign_negative_slots(ds, num_negatives=3, policy="drop")
    assert stats.rows_dropped == len(ds) - len(kept)
    assert stats.rows_dropped >= 1
    assert all(len(n) == 3 for n in kept["negatives"])


@pytest.mark.parametrize("change,match", [
    (lambda d: d.rename_column("caption", "text"), "no 'caption' column"),
    (lambda d: d.remove_columns(["image_path"]), "no image reference"),
    (lambda d: d.remove_columns(RULE_COLUMNS), "no negative columns"),
    (lambda d: Dataset.from_dict({**d.to_dict(), "caption": ["ok", " ", "ok"]}), "row 1: empty"),
])
def test_bad_datasets_name_the_problem(change, match):
    with pytest.raises(ValueError, match=match):
        check_negatives_dataset(change(rule_rows()), "negatives.parquet")


def test_missing_images_raise_or_are_skipped_and_counted(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    ds = rule_rows()
    with pytest.raises(TrainDataError, match=r"row 1: image .*b\.png.*--skip_bad_images"):
        check_images(ds, str(tmp_path))
    bad, messages = check_images(ds, str(tmp_path), skip_bad_images=True)
    assert bad == [1, 2] and "c.png" in messages[1]


def test_collator_tokenises_all_texts_together(tmp_path):
    from transformers import CLIPImageProcessorPil, CLIPProcessor

    for name in "abc":
        Image.fromarray(np.full((40, 50, 3), 120, np.uint8)).save(tmp_path / f"{name}.png")
    processor = CLIPProcessor(image_processor=CLIPImageProcessorPil(size={"shortest_edge": 30},
                                                                 crop_size={"height": 30, "width": 30}),
                              tokenizer=clip_bpe_tokenizer())
    ds, _ = assign_negative_slots(rule_rows(), num_negatives=4)
    batch = DeGLACollator(processor, 4, image_root=str(tmp_path))([ds[i] for i in range(3)])
    assert batch["pixel_values"].shape == (3, 3, 30, 30)
    assert batch["negative_input_ids"].shape[:2] == (3, 4)
    assert batch["negative_input_ids"].shape[-1] == batch["input_ids"].shape[-1]
    expected = processor.tokenizer(ds[2]["negatives"][1])["input_ids"]
    row = batch["negative_input_ids"][2, 1]
    assert row[: len(expected)].tolist() == expected
    assert batch["negative_attention_mask"][2, 1].sum().item() == len(expected)


def test_accumulation_scales_the_summed_distillation():
    from transformers import CLIPModel

    from degla import DeGLAForContrastive
    from degla.testing_utils import tiny_clip_config

    torch.manual_seed(0)
    model = DeGLAForContrastive.from_clip(CLIPModel(tiny_clip_config()))
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ids = torch.randint(1, 97, (2, 5))
    ids[:, -1] = 98
    inputs = dict(input_ids=ids, pixel_values=torch.randn(2, 3, 30, 30), return_loss=True)
    one = model(**inputs).loss_distill
    two = model(**inputs, accumulation_steps=2).loss_distill
    torch.testing.assert_close(two, 2 * one)
