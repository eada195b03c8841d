"""Training on data as it is released: the authors' DeGLA.json and COCO's own files, in COCO's exact layout.

The fixture is built here: real photos (tests/fixtures/photos) renamed `train2014/COCO_train2014_%012d.jpg`,
`annotations/captions_train2014.json` with real COCO captions and image ids (the shipped NegCLIP excerpt), and a
`DeGLA.json` of the same records whose `enhanced` lists are NegCLIP's real negatives plus rule-based rewrites.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from degla.cli import parse_stage_arguments
from degla.generation import rewrite_rule_based
from degla.training import TRAINING, read_degla_json
from degla.training.formats import TrainDataError, detect_format, iter_json_array, load_negatives_dataset
from degla.training.run import build_trainer

from training_helpers import ROOT, run_in_process

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
PHOTOS = ["astronaut.jpg", "coffee.jpg", "chelsea.jpg", "rocket.jpg"]
N_RECORDS = 12  # three captions per image, as COCO has several


def negclip_rows(n: int) -> list[dict]:
    path = os.path.join(FIXTURES, "negclip", "valid_neg_clip_excerpt.tsv")
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:n]
    for row in rows:
        row["image_id"] = int(row["filepath"].rsplit("_", 1)[1].split(".")[0])
    return rows


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """A COCO train2014 folder, its captions file and the authors' DeGLA.json for the same captions."""
    import ast

    root = tmp_path_factory.mktemp("coco")
    (root / "train2014").mkdir()
    (root / "annotations").mkdir()
    rows = negclip_rows(N_RECORDS)
    image_ids = sorted({row["image_id"] for row in rows})[: len(PHOTOS)]
    records, annotations = [], []
    for i, row in enumerate(rows):
        image_id = image_ids[i % len(image_ids)]
        real = ast.literal_eval(row["neg_caption"])
        rewrites = [rewrite_rule_based(row["title"], rule, seed=i) for rule in ("reshuffle", "replace_nouns",
                                                                                  "replace_adjectives")]
        enhanced = [n for n in [*real, *rewrites] if n][: 3 if i == 5 else 5]  # record 5: fewer than K = 4
        records.append({"image_id": image_id, "original": row["title"], "enhanced": enhanced})
        annotations.append({"id": 1000 + i, "image_id": image_id, "caption": row["title"]})
    for photo, image_id in zip(PHOTOS, image_ids):
        shutil.copy(os.path.join(FIXTURES, "photos", photo), root / "train2014" / f"COCO_train2014_{image_id:012d}.jpg")
    images = [{"id": image_id, "file_name": f"COCO_train2014_{image_id:012d}.jpg"} for image_id in image_ids]
    (root / "annotations" / "captions_train2014.json").write_text(json.dumps({"images": images,
                                                                               "annotations": annotations}))
    (root / "DeGLA.json").write_text(json.dumps(records, indent=1))
    return root, records


def trainer_argv(model_dir, train_file, image_root, out, *extra):
    return ["--model_name_or_path", model_dir, "--train_file", str(train_file), "--image_root", str(image_root),
            "--output_dir", str(out), "--report_to", "none", "--per_device_train_batch_size", "4", "--max_steps", "2",
            "--learning_rate", "1e-4", "--warmup_steps", "0", "--save_strategy", "no", "--dataloader_num_workers", "0",
            *extra]


