"""Winoground, SugarCrepe++ and VL-CheckList: the harness against plain transcriptions of their official scoring
code (tests/official_loops.py), item by item, on a tiny random CLIP and real photos (the reference side as in
test_eval_parity.py: torchvision's transform written out, OpenAI's tokenizer, one call per example or batch);
their loaders on every local layout; the tables' wider average; an end-to-end run of scripts/evaluate_clip.py."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from degla.eval import TASKS, CLIPFeatureEncoder, EvalDataConfig, render_markdown
from degla.eval.tables import compositional_average, wider_compositional_average
from degla.eval.tasks import EvalDataError, sugarcrepe, sugarcrepe_pp, vl_checklist, winoground

import official_loops as official
from eval_helpers import SCORE_TOLERANCE, ReferenceCLIP, save_photos, save_tiny_clip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
WINOGROUND = os.path.join(FIXTURES, "winoground")
SUGARCREPE_PP = os.path.join(FIXTURES, "sugarcrepe_pp")
VL_CHECKLIST = os.path.join(FIXTURES, "vl_checklist")
VLC_MISSING = ("VG_100K/9999999.jpg", "gluing_999.jpg", "pic/missing_0001.jpg")  # images the fixture names, absent


def _winoground_records():
    with open(os.path.join(WINOGROUND, "examples.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    pytest.importorskip("skimage", reason="the real photos come from scikit-image (pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp("beyond")
    model_dir = save_tiny_clip(str(root / "tiny-clip"))
    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)

    # Winoground, release layout: examples.jsonl + images/<name>.png (one RGBA image, as some originals are)
    release = root / "winoground" / "data"
    release.mkdir(parents=True)
    shutil.copy(os.path.join(WINOGROUND, "examples.jsonl"), release / "examples.jsonl")
    records = _winoground_records()
    save_photos(str(release / "images"), [f"{r[f'image_{k}']}.png" for r in records for k in (0, 1)])
    first = release / "images" / "ex_0_img_0.png"
    Image.open(first).convert("RGBA").save(first)

    # SugarCrepe++: the shipped records' COCO file names, written with real photos
    names = sorted({r["filename"] for n in sugarcrepe_pp.SUBSETS
                    for r in json.load(open(os.path.join(SUGARCREPE_PP, f"{n}.json")))})
    save_photos(str(root / "coco2017"), names)

    # VL-CheckList: the image folders of the three corpora, with every image the fixture names but VLC_MISSING
    roots = {src: root / "vlc" / src for src in vl_checklist.ROOTS}
    for key, rel, image_root in vl_checklist.files():
        for path, _ in json.load(open(os.path.join(VL_CHECKLIST, "data", rel))):
            if path not in VLC_MISSING and not (roots[image_root] / path).exists():
                save_photos(str((roots[image_root] / path).parent), [os.path.basename(path)])
    data = EvalDataConfig(winoground_dir=str(root / "winoground"), sugarcrepe_pp_dir=SUGARCREPE_PP,
                          coco_val2017_dir=str(root / "coco2017"), vl_checklist_dir=VL_CHECKLIST,
                          **{vl_checklist.ROOTS[s]: str(p) for s, p in roots.items()})
    return {"root": root, "model_dir": model_dir, "model": model, "processor": processor,
            "reference": ReferenceCLIP(model), "data": data, "release": release, "records": records,
            "image_roots": {s: str(p) for s, p in roots.items()}}


def _harness(setup, task, data=None, batch_size=16):
    encoder = CLIPFeatureEncoder(setup["model"], setup["processor"], batch_size=batch_size, show_progress=False,
                                 num_workers=0)
    return TASKS[task].run(encoder, data or setup["data"], seed=0)


# ------------------------------------------------------------------------------------------------------ Winoground
def test_winoground_matches_the_official_notebook_item_by_item(setup):
    result = _harness(setup, "winoground")
    examples = [{**r, **{f"image_{k}": Image.open(setup["release"] / "images" / f"{r[f'image_{k}']}.png")
                         for k in (0, 1)}} for r in setup["records"]]
    reference = official.winoground_clip_scores(setup["reference"], examples)
    ours = result.items["winoground"]
    expected = torch.tensor([[r[k] for k in winoground.SCORE_ORDER] for r in reference])
    assert (ours["scores"] - expected).abs().max() < SCORE_TOLERANCE
    for key, rule in (("text", official.winoground_text_correct), ("image", official.winoground_image_correct),
                      ("group", official.winoground_group_correct)):
        decisions = [rule(r) for r in reference]
        assert ours[key] == decisions, key
        assert result.scores[key] == pytest.approx(100 * np.mean(decisions), abs=0.01)
    assert result.counts["winoground"]["scored"] == 12
    # per-tag breakdown: the notebook's decisions over the examples of each collapsed tag
    for tag in ("Object", "Relation", "Both"):
        idx = [i for i, r in enumerate(setup["records"]) if r["collapsed_tag"] == tag]
        group = [official.winoground_group_correct(reference[i]) for i in idx]
        assert result.details["by_tag"]["collapsed_tag"][tag] == {
            "count": len(idx), "group": round(100 * np.mean(group), 2),
            "text": round(100 * np.mean([official.winoground_text_correct(reference[i]) for i in idx]), 2),
            "image": round(100 * np.mean([official.winoground_image_correct(reference[i]) for i in idx]), 2)}
    # a comma-separated secondary tag counts in each of its tags
    assert result.details["by_tag"]["secondary_tag"]["Symbolic"]["count"] == 2


def _winoground_dataset(setup):
    from datasets import Dataset
    from datasets import Image as ImageFeature

    rows = {c: [r[c] for r in setup["records"]] for c in winoground.COLUMNS}
    for k in (0, 1):
        rows[f"image_{k}"] = [{"bytes": (setup["release"] / "images" / f"{n}.png").read_bytes(), "path": None}
                              for n in rows[f"image_{k}"]]
    ds = Dataset.from_dict(rows)
    return ds.cast_column("image_0", ImageFeature()).cast_column("image_1", ImageFeature())


def test_winoground_local_copies_of_the_hub_layout_score_the_same(setup, tmp_path):
    from datasets import DatasetDict

    reference = _harness(setup, "winoground")
    ds = _winoground_dataset(setup)
    DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "saved"))
    os.makedirs(tmp_path / "parquet" / "data")
    ds.to_parquet(str(tmp_path / "parquet" / "data" / "test-00000-of-00001.parquet"))
    for folder in ("saved", "parquet"):
        data = EvalDataConfig(winoground_dir=str(tmp_path / folder))
        assert TASKS["winoground"].check(data)
        result = _harness(setup, "winoground", data)
        assert result.scores == reference.scores, folder
        assert torch.allclose(result.items["winoground"]["scores"], reference.items["winoground"]["scores"],
                              atol=1e-6), folder


def test_winoground_decisions_by_hand():
    # columns c0_i0, c1_i0, c0_i1, c1_i1
    scores = torch.tensor([[0.9, 0.1, 0.2, 0.8],   # both right
                           [0.9, 0.1, 0.95, 0.8],  # text: 0.8 > 0.95 fails; image: 0.9 > 0.95 fails
                           [0.5, 0.4, 0.1, 0.3],   # text right; image: 0.3 > 0.4 fails
                           [0.5, 0.5, 0.1, 0.9]])  # a tie c0_i0 = c1_i0: text wrong; image right
    out = winoground.decisions(scores)
    assert out["text"].tolist() == [True, False, True, False]
    assert out["image"].tolist() == [True, False, False, True]
    assert out["group"].tolist() == [True, False, False, False]


def test_winoground_decisions_equal_the_notebooks_on_random_scores():
    """The vectorised rules against the notebook's on 2,000 score sets drawn from 3 values, so that every ordering
    and many ties occur (the tiny model's 12 examples have no group success)."""
    scores = torch.from_numpy(np.random.default_rng(0).integers(0, 3, (2000, 4)).astype(np.float32))
    ours = winoground.decisions(scores)
    rows = [dict(zip(winoground.SCORE_ORDER, row)) for row in scores.tolist()]
    for key, rule in (("text", official.winoground_text_correct), ("image", official.winoground_image_correct),
                      ("group", official.winoground_group_correct)):
        assert ours[key].tolist() == [rule(r) for r in rows], key
    assert 100 < ours["group"].sum() < 1900


def test_winoground_data_errors(tmp_path):
    with pytest.raises(EvalDataError, match="one of --winoground_dir and --winoground_hub_id"):
        TASKS["winoground"].check(EvalDataConfig(winoground_dir=str(tmp_path), winoground_hub_id="x/y"))
    with pytest.raises(EvalDataError, match="holds no Winoground data"):
        TASKS["winoground"].check(EvalDataConfig(winoground_dir=str(tmp_path)))
    (tmp_path / "examples.jsonl").write_text(json.dumps({"id": 0, "caption_0": "a"}) + "\n")
    with pytest.raises(ValueError, match=r"line 1 lacks field\(s\) \['image_0'"):
        winoground.load_local(str(tmp_path))


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DEGLA_NETWORK_TESTS") != "1",
                    reason="needs the Hugging Face Hub and access to the gated facebook/winoground "
                           "(DEGLA_NETWORK_TESTS=1)")
