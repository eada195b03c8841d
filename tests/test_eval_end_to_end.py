"""A tiny random CLIP checkpoint on disk, scored on every task from local files through scripts/evaluate_clip.py,
then compared by scripts/report.py. Also: the feature cache, the encoded/unique image ratio, errors."""

import json
import os
import subprocess
import sys

import pytest

from degla.cli import run
from degla.errors import InputError
from degla.eval import CLIPFeatureEncoder, EvalDataConfig, EvalDataError, evaluate_model
from degla.eval.report import REPORT
from degla.eval.run import EVALUATION

from eval_helpers import placeholder_image, save_tiny_clip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEXICON = {"nouns": ["dog", "cat", "man", "ball", "table", "park"], "adjectives": ["red", "small", "old", "green"]}


def _run(script, *args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1",
               HF_EVALUATE_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory, sugarcrepe_dir, valse_dir):
    """Tiny CLIP + every benchmark as local files (real SugarCrepe/VALSE annotations, placeholder images)."""
    root = tmp_path_factory.mktemp("eval_world")
    model = save_tiny_clip(str(root / "tiny-clip"))
    sugar = sugarcrepe_dir
    for f in os.listdir(sugar):
        if f.endswith(".json"):
            for r in json.load(open(os.path.join(sugar, f))).values():
                placeholder_image(str(root / "coco2017" / r["filename"]), seed=len(r["filename"]))
    valse = root / "valse"  # the first 150 records of one real instrument, one image source (keeps it fast)
    valse.mkdir()
    existence = json.load(open(os.path.join(valse_dir, "existence.json")))
    (valse / "existence.json").write_text(json.dumps(dict(list(existence.items())[:150])))
    for r in json.load(open(valse / "existence.json")).values():
        placeholder_image(str(root / "v7w" / r["image_file"]), size=(32, 32))
    vg = [{"image_path": f"{i % 3}.jpg", "bbox_x": i, "bbox_y": 1, "bbox_w": 20, "bbox_h": 18,
           "true_caption": f"the dog is on the table {i}", "false_caption": f"the table is on the dog {i}",
           "relation_name": ["on", "under", "next to"][i % 3], "attributes": ["red", "small"]} for i in range(12)]
    for i in range(3):
        placeholder_image(str(root / "aro" / "images" / f"{i}.jpg"), seed=i)
    (root / "aro" / "visual_genome_relation.json").write_text(json.dumps(vg))
    (root / "aro" / "visual_genome_attribution.json").write_text(json.dumps([dict(r, bbox_y=2) for r in vg]))
    karpathy = [{"image": f"val2014/{i}.jpg", "caption": [f"A small {a} plays with the red ball in the old park {j}."
                                                         for j in range(5)]}
                for i, a in enumerate(["dog", "cat", "man", "dog"] * 3)]
    for i in range(len(karpathy)):
        placeholder_image(str(root / "coco" / "val2014" / f"{i}.jpg"), seed=100 + i)
    (root / "coco" / "coco_karpathy_test.json").write_text(json.dumps(karpathy))
    (root / "lexicon.json").write_text(json.dumps(LEXICON))
    for split, n in (("train", 6), ("test", 3)):
        for c in ("circle", "square", "triangle"):
            for i in range(n):
                placeholder_image(str(root / "shapes" / split / c / f"{i}.png"), seed=hash((split, c, i)) % 1000)
    (root / "shapes" / "zeroshot.json").write_text(json.dumps({"templates": ["a {c}.", "a drawing of a {c}."]}))
    args = ["--sugarcrepe_dir", sugar, "--coco_val2017_dir", str(root / "coco2017"),
            "--valse_dir", str(valse), "--valse_visual7w_dir", str(root / "v7w"),
            "--aro_dir", str(root / "aro"), "--coco_karpathy_test_json", str(root / "coco" / "coco_karpathy_test.json"),
            "--coco_image_root", str(root / "coco"), "--order_pos_lexicon", str(root / "lexicon.json"),
            "--zeroshot_sources", f"shapes={root / 'shapes'}"]
    return {"root": root, "model": model, "data_args": args}