def test_degla_json_trains_and_each_sample_is_its_record(coco, tiny_model_dir, tmp_path):
    root, records = coco
    argv = trainer_argv(tiny_model_dir, root / "DeGLA.json", root / "train2014", tmp_path / "run",
                        "--train_augmentation", "none")
    trainer, summary = build_trainer(*parse_stage_arguments(TRAINING, argv))
    extra = sum(max(0, len(r["enhanced"]) - 4) for r in records)
    assert extra > 0 and f"; {extra} released negatives beyond K ignored" in summary
    assert len(records[5]["enhanced"]) == 3
    processor = CLIPProcessor.from_pretrained(tiny_model_dir)
    dataset = trainer.train_dataset
    assert len(dataset) == N_RECORDS
    for index in range(len(dataset)):
        record = records[index]
        batch = trainer.data_collator([dataset[index]])
        expected_negatives = record["enhanced"][:4]
        if len(expected_negatives) == 4:  # exactly the record's first four `enhanced`, in order
            tokens = processor.tokenizer(expected_negatives, padding="max_length", max_length=batch[
                "negative_input_ids"].shape[-1], return_tensors="pt")
            assert torch.equal(batch["negative_input_ids"][0], tokens["input_ids"]), index
        else:  # fewer than K: the first three in order, the fourth filled (and counted) by the policy
            for slot, negative in enumerate(expected_negatives):
                ids = processor.tokenizer(negative)["input_ids"]
                assert batch["negative_input_ids"][0, slot, : len(ids)].tolist() == ids
        image = Image.open(root / "train2014" / f"COCO_train2014_{record['image_id']:012d}.jpg").convert("RGB")
        torch.testing.assert_close(batch["pixel_values"], processor.image_processor([image], return_tensors="pt")[
            "pixel_values"])
        caption = processor.tokenizer(record["original"])["input_ids"]
        assert batch["input_ids"][0, : len(caption)].tolist() == caption
    assert "other_rule" in summary or "other_caption" in summary  # record 5's missing slot, counted
    export = run_in_process(argv)  # and through scripts/train.py's code, two steps end to end
    CLIPModel.from_pretrained(export)
    assert "DeGLA.json" in (tmp_path / "run" / "clip" / "README.md").read_text()


def test_coco_captions_to_generated_negatives_to_training(coco, tiny_model_dir, tmp_path):
    root, _ = coco
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "generate_negatives.py"), "--captions",
                    str(root / "annotations" / "captions_train2014.json"), "--backend", "rule_based",
                    "--output_dir", str(tmp_path / "negatives")], check=True, env=env, capture_output=True)
    export = run_in_process(trainer_argv(tiny_model_dir, tmp_path / "negatives", root / "train2014", tmp_path / "run"))
    assert os.path.exists(os.path.join(export, "model.safetensors"))


def test_degla_json_is_converted_once_and_memory_mapped(coco, tmp_path):
    root, records = coco
    first = read_degla_json(str(root / "DeGLA.json"), cache_dir=str(tmp_path))
    cached = [p for p in os.listdir(tmp_path) if p.startswith("degla_json-")]
    assert len(cached) == 1 and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp") or p.startswith(".")]
    mtime = os.path.getmtime(tmp_path / cached[0] / "data.arrow")
    second = read_degla_json(str(root / "DeGLA.json"), cache_dir=str(tmp_path))
    assert os.path.getmtime(tmp_path / cached[0] / "data.arrow") == mtime  # not parsed again
    assert first[:] == second[:] and second.cache_files  # memory-mapped from the cache
    assert second["caption"] == [r["original"] for r in records]
    assert second["slot_negatives"] == [r["enhanced"] for r in records]
    assert second[0]["image_path"] == f"COCO_train2014_{records[0]['image_id']:012d}.jpg"
    assert detect_format(str(root / "DeGLA.json")) == "degla_json"


def test_streaming_json_parser_agrees_with_json_load_across_chunk_boundaries(coco):
    root, records = coco
    for chunk in (7, 64, 1 << 20):
        assert [value for _, value in iter_json_array(str(root / "DeGLA.json"), chunk_chars=chunk)] == records