def test_winoground_from_the_hub(setup):
    result = _harness(setup, "winoground", EvalDataConfig(winoground_hub_id="facebook/winoground"))
    assert result.counts["winoground"]["scored"] == 400
    assert set(result.details["by_tag"]["collapsed_tag"]) == {"Object", "Relation", "Both"}


# ---------------------------------------------------------------------------------------------------- SugarCrepe++
@pytest.mark.slow
def test_sugarcrepe_pp_matches_the_official_script_item_by_item(setup):
    result = _harness(setup, "sugarcrepe_pp")
    reference = official.sugarcrepe_pp_variants_clip(setup["reference"], SUGARCREPE_PP + "/", setup["data"]
                                                     .coco_val2017_dir)
    assert set(reference) == set(sugarcrepe_pp.SUBSETS)
    for subset, ref in reference.items():
        ours = result.items[subset]
        for j, key in enumerate(("itt", "img_p1", "img_p2", "tot")):
            assert ours[key] == [row[0][j] for row in ref["rows"]], (subset, key)
        expected = torch.tensor([row[1] for row in ref["rows"]])  # the six cosines in the same order
        assert (ours["scores"] - expected).abs().max() < SCORE_TOLERANCE, subset
        assert result.scores[f"{subset}_itt"] == pytest.approx(100 * ref["image-to-text"], abs=0.01)
        assert result.scores[f"{subset}_tot"] == pytest.approx(100 * ref["text-only"], abs=0.01)
        assert result.details[subset]["image_p1_neg"] == pytest.approx(100 * ref["Image-P1-Neg"], abs=0.01)
        assert result.details[subset]["image_p2_neg"] == pytest.approx(100 * ref["Image-P2-Neg"], abs=0.01)
    # a negative equal to the first positive is an exact tie: wrong in ITT, whatever the batch
    assert result.details["swap_obj"]["positive_equals_negative"] == 2
    assert not any(result.items["swap_obj"]["itt"][i] for i in (2, 8))
    s = result.scores
    assert s["itt_replace"] == pytest.approx(np.mean([s["replace_obj_itt"], s["replace_att_itt"],
                                                      s["replace_rel_itt"]]), abs=0.006)
    assert s["itt_avg"] == pytest.approx((s["itt_replace"] + s["itt_swap"]) / 2, abs=0.006)


