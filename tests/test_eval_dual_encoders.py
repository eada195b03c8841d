"""Any dual encoder through the evaluation harness: tiny random SigLIP, SigLIP 2 (NaFlex), ALIGN and CLIP checkpoints
built in code and saved with their processors, scored end to end by scripts/evaluate_clip.py on the shipped
SugarCrepe sample; each family's pixels and tokens checked against an independent computation (written out by
hand, SentencePiece / `tokenizers` called directly, or the processor called as the family's docs say) and its
scores recomputed from the model's own forward logits."""

import json
import os
import re
import string
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from degla.eval import FeatureEncoder, ImageRef, OpenCLIPImageProcessor
from degla.eval.encoder import model_fingerprint

from dual_encoder_helpers import SAVERS, corpus
from eval_helpers import placeholder_image, save_tiny_clip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBSETS = ("add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
# texts that exercise case, punctuation, curly quotes and truncation (more than 64 tokens)
HARD_TEXTS = ["A Dog, on the Table!", "Two CATS' toys.", "the man’s hat", "  spaced   out  ",
              " ".join(["a red dog on a green table"] * 12)]


def _run(script, *args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("dual_encoders")
    paths = {name: save(str(root / f"tiny-{name}")) for name, save in SAVERS.items()}
    paths["clip"] = save_tiny_clip(str(root / "tiny-clip"))
    return paths


@pytest.fixture(scope="module")
def coco(tmp_path_factory, sugarcrepe_dir):
    """Placeholder images for the SugarCrepe sample, of varied shapes (NaFlex keeps the aspect ratio)."""
    root = tmp_path_factory.mktemp("coco")
    for name in SUBSETS:
        for r in json.load(open(os.path.join(sugarcrepe_dir, f"{name}.json"))).values():
            n = len(r["filename"]) + int(r["filename"][-8:-4])
            placeholder_image(str(root / r["filename"]), seed=n, size=(24 + n % 40, 20 + (7 * n) % 45))
    return str(root)


def _encoder(path):
    return FeatureEncoder.from_pretrained(path, device="cpu", show_progress=False, cache_dir=None)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["siglip", "siglip2", "align", "clip"])
def test_evaluate_clip_scores_each_family_as_its_forward_logits(family, checkpoints, coco, sugarcrepe_dir, tmp_path):
    """scripts/evaluate_clip.py end to end; every SugarCrepe decision recomputed from `model(...)`'s own
    logits_per_image (SigLIP: exp(t) * cos + b; ALIGN: cos / temperature; CLIP: exp(t) * cos) on inputs built here
    from the processor, and those logits equal the family's transform of the harness's cosine."""
    out = tmp_path / "run"
    proc = _run("evaluate_clip.py", "--model_name_or_path", checkpoints[family], "--tasks", "sugarcrepe",
                "--sugarcrepe_dir", sugarcrepe_dir, "--coco_val2017_dir", coco, "--output_dir", str(out),
                "--cache_dir", "none", "--no_progress", "--batch_size", "16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(out / "results.json"))["sugarcrepe"]
    info = json.load(open(out / "run_info.json"))
    assert info["preprocessing"]["model_class"] == {"siglip": "SiglipModel", "siglip2": "Siglip2Model",
                                                    "align": "AlignModel", "clip": "CLIPModel"}[family]

    encoder = _encoder(checkpoints[family])
    model, processor = encoder.model, encoder.processor
    for name in ("add_att", "replace_rel", "swap_obj"):
        records = list(json.load(open(os.path.join(sugarcrepe_dir, f"{name}.json"))).values())[:6]
        images = [Image.open(os.path.join(coco, r["filename"])).convert("RGB") for r in records]
        texts = [t for r in records for t in (r["caption"], r["negative_caption"])]
        with torch.no_grad():
            pixels = (OpenCLIPImageProcessor.from_dict(processor.image_processor.to_dict()) if family == "clip"
                      else processor.image_processor)(images=images, return_tensors="pt")
            if family in ("siglip", "siglip2"):  # big_vision: lower-cased, padded to 64, no attention mask
                tokens = processor.tokenizer([t.lower() for t in texts], padding="max_length", max_length=64,
                                             truncation=True, padding_side="right", return_tensors="pt")
                tokens = {"input_ids": tokens["input_ids"]}
            elif family == "align":  # as AlignProcessor pads by default: max_length 64
                tokens = processor(text=texts, truncation=True, return_tensors="pt")
            else:
                from degla.text import clean_text

                tokens = processor.tokenizer([clean_text(t) for t in texts], padding=True, return_tensors="pt")
            logits = model(**tokens, **pixels).logits_per_image  # [images, texts]
        cos = encoder.encode_images([ImageRef(os.path.join(coco, r["filename"])) for r in records]) \
            @ encoder.encode_texts(texts).T
        if family in ("siglip", "siglip2"):
            by_hand = cos * model.logit_scale.exp() + model.logit_bias
        elif family == "align":
            by_hand = cos / model.temperature
        else:
            by_hand = cos * model.logit_scale.exp()
        torch.testing.assert_close(by_hand, logits.float(), atol=2e-4, rtol=1e-4)
        wins = [bool(logits[i, 2 * i] > logits[i, 2 * i + 1]) for i in range(len(records))]
        harness_wins = [bool(cos[i, 2 * i] > cos[i, 2 * i + 1]) for i in range(len(records))]
        assert wins == harness_wins, name
    # and the results file is the harness over all 20 records per subset: recompute those accuracies too
    for name in SUBSETS:
        records = list(json.load(open(os.path.join(sugarcrepe_dir, f"{name}.json"))).values())
        img = encoder.encode_images([ImageRef(os.path.join(coco, r["filename"])) for r in records])
        pos = encoder.encode_texts([r["caption"] for r in records])
        neg = encoder.encode_texts([r["negative_caption"] for r in records])
        correct = int(((img * pos).sum(-1) > (img * neg).sum(-1)).sum())
        assert results[name] == pytest.approx(100.0 * correct / len(records), abs=0.01), name


@pytest.mark.slow
def test_siglip2_naflex_runs_every_task(checkpoints, coco, sugarcrepe_dir, valse_dir, tmp_path):
    """The least CLIP-like family through every task: VALSE (real annotations), ARO (crops), ARO-Order, zero-shot,
    linear probe and retrieval, next to SugarCrepe, in one scripts/evaluate_clip.py run."""
    valse = tmp_path / "valse"
    valse.mkdir()
    existence = dict(list(json.load(open(os.path.join(valse_dir, "existence.json"))).items())[:40])
    (valse / "existence.json").write_text(json.dumps(existence))
    for r in existence.values():
        placeholder_image(str(tmp_path / "v7w" / r["image_file"]), size=(32, 28))
    vg = [{"image_path": f"{i % 3}.jpg", "bbox_x": i, "bbox_y": 1, "bbox_w": 20 + i, "bbox_h": 18,
           "true_caption": f"the dog is on the table {i}", "false_caption": f"the table is on the dog {i}",
           "relation_name": "on", "attributes": ["red", "small"]} for i in range(6)]
    for i in range(3):
        placeholder_image(str(tmp_path / "aro" / "images" / f"{i}.jpg"), seed=i, size=(50, 40))
    (tmp_path / "aro" / "visual_genome_relation.json").write_text(json.dumps(vg))
    karpathy = [{"image": f"{i}.jpg", "caption": [f"A small {a} plays with the red ball {j}." for j in range(5)]}
                for i, a in enumerate(["dog", "cat", "man", "dog"])]
    for i in range(len(karpathy)):
        placeholder_image(str(tmp_path / "karpathy" / f"{i}.jpg"), seed=50 + i, size=(40 + 9 * i, 30))
    (tmp_path / "karpathy.json").write_text(json.dumps(karpathy))
    (tmp_path / "lexicon.json").write_text(json.dumps({"nouns": ["dog", "cat", "man", "ball"],
                                                       "adjectives": ["small", "red"]}))
    for split, n in (("train", 4), ("test", 2)):
        for c in ("circle", "square"):
            for i in range(n):
                placeholder_image(str(tmp_path / "shapes" / split / c / f"{i}.png"), seed=hash((split, c, i)) % 97)
    out = tmp_path / "run"
    proc = _run("evaluate_clip.py", "--model_name_or_path", checkpoints["siglip2"], "--tasks", "all",
                "--output_dir", str(out), "--cache_dir", "none", "--no_progress", "--sugarcrepe_dir", sugarcrepe_dir,
                "--coco_val2017_dir", coco, "--valse_dir", str(valse), "--valse_visual7w_dir", str(tmp_path / "v7w"),
                "--aro_dir", str(tmp_path / "aro"), "--coco_karpathy_test_json", str(tmp_path / "karpathy.json"),
                "--coco_image_root", str(tmp_path / "karpathy"), "--order_pos_lexicon", str(tmp_path / "lexicon.json"),
                "--zeroshot_sources", f"shapes={tmp_path / 'shapes'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(out / "results.json"))
    assert set(results) == {"sugarcrepe", "valse", "aro", "zeroshot", "linear_probe", "retrieval"}
    assert {"existence"} <= set(results["valse"]) and {"vg_relation", "coco_order"} <= set(results["aro"])
    assert "coco_i2t_r1" in results["retrieval"] and "shapes" in results["linear_probe"]


def _canonicalize(text):
    """HF SiglipTokenizer / open_clip's `canonicalize_text` (big_vision's prompt_engineering.py) written out:
    lower-case, ASCII punctuation removed, whitespace runs to one space."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return re.sub(r"\s+", " ", text).strip()


def test_siglip_tokens_are_sentencepiece_ids_padded_to_64_without_mask(checkpoints):
    import sentencepiece as spm

    encoder = _encoder(checkpoints["siglip"])
    sp = spm.SentencePieceProcessor(model_file=os.path.join(checkpoints["siglip"], "spiece.model"))
    eos = sp.piece_to_id("</s>")
    texts = corpus()[:40] + HARD_TEXTS
    inputs = encoder.text_inputs([encoder.prepare_text(t) for t in texts])
    assert set(inputs) == {"input_ids"}  # big_vision's text tower has no attention mask
    for text, ids in zip(texts, inputs["input_ids"].tolist()):
        expected = sp.encode(_canonicalize(text))[:63] + [eos]  # sticky end-of-text when cut
        expected += [eos] * (64 - len(expected))  # padded with </s> (big_vision: pad_value=1)
        assert ids == expected, text
    assert any(len(sp.encode(_canonicalize(t))) > 63 for t in HARD_TEXTS)  # truncation was exercised


def test_siglip_pixels_are_a_square_resize_to_minus_one_one(checkpoints, tmp_path):
    encoder = _encoder(checkpoints["siglip"])
    paths = [placeholder_image(str(tmp_path / f"{i}.png"), seed=i, size=(41 + 9 * i, 29 + 4 * i)) for i in range(3)]
    images = [Image.open(p).convert("RGB") for p in paths]
    pixels = encoder.image_inputs(images)
    assert set(pixels) == {"pixel_values"}
    for image, got in zip(images, pixels["pixel_values"]):  # big_vision: resize(224)|value_range(-1, 1)
        resized = np.asarray(image.resize((30, 30), Image.BICUBIC), dtype=np.float32) / 255.0
        np.testing.assert_allclose(got.numpy(), ((resized - 0.5) / 0.5).transpose(2, 0, 1), atol=1e-6)


def test_siglip2_tokens_lowercased_right_padded_and_naflex_inputs_reach_the_model(checkpoints, tmp_path):
    from tokenizers import Tokenizer

    encoder = _encoder(checkpoints["siglip2"])
    raw = Tokenizer.from_file(os.path.join(checkpoints["siglip2"], "tokenizer.json"))
    texts = corpus()[:40] + HARD_TEXTS
    inputs = encoder.text_inputs([encoder.prepare_text(t) for t in texts])
    assert set(inputs) == {"input_ids"}
    pad = raw.token_to_id("<pad>")
    for text, ids in zip(texts, inputs["input_ids"].tolist()):
        expected = raw.encode(text.lower()).ids[:64]
        assert ids == expected + [pad] * (64 - len(expected)), text  # right-padded, as big_vision pads
    # NaFlex: pixel values, the patch mask and the spatial shapes all reach get_image_features
    paths = [placeholder_image(str(tmp_path / f"{i}.png"), seed=i, size=size)
             for i, size in enumerate([(57, 40), (20, 60), (33, 33)])]
    images = [Image.open(p).convert("RGB") for p in paths]
    got = encoder.image_inputs(images)
    assert set(got) == {"pixel_values", "pixel_attention_mask", "spatial_shapes"}
    shapes = got["spatial_shapes"].tolist()
    assert len({tuple(s) for s in shapes}) == 3 and all(h * w <= 16 for h, w in shapes)
    assert got["pixel_attention_mask"].sum(-1).tolist() == [h * w for h, w in shapes]
    # the processor as the SigLIP 2 docs call it (Siglip2Processor's own defaults, 16-px patches and at most 256
    # of them, override the saved image processor's unless given: these are the tiny checkpoint's)
    docs = encoder.processor(images=images, patch_size=4, max_num_patches=16, return_tensors="pt")
    with torch.no_grad():
        expected = encoder.model.get_image_features(**docs).pooler_output
    feats = encoder.encode_images([ImageRef(p) for p in paths])
    torch.testing.assert_close(feats, torch.nn.functional.normalize(expected, dim=-1), atol=1e-6, rtol=1e-5)


def test_siglip2_fixres_with_gemma_tokenizer_is_lowercased_and_right_padded_by_the_harness(tmp_path):
    """Google's SigLIP 2 FixRes checkpoints are `SiglipModel`s with a Gemma tokenizer that keeps case and pads on
    the left: the harness lower-cases (big_vision's SigLIP 2 demo) and pads on the right without a mask."""
    from tokenizers import Tokenizer

    from dual_encoder_helpers import save_tiny_siglip2_fixres

    path = save_tiny_siglip2_fixres(str(tmp_path / "fixres"))
    encoder = _encoder(path)
    assert type(encoder.model).__name__ == "SiglipModel" and type(encoder.tokenizer).__name__ == "GemmaTokenizer"
    raw = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    assert raw.encode("A Dog").ids != raw.encode("a dog").ids  # the tokenizer itself keeps case
    inputs = encoder.text_inputs([encoder.prepare_text(t) for t in HARD_TEXTS])
    assert set(inputs) == {"input_ids"}
    for text, ids in zip(HARD_TEXTS, inputs["input_ids"].tolist()):
        expected = raw.encode(text.lower()).ids[:64]
        assert ids == expected + [raw.token_to_id("<pad>")] * (64 - len(expected)), text
    assert encoder.encode_texts(["A Dog"]).equal(encoder.encode_texts(["a dog"]))


def test_align_pixels_and_tokens_as_coyo_align(checkpoints, tmp_path):
    encoder = _encoder(checkpoints["align"])
    paths = [placeholder_image(str(tmp_path / f"{i}.png"), seed=i, size=(50 + 5 * i, 37)) for i in range(2)]
    images = [Image.open(p).convert("RGB") for p in paths]
    pixels = encoder.image_inputs(images)["pixel_values"]
    for image, got in zip(images, pixels):  # resize 40x40 (bilinear), centre crop 32 at (4, 4), x / 127.5 - 1
        resized = np.asarray(image.resize((40, 40), Image.BILINEAR), dtype=np.float32)[4:36, 4:36]
        np.testing.assert_allclose(got.numpy(), (resized / 127.5 - 1).transpose(2, 0, 1), atol=1e-5)
    texts = corpus()[:20] + HARD_TEXTS
    inputs = encoder.text_inputs([encoder.prepare_text(t) for t in texts])
    # AlignProcessor's defaults (padding to max_length 64); it does not truncate unless told
    docs = encoder.processor(text=texts, truncation=True, return_tensors="pt")
    assert set(inputs) == set(docs) and inputs["input_ids"].shape == (len(texts), 64)
    for key in docs:
        assert inputs[key].equal(docs[key]), key
    assert inputs["input_ids"][0, 0] == encoder.tokenizer.cls_token_id  # ALIGN's text feature: [CLS]
    lower = encoder.text_inputs(["a dog, on the table!"])["input_ids"]
    assert lower.equal(encoder.text_inputs(["A Dog, on the Table!"])["input_ids"])  # BERT uncased lower-cases


def test_clip_keeps_open_clip_crop_and_cleaning(checkpoints):
    encoder = _encoder(checkpoints["clip"])
    assert type(encoder.image_processor) is OpenCLIPImageProcessor and encoder.family.name == "CLIP"
    assert encoder.prepare_text("the man’s  hat &amp; coat") == "the man's hat & coat"
    assert set(encoder.text_inputs(["a dog", "a red dog"])) == {"input_ids", "attention_mask"}


def test_feature_cache_is_keyed_by_family_and_preprocessing(checkpoints, tmp_path):
    encoders = {name: _encoder(path) for name, path in checkpoints.items()}
    prints = {name: e.fingerprint for name, e in encoders.items()}
    assert len(set(prints.values())) == len(prints)
    siglip = encoders["siglip"]
    # the same weights and tokenizer under another image size or another text recipe: another key
    other_pixels = siglip.image_processor.__class__(size={"height": 28, "width": 28})
    assert model_fingerprint(siglip.model, other_pixels, siglip.tokenizer, siglip.family) != prints["siglip"]
    from dataclasses import replace

    masked = replace(siglip.family, text=replace(siglip.family.text, attention_mask=True))
    assert model_fingerprint(siglip.model, siglip.image_processor, siglip.tokenizer, masked) != prints["siglip"]
    # a cache filled by one family is not read by another on the same data
    image = placeholder_image(str(tmp_path / "a.png"))
    for name in ("siglip", "align"):
        encoder = FeatureEncoder.from_pretrained(checkpoints[name], device="cpu", show_progress=False,
                                                 cache_dir=str(tmp_path / "cache"))
        encoder.encode_images([ImageRef(image)], task="t")
        encoder.encode_texts(["a dog"], task="t")
        assert encoder.stats["t"].images_encoded == 1 and encoder.stats["t"].texts_encoded == 1, name
    assert len(os.listdir(tmp_path / "cache")) == 2


def test_a_model_without_the_dual_encoder_interface_is_one_error(tmp_path):
    from transformers import BertConfig, BertModel

    path = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=37)).save_pretrained(path)
    proc = _run("evaluate_clip.py", "--model_name_or_path", str(path), "--tasks", "sugarcrepe", "--sugarcrepe_dir",
                os.path.join(ROOT, "tests", "fixtures", "sugarcrepe-sample"), "--coco_val2017_dir", str(tmp_path),
                "--output_dir", str(tmp_path / "out"), "--cache_dir", "none")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr and lines[-1].startswith(f"error: --model_name_or_path {path}: BertModel")
    assert "get_image_features" in lines[-1] and "SiglipModel" in lines[-1]


def test_a_processor_that_needs_a_missing_package_is_one_error(checkpoints, monkeypatch):
    """What a user without sentencepiece gets for a SigLIP checkpoint: SiglipTokenizer's ImportError, as an
    `InputError` naming the model and the extra to install."""
    from transformers import AutoProcessor

    from degla.errors import InputError

    def no_sentencepiece(*args, **kwargs):
        raise ImportError("SiglipTokenizer requires the SentencePiece library but it was not found")

    monkeypatch.setattr(AutoProcessor, "from_pretrained", no_sentencepiece)
    with pytest.raises(InputError, match=r"--model_name_or_path .*tiny-siglip: cannot load its processor .*"
                                         r"SentencePiece.*degla\[siglip\]"):
        FeatureEncoder.from_pretrained(checkpoints["siglip"], device="cpu")


def test_a_checkpoint_saved_without_its_image_processor_is_one_error(checkpoints, tmp_path):
    import shutil

    from degla.errors import InputError

    folder = tmp_path / "no-image-processor"
    shutil.copytree(checkpoints["siglip"], folder)
    os.remove(folder / "processor_config.json")
    with pytest.raises(InputError, match=r"no-image-processor: cannot load its processor .*processor.save_pretrained"):
        FeatureEncoder.from_pretrained(str(folder), device="cpu")
