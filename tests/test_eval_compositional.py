"""The field's compositional suite (`--tasks compositional`): What'sUp, ... against plain transcriptions of their
official scoring code (tests/official_loops.py), item by item, on a tiny random CLIP and real photos (the reference
side as in test_eval_parity.py: torchvision's transform written out, OpenAI's tokenizer, the official batching);
their loaders and data errors; the report's field-suite table; `--tasks compositional` end to end."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from transformers import CLIPModel, CLIPProcessor

from degla.eval import TASKS, CLIPFeatureEncoder, EvalDataConfig, evaluate_model, plan_tasks, render_markdown
from degla.eval.tables import compositional_average
from degla.eval.tasks import EvalDataError, crepe, whatsup
from degla.eval.tasks.common import load_metric

import official_loops as official
from eval_helpers import SCORE_TOLERANCE, ReferenceCLIP, save_photos, save_tiny_clip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
WHATSUP = os.path.join(FIXTURES, "whatsup")
WHATSUP_NAMES = {"controlled_a": "Controlled_Images_A", "controlled_b": "Controlled_Images_B",
                 "coco_one": "COCO_QA_one_obj", "coco_two": "COCO_QA_two_obj", "vg_one": "VG_QA_one_obj",
                 "vg_two": "VG_QA_two_obj"}


def _write_whatsup(repo) -> str:
    """The official layout: <repo>/data/*.json beside controlled_images/, controlled_clevr/, val2017/, vg_images/,
    real photos under every path the fixture names."""
    data = repo / "data"
    data.mkdir(parents=True)
    for file, folder, kind in whatsup.SUBSETS.values():
        shutil.copy(os.path.join(WHATSUP, file), data / file)
        records = json.load(open(data / file))
        if kind in whatsup.PAIRS:
            names = [r["image_path"].split("/")[-1] for r in records]
        else:
            names = [f"{str(r[0]).zfill(12)}.jpg" if kind == "coco" else f"{r[0]}.jpg" for r in records]
        save_photos(str(data / folder), sorted(set(names)))  # COCO-QA one and two share ids: same files again
    return str(data)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    pytest.importorskip("skimage", reason="the real photos come from scikit-image (pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp("compositional")
    model_dir = save_tiny_clip(str(root / "tiny-clip"))
    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    whatsup_dir = _write_whatsup(root / "whatsup_vlms")
    data = EvalDataConfig(whatsup_dir=whatsup_dir)
    return {"root": root, "model_dir": model_dir, "model": model, "processor": processor,
            "reference": ReferenceCLIP(model), "data": data, "whatsup_repo": str(root / "whatsup_vlms")}


def _harness(setup, task, data=None, batch_size=16):
    encoder = CLIPFeatureEncoder(setup["model"], setup["processor"], batch_size=batch_size, show_progress=False,
                                 num_workers=0)
    return TASKS[task].run(encoder, data or setup["data"], seed=0)


@pytest.fixture(scope="module")
def whatsup_result(setup):
    return _harness(setup, "whatsup")


# -------------------------------------------------------------------------------------------------------- What'sUp
def test_whatsup_matches_the_official_code_item_by_item(setup, whatsup_result):
    result = whatsup_result
    for subset, name in WHATSUP_NAMES.items():
        dataset, cases = official.whatsup_cases(name, setup["data"].whatsup_dir, setup["whatsup_repo"])
        scores = official.aro_retrieval_scores_batched(setup["reference"], cases, batch_size=5)
        if subset.startswith("controlled"):
            ref = official.whatsup_controlled_evaluate_scores(dataset, name[-1], scores)
            assert result.scores[f"{subset}_pair"] == pytest.approx(ref["Pair accuracy"], abs=0.006), subset
            assert result.scores[f"{subset}_set"] == pytest.approx(ref["Set accuracy"], abs=0.006), subset
        else:
            ref = official.whatsup_qa_evaluate_scores(dataset, name, scores)
        ours = result.items[subset]
        assert ours["correct"] == ref["correct"].tolist(), subset
        assert (ours["scores"] - torch.from_numpy(scores[:, 0])).abs().max() < SCORE_TOLERANCE, subset
        assert result.scores[subset] == pytest.approx(ref["Accuracy"], abs=0.006), subset
        assert result.details["by_preposition"][subset] == {
            str(r["Preposition"]): {"accuracy": round(100 * float(r["Accuracy"]), 2), "count": int(r["Count"])}
            for r in ref["records"]}, subset
        assert result.counts[subset]["scored"] == len(dataset)
    s = result.scores
    for group, (a, b) in whatsup.GROUPS.items():  # table 1's macro-averages
        assert s[group] == pytest.approx((s[a] + s[b]) / 2, abs=0.006), group
    assert s["avg"] == pytest.approx(np.mean([s["whatsup"], s["coco_spatial"], s["gqa_spatial"]]), abs=0.006)


@pytest.mark.parametrize("subset", ["controlled_a", "controlled_b"])
def test_whatsup_pair_and_set_keying_equals_the_officials_on_random_scores(subset):
    """Pair and set accuracy from file-name keys, against `evaluate_scores`, on 100 score draws from 3 values (every
    ordering and many ties, so that pairs and sets are often right) over the fixture's shuffled records."""
    name = WHATSUP_NAMES[subset]
    dataset = json.load(open(os.path.join(WHATSUP, official.WHATSUP_FILES[name])))
    keys = [d["image_path"] for d in dataset]
    rng = np.random.default_rng(0)
    metric = load_metric("multiple_choice_accuracy")
    seen_sets = 0
    for _ in range(100):
        scores = rng.integers(0, 3, (len(dataset), 1, 4)).astype(np.float32)
        ref = official.whatsup_controlled_evaluate_scores(dataset, name[-1], scores)
        correct = metric.compute(scores=scores[:, 0].tolist(), labels=[0] * len(dataset), tie_break="lenient",
                                 return_correct=True)["correct"]
        assert correct == ref["correct"].tolist()  # argmax == 0: a tie with the first caption is right
        pair, full_set = whatsup.pair_and_set_accuracy(keys, correct, whatsup.SUBSETS[subset][2])
        assert (pair, full_set) == (ref["Pair accuracy"], ref["Set accuracy"])
        seen_sets += full_set > 0
    assert seen_sets > 3


def test_whatsup_keys_sets_by_the_first_and_last_parts_of_the_file_name():
    assert whatsup.set_key("data/controlled_images/beer-bottle_left_of_armchair.jpeg") == (
        ("beer-bottle", "armchair"), "left")
    assert whatsup.set_key("data/controlled_clevr/cube_in-front_of_sphere.jpeg") == (("cube", "sphere"), "in-front")
    # one set right in full, the other with only its left/right pair: 3 pairs of 4, 1 set of 2
    keys = [f"data/controlled_images/{o}_{r}_table.jpeg" for o in ("mug", "cup")
            for r in ("on", "under", "left_of", "right_of")]
    assert whatsup.pair_and_set_accuracy(keys, [True] * 4 + [False, True, True, True], "A") == (75.0, 50.0)


def test_whatsup_reads_coco_from_coco_val2017_dir_and_skips_what_is_missing(setup, whatsup_result, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for subset in ("coco_one", "controlled_b"):
        shutil.copy(os.path.join(WHATSUP, whatsup.SUBSETS[subset][0]), data_dir)
    data = EvalDataConfig(whatsup_dir=str(data_dir),
                          coco_val2017_dir=os.path.join(setup["data"].whatsup_dir, "val2017"))
    assert TASKS["whatsup"].check(data)
    result = _harness(setup, "whatsup", data)
    assert result.items["coco_one"]["correct"] == whatsup_result.items["coco_one"]["correct"]
    assert "controlled_clevr not found (--whatsup_dir)" in result.skipped["controlled_b"]
    assert result.skipped["vg_two"].endswith("vg_qa_two_obj.json not found")
    assert "whatsup" not in result.scores and "avg" not in result.scores


def test_whatsup_data_errors(tmp_path):
    with pytest.raises(EvalDataError, match="holds none of the What'sUp files"):
        TASKS["whatsup"].check(EvalDataConfig(whatsup_dir=str(tmp_path)))
    with pytest.raises(EvalDataError, match="--whatsup_dir: folder not found"):
        TASKS["whatsup"].check(EvalDataConfig(whatsup_dir=str(tmp_path / "nope")))
    (tmp_path / "controlled_images_dataset.json").write_text(json.dumps([{"image_path": "a.jpeg",
                                                                          "caption_options": ["x", "y"]}]))
    with pytest.raises(ValueError, match=r"record 0 should be .*\[4 captions\]"):
        whatsup.load_subset(str(tmp_path / "controlled_images_dataset.json"), str(tmp_path), "A")


# -------------------------------------------------------------------------------- --tasks compositional, the report
def test_tasks_compositional_runs_every_compositional_benchmark_with_data(setup, sugarcrepe_dir, tmp_path):
    data = EvalDataConfig(whatsup_dir=setup["data"].whatsup_dir, sugarcrepe_dir=sugarcrepe_dir,
                          coco_val2017_dir=str(tmp_path), zeroshot_sources=[f"shapes={tmp_path}"])
    assert [t.name for t in plan_tasks("compositional", data)] == ["sugarcrepe", "whatsup"]
    assert [t.name for t in plan_tasks("compositional,zeroshot", data)] == ["sugarcrepe", "zeroshot", "whatsup"]
    assert {n for n, t in TASKS.items() if t.suite} >= {"valse", "sugarcrepe", "aro", "winoground", "sugarcrepe_pp",
                                                         "vl_checklist", "whatsup"}
    assert not TASKS["zeroshot"].suite and not TASKS["retrieval"].suite
    with pytest.raises(EvalDataError, match="--tasks compositional: no compositional benchmark has data"):
        plan_tasks("compositional", EvalDataConfig(zeroshot_sources=[f"shapes={tmp_path}"]))
    with pytest.raises(EvalDataError, match="unknown task.*'compositonal'.*or 'compositional'"):
        plan_tasks("compositonal", data)


def test_field_suite_table_has_one_column_per_benchmark_headline():
    runs = {"m": {"valse": {"avg": 60.0}, "sugarcrepe": {"avg": 70.0}, "aro": {"avg": 80.0},
                  "winoground": {"text": 30.0, "image": 10.0, "group": 8.0}, "whatsup": {"avg": 41.25, "vg_one": 3.0},
                  "zeroshot": {"avg": 50.0}},
            "paper-only": {"valse": {"avg": 61.0}, "sugarcrepe": {"avg": 71.0}, "aro": {"avg": 81.0}}}
    rows = _table(render_markdown(runs), "Field suite: compositional benchmarks (headline scores)")
    assert rows[0] == ["Model", "VALSE", "SugarCrepe", "ARO", "Winoground text", "Winoground image",
                       "Winoground group", "What'sUp"]
    assert rows[1:] == [["m", "60.0", "70.0", "80.0", "30.0", "10.0", "8.0", "41.2"],
                        ["paper-only", "61.0", "71.0", "81.0", "-", "-", "-", "-"]]
    assert compositional_average(runs["m"]) == 70.0  # figure 5's average stays the paper's
    assert "| m | 70.0 | 50.0 |" in render_markdown(runs).split("## Figure 5")[1]
    # the paper's three alone: figure 5 already shows them, no field-suite table
    assert "Field suite" not in render_markdown({"paper-only": runs["paper-only"]})


def _table(markdown: str, title: str) -> list[list[str]]:
    block = markdown.split(f"## {title}\n", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block.strip().splitlines()]
    return [rows[0]] + rows[2:]  # header, then the data rows


# ----------------------------------------------------------------------------------------------------------- CREPE
CREPE = os.path.join(FIXTURES, "crepe")
CREPE_VG_100K_2 = {2412345, 2315555}  # the ids written under VG_100K_2/ (the others under VG_100K/)


def _crepe_images(vg_dir) -> None:
    import csv

    ids = {int(row["image_id"]) for folder, _, names in os.walk(CREPE) for name in names if name.endswith(".csv")
           for row in csv.DictReader(open(os.path.join(folder, name)))}
    for image_id in sorted(ids):
        folder = "VG_100K_2" if image_id in CREPE_VG_100K_2 else "VG_100K"
        save_photos(str(vg_dir / folder), [f"{image_id}.jpg"])


@pytest.fixture(scope="module")
def crepe_data(setup):
    vg_dir = setup["root"] / "vg"
    _crepe_images(vg_dir)
    return EvalDataConfig(crepe_dir=CREPE, crepe_vg_dir=str(vg_dir), crepe_train_dataset="laion")


def test_crepe_matches_the_official_evaluation_item_by_item(setup, crepe_data):
    result = _harness(setup, "crepe", crepe_data)
    vg_paths = [os.path.join(crepe_data.crepe_vg_dir, f) for f in ("VG_100K", "VG_100K_2")]
    runs = [("systematicity", t, f"{s}_compounds", f"syst_{s}_{t}") for s in ("seen", "unseen")
            for t in ("atom", "comp", "combined")]
    runs += [("productivity", t, c, f"prod_{t}_{c}") for t in ("atom", "swap", "negate") for c in range(4, 13)]
    for compo_type, hard_neg_type, split, key in runs:
        input_dir = os.path.join(CREPE, "syst_hard_negatives" if compo_type == "systematicity" else
                                 "prod_hard_negatives")
        path, hard_neg_key = official.crepe_gather_params(input_dir, compo_type, hard_neg_type, split)
        metrics, scores = official.crepe_evaluate(setup["reference"], path, hard_neg_key, vg_paths)
        ours = result.details["files"][key]
        for k in (1, 3, 5, 10):
            assert ours[f"R@{k}"] == pytest.approx(100 * metrics[f"image_to_text_R@{k}"], abs=0.006), (key, k)
        assert ours["mean_rank"] == pytest.approx(metrics["image_to_text_mean_rank"], abs=1e-4), key
        assert ours["median_rank"] == metrics["image_to_text_median_rank"], key
        assert result.scores[key] == ours["R@1"]
        for mine, theirs in zip(result.items[key]["scores"], scores):
            assert (mine - theirs).abs().max() < SCORE_TOLERANCE, key
    s = result.scores
    assert s["prod_swap"] == pytest.approx(np.mean([s[f"prod_swap_{c}"] for c in range(4, 13)]), abs=0.006)
    assert s["prod"] == pytest.approx(np.mean([s["prod_atom"], s["prod_swap"], s["prod_negate"]]), abs=0.006)
    assert s["syst"] == pytest.approx(np.mean([s[k] for *_, k in runs[:6]]), abs=0.006)
    assert 0 < s["prod"] < 100  # the tiny model ranks some captions first and some not


def test_crepe_rank_counts_strictly_higher_negatives_and_ties_favour_the_caption():
    assert crepe.rank_metrics([0, 0, 1, 4, 12]) == {"mean_rank": 4.4, "median_rank": 2.0, "R@1": 40.0, "R@3": 60.0,
                                                    "R@5": 80.0, "R@10": 80.0}
    e = torch.eye(3)
    img = (e[0] + e[1]) / 2 ** 0.5

    class Encoder:
        def encode_images(self, refs, task):
            return img.expand(len(refs), 3)

        def encode_texts(self, texts, task):
            return torch.stack([e[0] if t in ("cap", "same") else e[2] if t == "far" else img for t in texts])

    _, ranks = crepe.caption_ranks(Encoder(), [None, None], [["cap", "far", "same"], ["cap", "close", "far"]])
    assert ranks == [0, 1]  # a negative scoring the same as the caption does not push it down


def test_crepe_without_train_dataset_runs_productivity_only(setup, crepe_data):
    import dataclasses

    data = dataclasses.replace(crepe_data, crepe_train_dataset=None)
    assert TASKS["crepe"].check(data)
    result = _harness(setup, "crepe", data)
    assert "cc12m, yfcc or laion" in result.skipped["systematicity"]
    assert "prod" in result.scores and not any(k.startswith("syst") for k in result.scores)


def test_crepe_data_errors(tmp_path, crepe_data):
    import dataclasses

    with pytest.raises(EvalDataError, match="holds none of the CREPE files"):
        TASKS["crepe"].check(EvalDataConfig(crepe_dir=str(tmp_path), crepe_vg_dir=str(tmp_path)))
    with pytest.raises(EvalDataError, match="needs its images: pass --crepe_vg_dir"):
        TASKS["crepe"].check(EvalDataConfig(crepe_dir=CREPE))
    with pytest.raises(EvalDataError, match="--crepe_train_dataset must be one of cc12m, yfcc, laion"):
        TASKS["crepe"].check(dataclasses.replace(crepe_data, crepe_train_dataset="laion2b"))
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,caption,x,y,width,height,hard_negs\n1,a dog,0,0,5,5,not a list\n")
    with pytest.raises(ValueError, match="row 0: hard_negs is not a Python list literal"):
        crepe.load_file(str(bad), "hard_negs", crepe_data.crepe_vg_dir)
    bad.write_text("image_id,caption,x,y,width,height,hard_negs\n77,a dog,0,0,5,5,[]\n")
    with pytest.raises(FileNotFoundError, match="id 77 is not found"):
        crepe.load_file(str(bad), "hard_negs", crepe_data.crepe_vg_dir)
    bad.write_text("image_id,caption,x,y,w,h,hard_negs\n")
    with pytest.raises(ValueError, match=r"no column\(s\) \['width', 'height'\]"):
        crepe.load_file(str(bad), "hard_negs", crepe_data.crepe_vg_dir)


# -------------------------------------------------------------------------------------------------------- MMVP-VLM
MMVP_VLM = os.path.join(FIXTURES, "mmvp_vlm")


class MemoReference:
    """The reference CLIP with each call's result remembered by its inputs (the fixture repeats images and
    statements, and the official loop encodes every pair anew): the same outputs, fewer forward passes."""

    def __init__(self, reference):
        self.reference, self.memo = reference, {}

    def encode_image(self, images):
        key = ("image", *(im.tobytes() for im in images))
        return self.memo[key] if key in self.memo else self.memo.setdefault(key, self.reference.encode_image(images))

    def encode_text(self, texts):
        key = ("text", *texts)
        return self.memo[key] if key in self.memo else self.memo.setdefault(key, self.reference.encode_text(texts))


@pytest.fixture(scope="module")
def mmvp_dir(setup):
    import csv

    from eval_helpers import placeholder_image

    folder = setup["root"] / "mmvp_vlm"
    shutil.copytree(MMVP_VLM, folder)
    rows = list(csv.reader(open(folder / "Questions.csv")))[1:]
    for (qid, qtype, _), (qid2, _, _) in zip(rows[::2], rows[1::2]):  # both images under the first row's Type
        for q in (qid, qid2):
            placeholder_image(str(folder / "MLLM_VLM Images" / qtype / f"{q}.jpg"), seed=int(q) % 10)
    return str(folder)


def test_mmvp_vlm_matches_the_official_script_item_by_item(setup, mmvp_dir):
    from degla.eval.tasks import mmvp_vlm

    result = _harness(setup, "mmvp_vlm", EvalDataConfig(mmvp_vlm_dir=mmvp_dir))
    scale = float(setup["model"].logit_scale.detach().exp())
    accuracies, rows = official.mmvp_vlm_benchmark_model(MemoReference(setup["reference"]), mmvp_dir, scale)
    ours = result.items["mmvp_vlm"]
    assert [tuple(q) for q in ours["qids"]] == [(r[0], r[1]) for r in rows]
    assert ours["picks_first"].tolist() == [[r[2] == "img1", r[3] == "img1"] for r in rows]
    assert ours["right"] == [r[2] == r[4] and r[3] == r[5] for r in rows]
    for category, key in zip(mmvp_vlm.CATEGORIES, mmvp_vlm.KEYS):
        assert result.scores[key] == pytest.approx(accuracies[category], abs=0.006), key
    assert result.scores["avg"] == pytest.approx(np.mean(list(accuracies.values())), abs=0.006)
    assert 0 < sum(ours["right"]) < 135


def test_mmvp_vlm_data_errors(tmp_path, mmvp_dir):
    from degla.eval.tasks import mmvp_vlm

    with pytest.raises(EvalDataError, match="one of --mmvp_vlm_dir and --mmvp_vlm_hub_id"):
        TASKS["mmvp_vlm"].check(EvalDataConfig(mmvp_vlm_dir=mmvp_dir, mmvp_vlm_hub_id="MMVP/MMVP_VLM"))
    with pytest.raises(EvalDataError, match="is not an MMVP-VLM folder"):
        TASKS["mmvp_vlm"].check(EvalDataConfig(mmvp_vlm_dir=str(tmp_path)))
    (tmp_path / "Questions.csv").write_text("Question ID,Type,Statement\n1,Color,a red car\nx,Color,a blue car\n")
    (tmp_path / "MMVP_VLM_Images").mkdir()  # the README's folder name is accepted too
    assert TASKS["mmvp_vlm"].check(EvalDataConfig(mmvp_vlm_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="rows 2-3 should be"):
        mmvp_vlm.load_pairs(str(tmp_path))


# ----------------------------------------------------------------------------------------------------------- BiVLC
BIVLC = os.path.join(FIXTURES, "bivlc")


def _photo_bytes(photo) -> dict:
    """A real photo, shrunk to at most 160 px (cheap to decode), as the bytes of a `datasets` Image."""
    import io

    buffer = io.BytesIO()
    photo = photo.convert("RGB")
    photo.thumbnail((160, 160))
    photo.save(buffer, format="JPEG", quality=90)
    return {"bytes": buffer.getvalue(), "path": None}


def _hub_copies(folder, rows: dict, image_columns: tuple[str, ...]) -> dict:
    """A Hub dataset's layout from its columns (images as `datasets` Image bytes): a save_to_disk DatasetDict with
    a `test` split and the parquet file of that split."""
    from datasets import Dataset, DatasetDict
    from datasets import Image as ImageFeature

    ds = Dataset.from_dict(rows)
    for column in image_columns:
        ds = ds.cast_column(column, ImageFeature())
    DatasetDict({"test": ds}).save_to_disk(str(folder / "saved"))
    os.makedirs(folder / "parquet" / "data")
    ds.to_parquet(str(folder / "parquet" / "data" / "test-00000-of-00001.parquet"))
    return {"dataset": ds, "saved": str(folder / "saved"), "parquet": str(folder / "parquet")}


@pytest.fixture(scope="module")
def small_photos():
    from eval_helpers import real_photos

    return [_photo_bytes(photo) for photo in list(real_photos().values())[:8]]


@pytest.fixture(scope="module")
def bivlc_copies(setup, small_photos):
    """The Hub layout of imirandam/BiVLC from the fixture's rows."""
    records = [json.loads(line) for line in open(os.path.join(BIVLC, "records.jsonl"))]
    rows = {"image": [small_photos[i % 4] for i in range(len(records))],
            "caption": [r["caption"] for r in records], "negative_caption": [r["negative_caption"] for r in records],
            "negative_image": [small_photos[4 + i % 4] for i in range(len(records))],
            "type": [r["type"] for r in records], "subtype": [r["subtype"] for r in records]}
    return _hub_copies(setup["root"] / "bivlc", rows, ("image", "negative_image"))


def test_bivlc_matches_the_official_evaluation_item_by_item(setup, bivlc_copies):
    from degla.eval.tasks import bivlc

    result = _harness(setup, "bivlc", EvalDataConfig(bivlc_dir=bivlc_copies["saved"]))
    reference = official.bivlc_main(setup["reference"], bivlc_copies["dataset"], batch_size=5)
    ours = result.items["bivlc"]
    assert (ours["scores"] - reference["scores"]).abs().max() < SCORE_TOLERANCE
    names = dict(zip(bivlc.DECISIONS, ("I2T", "T2I", "group_score", "Ipos_2T", "Ineg_2T", "Tpos_2I", "Tneg_2I")))
    for key, name in names.items():
        assert ours[key] == reference["decisions"][name], key
        assert result.scores[key] == pytest.approx(reference["overall"][name], abs=0.006), key
        for t in bivlc.TYPES:
            assert result.scores[f"{t}_{key}"] == pytest.approx(reference["per_type"][t][name], abs=0.006), (t, key)
    assert result.details["type_counts"] == {"add": 4, "replace": 5, "swap": 3}
    # the parquet copy scores the same
    again = _harness(setup, "bivlc", EvalDataConfig(bivlc_dir=bivlc_copies["parquet"]))
    assert again.scores == result.scores


def test_bivlc_decisions_equal_the_officials_on_random_scores():
    from degla.eval.tasks import bivlc

    scores = torch.from_numpy(np.random.default_rng(1).integers(0, 3, (500, 4)).astype(np.float32))
    ours = bivlc.decisions(scores)
    out, _ = official.bivlc_evaluate(_FixedScores(scores), {"image_0": 0, "image_1": 1, "caption_0": 0,
                                                            "caption_1": 1})
    for key, values in zip(("i2t", "t2i", "group", "ipos_2t", "ineg_2t", "tpos_2i", "tneg_2i"), out):
        assert ours[key].tolist() == [bool(v) for v in values], key
    assert 20 < ours["group"].sum() < 480


class _FixedScores:
    """A 'model' whose embeddings give `evaluate_BiVLC` chosen scores: images e0 and e1 of a 2-d space per row,
    captions holding the row's scores (s(c0,i0), s(c0,i1)) and (s(c1,i0), s(c1,i1)); the diagonal of the
    caption @ image products is then exactly those scores."""

    def __init__(self, scores):
        self.scores = scores  # [N, 4] in winoground's order c0_i0, c1_i0, c0_i1, c1_i1

    def encode_image(self, which):
        n = len(self.scores)
        return torch.zeros(n, 2 * n).index_put_((torch.arange(n), 2 * torch.arange(n) + which), torch.tensor(1.0))

    def encode_text(self, which):
        n, s = len(self.scores), self.scores
        out = torch.zeros(n, 2 * n)
        i0, i1 = (s[:, 0], s[:, 2]) if which == 0 else (s[:, 1], s[:, 3])
        out[torch.arange(n), 2 * torch.arange(n)], out[torch.arange(n), 2 * torch.arange(n) + 1] = i0, i1
        return out


# ------------------------------------------------------------------------------------------------------------ SPEC
SPEC = os.path.join(FIXTURES, "spec")


@pytest.fixture(scope="module")
def spec_dir(setup):
    from degla.eval.tasks import spec

    from eval_helpers import placeholder_image

    folder = setup["root"] / "spec" / "data"  # the subsets under data/, as some unpackings leave them
    shutil.copytree(SPEC, folder)
    for n, subset in enumerate(spec.SUBSETS):
        i2t = json.load(open(folder / subset / "image2text.json"))
        t2i = json.load(open(folder / subset / "text2image.json"))
        for k, rel in enumerate([s["query"] for s in i2t] + [p for s in t2i for p in s["keys"]]):
            placeholder_image(str(folder / subset / rel), seed=100 * n + k)
    return str(folder.parent)


def test_spec_matches_the_official_evaluation_item_by_item(setup, spec_dir):
    from degla.eval.tasks import spec

    result = _harness(setup, "spec", EvalDataConfig(spec_dir=spec_dir))
    reference, i2t, t2i = official.spec_eval(setup["reference"], os.path.join(spec_dir, "data"), spec.SUBSETS,
                                             batch_size=2)
    for subset, ref in reference.items():
        for direction in ("i2t", "t2i"):
            ours = result.items[f"{subset}_{direction}"]
            theirs = ref["scores"][f"{direction}_scores"]
            assert (torch.stack(ours["scores"]) - theirs).abs().max() < SCORE_TOLERANCE, (subset, direction)
            assert ours["correct"] == (theirs.argmax(dim=-1) == torch.tensor(ours["labels"])).tolist()
            assert result.scores[f"{subset}_{direction}"] == pytest.approx(
                ref["accuracy"][f"{direction}_accuracy"], abs=0.006), (subset, direction)
    assert result.scores["i2t"] == pytest.approx(i2t, abs=0.006)
    assert result.scores["t2i"] == pytest.approx(t2i, abs=0.006)


def test_spec_ties_go_to_the_first_maximum_as_torch_argmax(tmp_path):
    from degla.eval.tasks import spec

    e = torch.eye(3)

    class Encoder:
        def encode_images(self, refs, task):
            return e[[0] * len(refs)]

        def encode_texts(self, texts, task):
            return torch.stack([e[0] if t.startswith("same") else e[1] for t in texts])

    (tmp_path / "existence").mkdir()
    (tmp_path / "existence" / "image2text.json").write_text(json.dumps([
        {"query": "a.jpg", "keys": ["other", "same 1", "same 2"], "label": 1},
        {"query": "a.jpg", "keys": ["other", "same 1", "same 2"], "label": 2}]))
    (tmp_path / "existence" / "text2image.json").write_text("[]")
    result = spec.run(Encoder(), EvalDataConfig(spec_dir=str(tmp_path)))
    assert result.items["existence_i2t"]["correct"] == [True, False]  # the first of two equal maxima wins
    assert "absolute_size" in result.skipped and "i2t" not in result.scores
    assert result.skipped["existence_t2i"] == "no sample"


def test_spec_data_errors(tmp_path):
    from degla.eval.tasks import spec

    with pytest.raises(EvalDataError, match="one of --spec_dir and --spec_hub_id"):
        TASKS["spec"].check(EvalDataConfig(spec_dir=str(tmp_path), spec_hub_id="wjpoom/SPEC"))
    with pytest.raises(EvalDataError, match="holds none of the SPEC subsets"):
        TASKS["spec"].check(EvalDataConfig(spec_dir=str(tmp_path)))
    (tmp_path / "count").mkdir()
    (tmp_path / "count" / "image2text.json").write_text(json.dumps([{"query": "a.jpg", "keys": ["x"], "label": 3}]))
    (tmp_path / "count" / "text2image.json").write_text("[]")
    with pytest.raises(ValueError, match="sample 0 should be"):
        spec.load_subset(str(tmp_path / "count"))


# ------------------------------------------------------------------------------------------------------- ColorSwap
COLORSWAP = os.path.join(FIXTURES, "colorswap")


@pytest.fixture(scope="module")
def colorswap_copies(setup, small_photos):
    records = [json.loads(line) for line in open(os.path.join(COLORSWAP, "records.jsonl"))]
    rows = {k: [r[k] for r in records] for k in ("id", "caption_1", "caption_2", "image_source", "caption_source")}
    rows["image_1"] = [small_photos[i % 8] for i in range(len(records))]
    rows["image_2"] = [small_photos[(i + 3) % 8] for i in range(len(records))]
    return _hub_copies(setup["root"] / "colorswap", rows, ("image_1", "image_2"))


def test_colorswap_matches_winogrounds_rules_and_its_aggregation_item_by_item(setup, colorswap_copies):
    from degla.eval.tasks import winoground

    result = _harness(setup, "colorswap", EvalDataConfig(colorswap_dir=colorswap_copies["saved"]))
    ds = colorswap_copies["dataset"]
    examples = [{"image_0": ds[i]["image_1"], "image_1": ds[i]["image_2"], "caption_0": ds[i]["caption_1"],
                 "caption_1": ds[i]["caption_2"]} for i in range(len(ds))]
    reference = official.winoground_clip_scores(setup["reference"], examples)
    ours = result.items["colorswap"]
    expected = torch.tensor([[r[k] for k in winoground.SCORE_ORDER] for r in reference])
    assert (ours["scores"] - expected).abs().max() < SCORE_TOLERANCE
    text = [official.winoground_text_correct(r) for r in reference]
    image = [official.winoground_image_correct(r) for r in reference]
    assert ours["text"] == text and ours["image"] == image
    aggregate = official.colorswap_aggregate(text, image)
    for key, name in (("text", "Text score"), ("image", "Image score"), ("group", "Group score")):
        assert result.scores[key] == pytest.approx(aggregate[name], abs=0.006), key
    assert result.details["by_source"]["image_source"]["dalle3"]["count"] == 4
    again = _harness(setup, "colorswap", EvalDataConfig(colorswap_dir=colorswap_copies["parquet"]))
    assert again.scores == result.scores


def test_colorswap_data_errors(tmp_path):
    with pytest.raises(EvalDataError, match="one of --colorswap_dir and --colorswap_hub_id"):
        TASKS["colorswap"].check(EvalDataConfig(colorswap_dir=str(tmp_path), colorswap_hub_id="stanfordnlp/colorswap"))
    with pytest.raises(EvalDataError, match="holds no data of stanfordnlp/colorswap"):
        TASKS["colorswap"].check(EvalDataConfig(colorswap_dir=str(tmp_path)))


# ------------------------------------------------------------------------------- one encoding across the suite
def test_an_image_two_benchmarks_share_is_encoded_once_per_run(setup, sugarcrepe_dir, tmp_path):
    """WhatsUp's COCO-QA read from --coco_val2017_dir, the folder SugarCrepe reads: in one run its images come from
    memory (SugarCrepe encoded them), with the same features; the disk cache still holds each task's own list, so
    a later run of WhatsUp alone reads its features from the cache."""
    from degla.eval.tasks import sugarcrepe

    from eval_helpers import placeholder_image

    names = sorted({r["filename"] for n in sugarcrepe.SUBSETS
                    for r in json.load(open(os.path.join(sugarcrepe_dir, f"{n}.json"))).values()})
    for i, name in enumerate(names):
        placeholder_image(str(tmp_path / "coco" / name), seed=i)
    (tmp_path / "whatsup").mkdir()
    (tmp_path / "whatsup" / "coco_qa_one_obj.json").write_text(json.dumps(
        [[int(name[:-4]), f"A photo of a dog on the {side}", f"A photo of a dog on the {other}"]
         for name, (side, other) in zip(names[:6], [("left", "right"), ("right", "left")] * 3)]))
    data = EvalDataConfig(sugarcrepe_dir=sugarcrepe_dir, coco_val2017_dir=str(tmp_path / "coco"),
                          whatsup_dir=str(tmp_path / "whatsup"))

    def encoder(cache_dir=None):
        return CLIPFeatureEncoder(setup["model"], setup["processor"], batch_size=32, show_progress=False,
                                  num_workers=0, cache_dir=cache_dir)

    suite = encoder(str(tmp_path / "cache"))
    both = evaluate_model(suite, "sugarcrepe,whatsup", data, verbose=False)
    stats = suite.stats["whatsup"]
    assert (stats.images_unique, stats.images_shared, stats.images_encoded) == (6, 6, 0)
    assert suite.stats["sugarcrepe"].images_encoded == len(names)
    assert stats.as_dict()["encoded_per_unique_image"] == 1.0
    alone = encoder()
    assert evaluate_model(alone, "whatsup", data, verbose=False) == {"whatsup": both["whatsup"]}
    assert alone.stats["whatsup"].images_encoded == 6  # without SugarCrepe before it, WhatsUp encodes its own
    cached = encoder(str(tmp_path / "cache"))
    evaluate_model(cached, "whatsup", data, verbose=False)
    assert cached.stats["whatsup"].images_encoded == 0 and cached.stats["whatsup"].cache_misses == 0


# ------------------------------------------------------------------------------------------- the suite end to end
SUITE_TABLE = "Field suite: compositional benchmarks (headline scores)"


@pytest.mark.slow
def test_the_suite_end_to_end_for_two_families(setup, crepe_data, mmvp_dir, bivlc_copies, spec_dir,
                                               colorswap_copies, tmp_path):
    """scripts/evaluate_clip.py --tasks compositional on a tiny CLIP with every new benchmark's data, part of the
    suite through `evaluate_model` for a tiny SigLIP, then scripts/report.py: one field-suite row per run (model
    and family), each cell equal to its run's results.json."""
    import subprocess
    import sys

    from degla.cli import run
    from degla.eval.report import REPORT

    from dual_encoder_helpers import save_tiny_siglip

    data = {"whatsup_dir": setup["data"].whatsup_dir, "crepe_dir": crepe_data.crepe_dir,
            "crepe_vg_dir": crepe_data.crepe_vg_dir, "crepe_train_dataset": "laion", "mmvp_vlm_dir": mmvp_dir,
            "bivlc_dir": bivlc_copies["parquet"], "spec_dir": spec_dir, "colorswap_dir": colorswap_copies["saved"]}
    clip_out, siglip_out = tmp_path / "clip", tmp_path / "siglip"
    args = ["--model_name_or_path", setup["model_dir"], "--tasks", "compositional", "--output_dir", str(clip_out),
            "--cache_dir", "none", "--no_progress", "--num_workers", "0"]
    args += [a for k, v in data.items() for a in (f"--{k}", v)]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "evaluate_clip.py"), *args],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    tasks = {"whatsup", "crepe", "mmvp_vlm", "bivlc", "spec", "colorswap"}
    clip = json.loads((clip_out / "results.json").read_text())
    assert set(clip) == tasks
    md = (clip_out / "results.md").read_text()
    for task in tasks:
        assert f"## {TASKS[task].table.title}" in md, task
    some = {k: data[k] for k in ("whatsup_dir", "colorswap_dir")}  # another family on part of the suite
    evaluate_model(save_tiny_siglip(str(tmp_path / "tiny-siglip")), "compositional", some,
                   output_dir=str(siglip_out), cache_dir=None, batch_size=32, show_progress=False, verbose=False)
    run(REPORT, ["--runs", str(clip_out), str(siglip_out), "--output_dir", str(tmp_path / "report")])
    rows = _table(open(tmp_path / "report" / "report.md").read(), SUITE_TABLE)
    columns = [(t, h, k) for t, task in TASKS.items() if t in tasks for h, k in task.suite]
    assert rows[0] == ["Model", *(h for _, h, _ in columns)]
    assert [r[0] for r in rows[1:]] == ["tiny-clip (CLIP)", "tiny-siglip (SigLIP)"]
    for row, out in zip(rows[1:], (clip_out, siglip_out)):
        results = json.loads((out / "results.json").read_text())
        assert row[1:] == [f"{results[t][k]:.1f}" if t in results else "-" for t, _, k in columns]
    assert rows[2].count("-") == 7  # SigLIP ran What'sUp and ColorSwap only: CREPE, MMVP-VLM, BiVLC x3, SPEC x2


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DEGLA_NETWORK_TESTS") != "1",
                    reason="needs the Hugging Face Hub (and access to the gated stanfordnlp/colorswap) "
                           "(DEGLA_NETWORK_TESTS=1)")
@pytest.mark.parametrize("task, option, hub_id, counted", [
    ("mmvp_vlm", "mmvp_vlm_hub_id", "MMVP/MMVP_VLM", ("mmvp_vlm", 135)),
    ("bivlc", "bivlc_hub_id", "imirandam/BiVLC", ("bivlc", 2933)),
    ("spec", "spec_hub_id", "wjpoom/SPEC", None),
    ("colorswap", "colorswap_hub_id", "stanfordnlp/colorswap", ("colorswap", 300))])
def test_the_hub_datasets_load(setup, task, option, hub_id, counted):
    result = _harness(setup, task, EvalDataConfig(**{option: hub_id}))
    if counted:
        assert result.counts[counted[0]]["scored"] == counted[1]
    else:
        assert {"i2t", "t2i"} <= set(result.scores)