def test_sugarcrepe_pp_decisions_by_hand():
    e = torch.eye(4)
    img, p1, p2 = e[[0]], (e[[0]] + e[[1]]) / 2 ** 0.5, (e[[0]] + e[[2]]) / 2 ** 0.5
    out = sugarcrepe_pp.subset_decisions(img, p1, p2, e[[3]])  # both positives closer to the image and each other
    assert (out["itt"], out["tot"]) == ([True], [True])
    out = sugarcrepe_pp.subset_decisions(img, p1, e[[0]], p1)  # negative = P1: an exact tie in ITT, wrong
    assert (out["itt"], out["img_p1"], out["img_p2"]) == ([False], [False], [True])


def test_sugarcrepe_pp_data_errors(tmp_path):
    (tmp_path / "swap_obj.json").write_text(json.dumps({"0": {}}))
    with pytest.raises(EvalDataError, match="needs its images: pass --coco_val2017_dir"):
        TASKS["sugarcrepe_pp"].check(EvalDataConfig(sugarcrepe_pp_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="expected a list"):
        sugarcrepe_pp.load_subset(str(tmp_path / "swap_obj.json"), str(tmp_path))


# ---------------------------------------------------------------------------------------------------- VL-CheckList
def _vlc_official(setup, max_num):
    types: dict[str, list[str]] = {}
    for key in official.VL_CHECKLIST_YAML:
        data_type, name = key.rsplit("/", 1)
        types.setdefault(data_type, []).append(name)
    return official.vl_checklist_itc(official.VLChecklistCLIPWrap(setup["reference"]), list(types), types,
                                     VL_CHECKLIST, setup["image_roots"], max_num=max_num)


@pytest.mark.slow
@pytest.mark.parametrize("max_num", [2000, 6])
def test_vl_checklist_matches_the_official_itc_and_its_averages(setup, max_num):
    import dataclasses

    result = _harness(setup, "vl_checklist", dataclasses.replace(setup["data"], vl_checklist_max_num=max_num))
    reference = _vlc_official(setup, max_num)
    assert set(reference) == set(result.items) == {k for k, _, _ in vl_checklist.files()}
    for key, (total_acc, rows) in reference.items():
        ours = result.items[key]
        assert ours["correct"] == [bool(c) for c, _, _ in rows], key
        assert (ours["scores"] - torch.tensor([[p, n] for _, p, n in rows])).abs().max() < SCORE_TOLERANCE, key
        assert result.details["files"][key] == round(100 * total_acc, 2)
    if max_num == 6:  # the first MAX_NUM / 2 = 3 entries with an image
        assert max(len(v["correct"]) for v in result.items.values()) == 3
    else:
        assert sum(c["skip_reasons"].get("image not found under --vl_checklist_vg_dir", 0)
                   for c in result.counts.values()) > 0
    types, groups = official.vl_checklist_score({k: acc for k, (acc, _) in reference.items()})
    ours_by_corpus = {"large": "size_large", "medium": "size_medium", "small": "size_small",
                      "center": "location_center", "mid": "location_mid", "margin": "location_margin",
                      "color": "attribute_color", "material": "attribute_material", "action_a": "attribute_action",
                      "size": "attribute_size", "state": "attribute_state", "action_r": "relation_action",
                      "spatial": "relation_spatial"}
    for item, score in types.items():
        assert result.scores[ours_by_corpus[item]] == pytest.approx(100 * score, abs=0.006), item
    for group, score in groups.items():
        assert result.scores[group.lower()] == pytest.approx(100 * score, abs=0.006), group
    assert result.scores["avg"] == pytest.approx(100 * np.mean(list(groups.values())), abs=0.006)


def test_vl_checklist_without_a_corpus_folder_leaves_its_files_out(setup):
    import dataclasses

    data = dataclasses.replace(setup["data"], vl_checklist_hake_dir=None, vl_checklist_swig_dir=None)
    result = _harness(setup, "vl_checklist", data)
    assert result.skipped["Relation_action_hake"] == "no --vl_checklist_hake_dir"
    assert "attribute" in result.scores and "relation_spatial" in result.scores
    assert not {"object", "relation", "relation_action", "avg"} & set(result.scores)


def test_vl_checklist_data_errors(tmp_path):
    with pytest.raises(EvalDataError, match="holds none of the VL-CheckList files"):
        TASKS["vl_checklist"].check(EvalDataConfig(vl_checklist_dir=str(tmp_path)))
    with pytest.raises(EvalDataError, match="needs its images"):
        TASKS["vl_checklist"].check(EvalDataConfig(vl_checklist_dir=VL_CHECKLIST))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([["a.jpg", {"POS": [], "NEG": ["x"]}]]))
    with pytest.raises(ValueError, match="entry 0 should be"):
        vl_checklist.load_file(str(bad), str(tmp_path), 2000)