@pytest.mark.parametrize("mutate,match", [
    (lambda r: r[2].update(enhanced="a cat on a mat"), r"record 2: field 'enhanced' must be a list"),
    (lambda r: r[1].update(original="  "), r"record 1: field 'original' must be a non-empty caption"),
    (lambda r: r[3].pop("image_id"), r"record 3: missing field\(s\) \['image_id'\]"),
    (lambda r: r[0].update(image_id="57870"), r"record 0: field 'image_id' must be a COCO image id"),
])
def test_bad_degla_json_records_are_named(coco, tmp_path, mutate, match):
    _, records = coco
    records = json.loads(json.dumps(records))
    mutate(records)
    path = tmp_path / "DeGLA.json"
    path.write_text(json.dumps(records))
    with pytest.raises(TrainDataError, match=f"DeGLA.json: {match}"):
        read_degla_json(str(path), cache_dir=str(tmp_path / "cache"))
    assert not os.listdir(tmp_path / "cache")  # a failed conversion leaves no cache entry


def test_truncated_degla_json_is_named(coco, tmp_path):
    root, _ = coco
    text = (root / "DeGLA.json").read_text()
    path = tmp_path / "DeGLA.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(TrainDataError, match=r"DeGLA.json: truncated or malformed JSON after record \d+"):
        read_degla_json(str(path), cache_dir=str(tmp_path / "cache"))


def test_missing_coco_images_stop_or_are_skipped_and_counted(coco, tiny_model_dir, tmp_path):
    root, records = coco
    images = tmp_path / "train2014"
    shutil.copytree(root / "train2014", images)
    missing = images / f"COCO_train2014_{records[0]['image_id']:012d}.jpg"
    missing.unlink()
    argv = trainer_argv(tiny_model_dir, root / "DeGLA.json", images, tmp_path / "run")
    with pytest.raises(TrainDataError, match=rf"row 0: image '.*{missing.name}' is missing.*--skip_bad_images"):
        build_trainer(*parse_stage_arguments(TRAINING, argv))
    trainer, summary = build_trainer(*parse_stage_arguments(TRAINING, [*argv, "--skip_bad_images"]))
    n_missing = sum(r["image_id"] == records[0]["image_id"] for r in records)
    assert len(trainer.train_dataset) == N_RECORDS - n_missing and f"{n_missing} rows skipped" in summary


def test_hub_file_is_downloaded_through_the_hub_client(coco, tmp_path, monkeypatch):
    """Up to the download call, with a local stand-in for `hf_hub_download` (no network in tests)."""
    import degla.hub

    root, records = coco
    calls = []

    def fake_download(repo_id, filename, repo_type=None, revision=None, token=None):
        calls.append((repo_id, filename, repo_type, revision))
        cached = tmp_path / "hub-cache" / filename
        cached.parent.mkdir(exist_ok=True)
        shutil.copy(root / "DeGLA.json", cached)
        return str(cached)

    monkeypatch.setattr(degla.hub, "hf_hub_download", fake_download)
    dataset = load_negatives_dataset("hf://datasets/wsdwJohn1231/DeGLA/DeGLA.json", cache_dir=str(tmp_path / "c"))
    assert calls == [("wsdwJohn1231/DeGLA", "DeGLA.json", "dataset", None)]
    assert dataset["caption"] == [r["original"] for r in records]
    load_negatives_dataset("hf://datasets/wsdwJohn1231/DeGLA@main/DeGLA.json", cache_dir=str(tmp_path / "c"))
    assert calls[-1] == ("wsdwJohn1231/DeGLA", "DeGLA.json", "dataset", "main")


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("DEGLA_NETWORK_TESTS") != "1", reason="needs the Hugging Face Hub "
                    "(DEGLA_NETWORK_TESTS=1)")
def test_the_authors_release_downloads_and_reads():
    from degla.hub import download_hub_file, parse_hub_file

    path = download_hub_file(parse_hub_file("hf://datasets/wsdwJohn1231/DeGLA/DeGLA.json"))
    first = [record for _, record in zip(range(100), (value for _, value in iter_json_array(path)))]
    assert all({"image_id", "original", "enhanced"} <= set(r) for r in first)
    assert all(len(r["enhanced"]) >= 4 for r in first)
