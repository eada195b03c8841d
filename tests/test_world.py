"""The shapes world: generator, tokenizer, benchmarks and fine-tuning data."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from degla.world.benchmarks import SUGARCREPE_TASKS, seen_combinations, sugarcrepe_items, write_benchmarks
from degla.world.clip import pixel_values, world_processor
from degla.world.data import finetuning_dataset
from degla.world.shapes import (COLOURS, HELD_OUT, RELATIONS, SHAPES, SIZES, TEXTURES, WorldConfig, caption_is_true,
                                finetuning_config, generate, parse_caption, pretraining_config, relation_holds,
                                sample_scenes)
from degla.world.tokenizer import learn_bpe_merges, world_tokenizer, world_words

CONFIGS = {"pretraining": pretraining_config(), "finetuning": finetuning_config()}
PALETTE = np.array(list(COLOURS.values()), dtype=np.float32)


@pytest.fixture(scope="module", params=list(CONFIGS))
def world(request):
    config = CONFIGS[request.param]
    return config, generate(config, 300, seed=5)


def test_same_seed_same_world(world):
    config, sample = world
    again = generate(config, 300, seed=5)
    assert np.array_equal(sample.images, again.images)
    assert sample.captions == again.captions and sample.scenes == again.scenes
    other = generate(config, 300, seed=6)
    assert not np.array_equal(sample.images, other.images)


def test_images_show_the_captioned_colours(world):
    config, sample = world
    checked = 0
    for image, scene in zip(sample.images, sample.scenes):
        for obj in scene.objects:
            if obj.texture != "plain":
                continue
            pixel = image[int(obj.y), int(obj.x)].astype(np.float32)
            nearest = list(COLOURS)[int(np.argmin(((PALETTE - pixel) ** 2).sum(1)))]
            assert nearest == obj.colour, (scene, pixel)
            checked += 1
        corner = image[:2, :2].reshape(-1, 3).mean(0)
        if all(o.x - o.radius * 1.2 > 3 or o.y - o.radius * 1.2 > 3 for o in scene.objects):
            assert np.abs(corner - scene.background[0]).max() < 4 * config.noise + 2
    assert checked > 200


def test_layout_relation_and_bounds(world):
    config, sample = world
    size = config.image_size
    for scene in sample.scenes:
        for i, a in enumerate(scene.objects):
            assert a.radius <= a.x <= size - a.radius and a.radius <= a.y <= size - a.radius
            for b in scene.objects[i + 1 :]:
                assert np.hypot(a.x - b.x, a.y - b.y) > a.radius + b.radius  # no overlap
        if len(scene.objects) >= 2:
            a, b = scene.objects[:2]
            holding = [r for r in RELATIONS if relation_holds(a, b, r, size)]
            assert holding == [scene.relation]


def test_captions_are_true_and_use_the_world_vocabulary(world):
    config, sample = world
    vocabulary = set(world_words()) | {",", "."}
    for scene, captions in zip(sample.scenes, sample.captions):
        for caption in captions:
            assert set(caption.replace(",", " ,").replace(".", " .").split()) <= vocabulary, caption
            if config.caption_style == "canonical":
                assert caption_is_true(scene, caption), caption


def test_held_out_combinations_never_drawn(world):
    _, sample = world
    drawn = {(o.colour, o.shape) for s in sample.scenes for o in s.objects}
    assert not drawn & set(HELD_OUT)
    assert len(drawn) > 30


def test_finetuning_captions_suit_the_rewrite_rules():
    config = finetuning_config()
    sample = generate(config, 200, seed=0)
    adjectives = set(COLOURS) | set(SIZES) | set(TEXTURES)
    swapped_false = 0
    for scene, captions in zip(sample.scenes, sample.captions):
        assert len(captions) == 2 and captions[0] != captions[1]
        for caption in captions:
            words = caption.split()
            assert sum(w in adjectives for w in words) >= 2 and sum(w in SHAPES for w in words) >= 2
        a, b = scene.objects
        if a.shape != b.shape:  # "swap nouns" turns a true caption into a false one
            nouns = [w for w in captions[0].split() if w in SHAPES]
            swapped = " ".join({nouns[0]: nouns[1], nouns[1]: nouns[0]}.get(w, w) for w in captions[0].split())
            assert not caption_is_true(scene, swapped)
            swapped_false += 1
    assert swapped_false > 150


def test_pretraining_captions_are_loose():
    config = pretraining_config()
    sample = generate(config, 400, seed=1)
    multi = [c[0] for s, c in zip(sample.scenes, sample.captions) if len(s.objects) >= 2]
    with_relation = [c for c in multi if any(r in c for r in RELATIONS)]
    assert 0.05 < len(with_relation) / len(multi) < 0.5
    assert {len(s.objects) for s in sample.scenes} == {1, 2, 3}


def test_config_rejects_bad_options():
    with pytest.raises(ValueError, match="unknown shapes"):
        WorldConfig(shapes=("circle", "blob"))
    with pytest.raises(ValueError, match="num_objects_probs"):
        WorldConfig(num_objects_probs=(0.5, 0.2, 0.2))


def test_parse_caption():
    objects, relation = parse_caption("a small striped red circle to the left of a large blue square and a star")
    assert relation == "to the left of"
    assert objects == [{"size": "small", "texture": "striped", "colour": "red", "shape": "circle"},
                       {"size": "large", "colour": "blue", "shape": "square"}, {"shape": "star"}]


# ------------------------------------------------------------------------------------------- tokenizer


def test_bpe_merges_spell_every_world_word():
    tokenizer = world_tokenizer()
    for word in world_words():
        assert tokenizer.tokenize(word) == [word + "</w>"]
    assert learn_bpe_merges(["ab", "abc"]) == learn_bpe_merges(["ab", "abc"])
    pieces = tokenizer.tokenize("a wobbly chair")
    assert pieces[0] == "a</w>" and len(pieces) > 3 and tokenizer.unk_token not in pieces


def test_tokenizer_round_trip_and_save_load(tmp_path):
    processor = world_processor()
    tokenizer = processor.tokenizer
    text = "a small red circle to the left of a large dotted blue square"
    ids = tokenizer(text).input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True).strip() == text
    processor.save_pretrained(tmp_path)
    from transformers import CLIPProcessor

    loaded = CLIPProcessor.from_pretrained(tmp_path)
    assert loaded.tokenizer(text).input_ids == ids
    assert len(loaded.tokenizer) == len(tokenizer) < 1000


def test_fast_pixel_values_match_the_processor():
    sample = generate(pretraining_config(), 4, seed=0)
    processor = world_processor()
    expected = processor(images=[Image.fromarray(i) for i in sample.images], return_tensors="pt").pixel_values
    assert np.allclose(pixel_values(sample.images).numpy(), expected.numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------- benchmarks


def test_sugarcrepe_pairs_are_exact():
    scenes, images, pairs = sugarcrepe_items(60, seed=3)
    assert images.shape == (60, 64, 64, 3)
    for task in SUGARCREPE_TASKS:
        assert len(pairs[task]) > 30, task
        for idx, caption, negative in pairs[task]:
            assert caption != negative
            assert (caption_is_true(scenes[idx], caption)
                    and not caption_is_true(scenes[idx], negative)), (task, caption, negative)
    for _, caption, negative in pairs["swap_att"]:  # same words, different binding
        assert sorted(caption.split()) == sorted(negative.split())


def test_write_benchmarks_real_formats(tmp_path):
    counts = write_benchmarks(str(tmp_path), n_sugarcrepe=40, n_retrieval=30, n_zeroshot_train=2, n_zeroshot_test=3)
    for task in SUGARCREPE_TASKS:
        data = json.loads((tmp_path / "sugarcrepe" / f"{task}.json").read_text())
        assert len(data) == counts[f"sugarcrepe/{task}"] > 0
        for item in data.values():
            assert set(item) == {"filename", "caption", "negative_caption"}
            assert item["caption"] != item["negative_caption"]
            assert (tmp_path / "images" / item["filename"]).is_file()
    karpathy = json.loads((tmp_path / "karpathy_test.json").read_text())
    assert len(karpathy) == 30 and all(len(k["caption"]) == 2 and (tmp_path / k["image"]).is_file() for k in karpathy)
    for name, key in (("visual_genome_relation.json", "relation_name"),
                      ("visual_genome_attribution.json", "attributes")):
        items = json.loads((tmp_path / name).read_text())
        assert items
        for item in items:
            assert ({"image_path", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "true_caption", "false_caption", key}
                    <= set(item))
            assert item["true_caption"] != item["false_caption"]
            assert (tmp_path / "images" / item["image_path"]).is_file()
    for name, n_classes in (("colour_shape", len(seen_combinations())), ("heldout", len(HELD_OUT))):
        base = tmp_path / f"zeroshot_{name}"
        meta = json.loads((base / "zeroshot.json").read_text())
        assert len(meta["classnames"]) == n_classes and all("{c}" in t for t in meta["templates"])
        assert all(folder.replace("_", " ") == name for folder, name in meta["classnames"].items())
        for split, n in (("train", 2), ("test", 3)):
            folders = sorted(os.listdir(base / split))
            assert folders == sorted(meta["classnames"])
            assert all(len(os.listdir(base / split / f)) == n for f in folders)
    seen = json.loads((tmp_path / "zeroshot_colour_shape" / "zeroshot.json").read_text())["classnames"].values()
    assert not {tuple(c.split()) for c in seen} & set(HELD_OUT)


def test_benchmarks_are_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        write_benchmarks(str(root), n_sugarcrepe=10, n_retrieval=5, n_zeroshot_train=1, n_zeroshot_test=1)
    assert (a / "sugarcrepe" / "swap_att.json").read_text() == (b / "sugarcrepe" / "swap_att.json").read_text()
    assert (a / "images" / "sugarcrepe_00003.png").read_bytes() == (b / "images" / "sugarcrepe_00003.png").read_bytes()


# ------------------------------------------------------------------------------------------- fine-tuning data


def test_finetuning_dataset(tmp_path):
    ds = finetuning_dataset(20, seed=0)
    assert ds.column_names == ["caption", "image"] and len(ds) == 40
    assert ds.features["image"].__class__.__name__ == "Image"
    assert ds[0]["image"].size == (64, 64)
    on_disk = finetuning_dataset(20, seed=0, image_dir=str(tmp_path))
    assert on_disk.column_names == ["caption", "image", "image_path"]
    assert on_disk["caption"] == ds["caption"]
    assert os.path.isfile(on_disk[3]["image_path"])
    assert np.array_equal(np.asarray(on_disk[3]["image"]), np.asarray(ds[3]["image"]))
    scenes = sample_scenes(finetuning_config(), 20, 0)
    assert all(caption_is_true(scenes[i // 2], c) for i, c in enumerate(ds["caption"]))