# ------------------------------------------------------------------------------------------------ tables and CLI
def test_wider_average_is_beside_the_papers():
    runs = {"m": {"valse": {"avg": 60.0}, "sugarcrepe": {"avg": 70.0}, "aro": {"avg": 80.0},
                  "sugarcrepe_pp": {"itt_avg": 40.0}, "vl_checklist": {"avg": 75.0},
                  "winoground": {"text": 30.0, "image": 10.0, "group": 8.0}},
            "paper-only": {"valse": {"avg": 60.0}, "sugarcrepe": {"avg": 70.0}, "aro": {"avg": 80.0}}}
    assert compositional_average(runs["m"]) == 70.0  # the paper's average is unchanged
    assert wider_compositional_average(runs["m"]) == 65.0  # Winoground has no average and stays out
    md = render_markdown(runs)
    assert "| m | 70.0 | - | 65.0 |" in md and "| paper-only | 70.0 | - | 70.0 (valse + sugarcrepe + aro only) |" in md
    assert "## Winoground (beyond the paper)" in md and "| m | 30.0 | 10.0 | 8.0 |" in md


@pytest.mark.slow
def test_cli_scores_the_new_benchmarks_end_to_end(setup, tmp_path, sugarcrepe_dir):
    d = setup["data"]
    out = tmp_path / "run"
    args = ["--model_name_or_path", setup["model_dir"], "--tasks", "sugarcrepe,winoground,sugarcrepe_pp,vl_checklist",
            "--output_dir", str(out), "--cache_dir", "none", "--no_progress", "--num_workers", "0",
            "--sugarcrepe_dir", sugarcrepe_dir, "--coco_val2017_dir", str(tmp_path / "coco"),
            "--winoground_dir", d.winoground_dir, "--sugarcrepe_pp_dir", d.sugarcrepe_pp_dir,
            "--vl_checklist_dir", d.vl_checklist_dir, "--vl_checklist_vg_dir", d.vl_checklist_vg_dir,
            "--vl_checklist_swig_dir", d.vl_checklist_swig_dir, "--vl_checklist_hake_dir", d.vl_checklist_hake_dir]
    shutil.copytree(d.coco_val2017_dir, tmp_path / "coco")
    names = {r["filename"] for n in sugarcrepe.SUBSETS
             for r in json.load(open(os.path.join(sugarcrepe_dir, f"{n}.json"))).values()}
    save_photos(str(tmp_path / "coco"), sorted(names - set(os.listdir(tmp_path / "coco"))))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "evaluate_clip.py"), *args],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"sugarcrepe", "winoground", "sugarcrepe_pp", "vl_checklist"}
    assert {"text", "image", "group"} <= set(results["winoground"])
    assert {"itt_avg", "tot_avg", "swap_obj_itt"} <= set(results["sugarcrepe_pp"])
    assert {"object", "attribute", "relation", "avg"} <= set(results["vl_checklist"])
    md = (out / "results.md").read_text()
    for title in ("Winoground (beyond the paper)", "SugarCrepe++ (beyond the paper)",
                  "VL-CheckList (beyond the paper)", "Wider compositional avg."):
        assert title in md
    info = json.loads((out / "run_info.json").read_text())
    assert "by_tag" in info["tasks"]["winoground"]["details"]