def test_cli_scores_every_task_and_report_compares_runs(world):
    root = world["root"]
    out = root / "run1"
    proc = _run("evaluate_clip.py", "--model_name_or_path", world["model"], "--tasks", "all", "--output_dir", str(out),
                "--cache_dir", str(root / "cache"), "--batch_size", "32", "--no_progress", *world["data_args"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the tables are printed, the row named after the model folder; nothing asks for torchvision
    assert "## Table 3: SugarCrepe" in proc.stdout and "| tiny-clip |" in proc.stdout
    assert "torchvision" not in proc.stderr
    results = json.load(open(out / "results.json"))
    assert set(results) == {"sugarcrepe", "valse", "aro", "zeroshot", "linear_probe", "retrieval"}
    assert set(results["sugarcrepe"]) == {"add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att",
                                          "swap_obj", "replace", "swap", "add", "avg"}
    # VG-Attribution: its only attribute pair has < 25 examples, so ARO's macro mean is empty; no Flickr30k -> no avg
    assert set(results["aro"]) == {"vg_relation", "coco_order"}
    assert "[aro] vg_attribution: not run (no group left for the macro mean" in proc.stdout
    assert {"existence"} <= set(results["valse"]) and "avg" not in results["valse"]
    assert set(results["zeroshot"]) == set(results["linear_probe"]) == {"shapes", "avg"}
    assert {"coco_i2t_r1", "coco_t2i_r10", "coco_rsum"} <= set(results["retrieval"])
    for task, subsets in results.items():
        for name, value in subsets.items():
            if not name.endswith("rsum"):
                assert 0.0 <= value <= 100.0, (task, name, value)
    # counts and reasons are printed and stored
    kept = sum(r["mturk"]["caption"] >= 2 for r in json.load(open(root / "valse" / "existence.json")).values())
    assert f"[valse] existence: scored {kept}, skipped {150 - kept} (mturk.caption < 2: {150 - kept})" in proc.stdout
    assert "[aro] flickr30k_order: not run (no --flickr30k_test_json)" in proc.stdout
    info = json.load(open(out / "run_info.json"))
    for task, t in info["tasks"].items():
        for key, st in t["encoding"].items():
            if st["images_unique"]:
                assert st["encoded_per_unique_image"] == 1.0, (task, key)
    assert info["tasks"]["aro"]["encoding"]["aro_coco_order"]["images_requested"] == 60  # 12 images x 5 captions
    md = open(out / "results.md").read()
    for title in ("Table 2: VALSE", "Table 3: SugarCrepe", "Table 4: ARO", "Table 5: Zero-shot",
                  "Table 6: Linear probe", "Figure 4: Zero-shot retrieval"):
        assert title in md

    # second run, in-process through the script's parser and main(): every feature comes from the cache
    out2 = root / "run2"
    again = run(EVALUATION, ["--model_name_or_path", world["model"], "--tasks", "sugarcrepe,aro,zeroshot",
                             "--output_dir", str(out2), "--cache_dir", str(root / "cache"), "--no_progress",
                             *world["data_args"]])
    assert again == {t: results[t] for t in again} == json.load(open(out2 / "results.json"))
    info2 = json.load(open(out2 / "run_info.json"))
    assert all(st["images_encoded"] == 0 and st["texts_encoded"] == 0 and st["cache_misses"] == 0
               and st["encoded_per_unique_image"] == 1.0
               for t in info2["tasks"].values() for st in t["encoding"].values() if st["images_unique"])

    run(REPORT, ["--runs", str(out), str(out2), "--names", "tiny", "tiny-cached", "--output_dir",
                 str(root / "report")])
    text = open(root / "report" / "report.md").read()
    assert "| tiny |" in text and "| tiny-cached |" in text and "Figure 5" in text
    with open(root / "report" / "tradeoff.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_help_lists_every_data_option():
    text = EVALUATION.parser().format_help()
    for f in EvalDataConfig.__dataclass_fields__:
        assert f"--{f}" in text


def test_cli_rejects_unknown_task(world):
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['nocaps'\]"):
        run(EVALUATION, ["--model_name_or_path", world["model"], "--tasks", "sugarcrepe,nocaps", "--output_dir",
                         str(world["root"] / "bad")])


@pytest.mark.parametrize("args, option", [
    (["--tasks", "sugarcrepe", "--sugarcrepe_dir", "sugar-crepe/typo"], "--sugarcrepe_dir"),
    # a data option is given (so not the embedded default), but not the one the task needs
    (["--tasks", "sugarcrepe", "--coco_val2017_dir", "."], "--sugarcrepe_dir"),
])
def test_cli_requested_task_without_data_exits_nonzero_before_loading(tmp_path, args, option):
    """A requested task that cannot run is an error naming the option, raised before the model is loaded (the
    model path does not even exist) and before anything is written."""
    proc = _run("evaluate_clip.py", "--model_name_or_path", str(tmp_path / "no-model"), "--output_dir",
                str(tmp_path / "out"), *args)
    assert proc.returncode != 0
    assert option in proc.stderr and proc.stderr.strip().startswith("error:"), proc.stderr[-2000:]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tasks, data, message", [
    ("valse,aro", {"aro_dir": "nowhere"}, "--aro_dir: folder not found"),
    ("retrieval", {"coco_karpathy_test_json": "missing.json"}, "--coco_karpathy_test_json: file not found"),
    ("zeroshot", {"zeroshot_sources": ["toys=/no/such/folder"]}, "--zeroshot_sources toys=/no/such/folder"),
    ("linear_probe", {}, "'linear_probe' was asked for but has no data: pass --zeroshot_sources"),
    ("valse", {"valse_dir": "."}, "--valse_dir . holds none of the VALSE files"),
])
def test_requested_task_data_is_checked_first(tasks, data, message):
    from degla.eval import plan_tasks

    with pytest.raises(EvalDataError, match=message):
        plan_tasks(tasks, EvalDataConfig.from_dict(data))


def test_tasks_all_runs_the_tasks_with_data(world, tmp_path):
    """`--tasks all` (the default) runs what has data; with no data at all it is an error."""
    from degla.eval import plan_tasks

    data = EvalDataConfig(sugarcrepe_dir=world["data_args"][1], coco_val2017_dir=world["data_args"][3])
    assert [t.name for t in plan_tasks("all", data)] == ["sugarcrepe"]
    with pytest.raises(EvalDataError, match="no evaluation data"):
        plan_tasks("all", EvalDataConfig())


def test_model_label_names_exports_after_their_run(tmp_path):
    from degla.eval.harness import model_label

    (tmp_path / "runs" / "degla-vitb32" / "clip").mkdir(parents=True)
    assert model_label(str(tmp_path / "runs" / "degla-vitb32" / "clip")) == "degla-vitb32"
    assert model_label(str(tmp_path / "runs" / "degla-vitb32")) == "degla-vitb32"
    assert model_label("openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"


def test_report_rejects_missing_and_malformed_results(tmp_path):
    from degla.eval.report import load_runs

    with pytest.raises(InputError, match="no results.json"):
        load_runs([str(tmp_path)], None)
    (tmp_path / "results.json").write_text("{")
    with pytest.raises(InputError, match="malformed results file"):
        load_runs([str(tmp_path)], None)


def test_missing_image_names_the_file(world, tmp_path):
    sugar = tmp_path / "sugar"
    sugar.mkdir()
    (sugar / "add_att.json").write_text(json.dumps({"0": {"filename": "000000000042.jpg", "caption": "a",
                                                          "negative_caption": "b"}}))
    with pytest.raises(FileNotFoundError, match="000000000042.jpg"):
        evaluate_model(world["model"], "sugarcrepe", {"sugarcrepe_dir": str(sugar), "coco_val2017_dir": str(tmp_path)},
                       cache_dir=None, show_progress=False, verbose=False)


def test_in_memory_model_and_dedup(world, tmp_path):
    from transformers import CLIPModel, CLIPProcessor

    model, processor = CLIPModel.from_pretrained(world["model"]), CLIPProcessor.from_pretrained(world["model"])
    img = placeholder_image(str(tmp_path / "a.png"))
    enc = CLIPFeatureEncoder(model, processor, batch_size=2, cache_dir=str(tmp_path / "cache"), show_progress=False)
    from degla.eval import ImageRef

    feats = enc.encode_images([ImageRef(img), ImageRef(img), ImageRef(img, (0, 0, 10, 10)), ImageRef(img)], task="t")
    assert feats.shape == (4, 16) and feats[0].equal(feats[1]) and not feats[0].equal(feats[2])
    assert enc.stats["t"].images_encoded == 2 and enc.stats["t"].images_unique == 2
    assert abs(float(feats.norm(dim=-1).mean()) - 1) < 1e-5
    text = enc.encode_texts(["a cat", "a dog", "a cat"], task="t")
    assert text[0].equal(text[2]) and enc.stats["t"].texts_encoded == 2
    # changing the weights changes the fingerprint, so the cache is not reused by mistake
    other = CLIPFeatureEncoder(CLIPModel.from_pretrained(world["model"]), processor, cache_dir=str(tmp_path / "cache"))
    assert other.fingerprint == enc.fingerprint
    with __import__("torch").no_grad():
        other.model.logit_scale.add_(1.0)
    other._fingerprint = None
    assert other.fingerprint != enc.fingerprint
    with pytest.raises(EvalDataError, match="'sugarcrepe' was asked for but has no data: pass --sugarcrepe_dir"):
        evaluate_model(model, ["sugarcrepe"], {}, processor=processor, cache_dir=None, verbose=False,
                       show_progress=False)


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("DEGLA_NETWORK_TESTS") != "1",
                    reason="needs the Hugging Face Hub (DEGLA_NETWORK_TESTS=1)")
def test_openai_clip_and_hub_zeroshot_source(tmp_path):
    results = evaluate_model("openai/clip-vit-base-patch32", ["zeroshot"], {"zeroshot_datasets": ["cifar10"]},
                             output_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"))
    assert results["zeroshot"]["cifar10"] > 80  # CLIP ViT-B/32: 86.5 in the paper's table 5


def test_encoder_scores_match_clip_forward(world, tmp_path):
    """The harness's cosine similarities equal CLIPModel.forward's logits_per_image / logit_scale."""
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    from degla.eval import ImageRef

    model, processor = CLIPModel.from_pretrained(world["model"]).eval(), CLIPProcessor.from_pretrained(world["model"])
    paths = [placeholder_image(str(tmp_path / f"{i}.png"), seed=i, size=(40 + i, 36)) for i in range(3)]
    texts = ["a red circle", "two green squares on a table", "a dog"]
    enc = CLIPFeatureEncoder(model, processor, batch_size=2, show_progress=False)
    sims = enc.encode_images([ImageRef(p) for p in paths]) @ enc.encode_texts(texts).T
    with torch.no_grad():  # the encoder's inputs (open_clip preprocessing), through CLIPModel.forward
        pixels = enc.image_processor(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")
        inputs = processor.tokenizer(texts, return_tensors="pt", padding=True)
        logits = model(**inputs, **pixels).logits_per_image / model.logit_scale.exp()
    torch.testing.assert_close(sims, logits, atol=1e-5, rtol=1e-4)
