"""Every task run with an encoder whose similarities are fixed by construction gives the accuracy computed
independently from the annotation files."""

import json
import os
import zlib

import numpy as np
import pytest
from PIL import Image

from degla.eval import EvalDataConfig
from degla.eval.tasks import aro, classification, linear_probe, retrieval, sugarcrepe, valse, zeroshot
from degla.eval.tasks.order_perturbations import LexiconTagger, order_candidates

from eval_helpers import ControlledEncoder, placeholder_image, unit_score_vector


def text_score(text: str) -> float:
    """A deterministic score in {0, .25, .5, .75, 1} per text: ties between captions happen on purpose."""
    return (zlib.crc32(text.encode()) % 5) / 4


def scored_encoder():
    # every image is e0, so score(image, text) = text_score(text) exactly
    return ControlledEncoder(lambda ref: unit_score_vector(1.0), lambda t: unit_score_vector(text_score(t)))


def test_sugarcrepe_known_accuracy(sugarcrepe_dir, tmp_path):
    folder = sugarcrepe_dir
    expected = {}
    for name in sugarcrepe.SUBSETS:
        records = json.load(open(os.path.join(folder, f"{name}.json"))).values()
        for r in records:
            (tmp_path / r["filename"]).touch()
        wins = [text_score(r["caption"]) > text_score(r["negative_caption"]) for r in records]  # strict
        expected[name] = round(100 * float(np.mean(wins)), 2)
    ties = sum(text_score(r["caption"]) == text_score(r["negative_caption"])
               for n in sugarcrepe.SUBSETS for r in json.load(open(os.path.join(folder, f"{n}.json"))).values())
    assert ties > 0  # the construction exercises the strict tie rule
    result = sugarcrepe.run(scored_encoder(), EvalDataConfig(sugarcrepe_dir=folder, coco_val2017_dir=str(tmp_path)))
    for name, value in expected.items():
        assert result.scores[name] == pytest.approx(value)
    assert result.scores["replace"] == pytest.approx(
        np.mean([expected[k] for k in ("replace_obj", "replace_att", "replace_rel")]), abs=0.01)
    assert result.scores["swap"] == pytest.approx((expected["swap_obj"] + expected["swap_att"]) / 2, abs=0.01)
    assert result.scores["add"] == pytest.approx((expected["add_obj"] + expected["add_att"]) / 2, abs=0.01)
    assert result.counts["swap_obj"] == {"scored": 20, "skipped": 0, "skip_reasons": {}}


def test_valse_known_accuracy_and_paper_columns(valse_dir, tmp_path):
    folder = valse_dir
    dirs = {o: tmp_path / o for o in set(valse.SOURCES.values())}
    expected, kept = {}, {}
    for name in valse.INSTRUMENTS:
        records = [r for r in json.load(open(os.path.join(folder, f"{name}.json"))).values()
                   if r["mturk"]["caption"] >= 2]
        for r in records:
            d = dirs[valse.SOURCES[r["dataset"]]]
            d.mkdir(exist_ok=True)
            (d / r["image_file"]).touch()
        expected[name] = round(100 * float(np.mean([text_score(r["caption"]) > text_score(r["foil"])
                                                    for r in records])), 2)
        kept[name] = len(records)
    data = EvalDataConfig(valse_dir=folder, **{o: str(d) for o, d in dirs.items()})
    result = valse.run(scored_encoder(), data)
    for name in valse.INSTRUMENTS:
        assert result.scores[name] == pytest.approx(expected[name])
        assert result.counts[name]["scored"] == kept[name]
    counting = np.mean([expected[k] for k in ("counting-hard", "counting-small-quant", "counting-adversarial")])
    assert result.scores["counting"] == pytest.approx(counting, abs=0.01)
    assert result.scores["coreference_clean"] == expected["coreference-hard"]
    columns = [result.scores[c] for c in valse.COLUMNS]
    assert len(columns) == 9 and result.scores["avg"] == pytest.approx(np.mean(columns), abs=0.01)


def test_aro_vg_macro_accuracy_by_construction(tmp_path):
    # relation "on": 3 right of 4; "holding": 1 of 2; "next to" (excluded by ARO): 0 of 3; a tie counts as wrong
    plan = [("on", 1, 0)] * 3 + [("on", 0, 1)] + [("holding", 1, 0), ("holding", 0.5, 0.5)] + [("next to", 0, 1)] * 3
    records, scores = [], {}
    for i, (rel, s_true, s_false) in enumerate(plan):
        t, f = f"true {i}", f"false {i}"
        scores[t], scores[f] = s_true, s_false
        records.append({"image_path": "img.jpg", "bbox_x": 0, "bbox_y": 0, "bbox_w": 8, "bbox_h": 8, "true_caption": t,
                        "false_caption": f, "relation_name": rel, "attributes": ["a", "b"]})
    placeholder_image(str(tmp_path / "images" / "img.jpg"))
    (tmp_path / "visual_genome_relation.json").write_text(json.dumps(records))
    enc = ControlledEncoder(lambda ref: unit_score_vector(1.0), lambda t: unit_score_vector(scores[t]))
    result = aro.run(enc, EvalDataConfig(aro_dir=str(tmp_path)))
    assert result.scores["vg_relation"] == pytest.approx(100 * (0.75 + 0.5) / 2)
    assert result.details["vg_relation"]["micro_accuracy"] == pytest.approx(100 * 4 / 9, abs=0.01)
    assert result.counts["vg_relation"]["scored"] == 6 and result.counts["vg_relation"]["skipped"] == 3
    assert result.skipped["vg_attribution"].endswith("not found")
    assert "avg" not in result.scores


def test_aro_order_known_precision(tmp_path):
    lex = tmp_path / "lex.json"
    lex.write_text(json.dumps({"nouns": ["dog", "cat", "man", "ball", "table"], "adjectives": ["red", "small", "old"]}))
    captions = [[f"A small {a} sits on the red {b} near an old {c} number {i}{j}." for j in range(5)]
                for i, (a, b, c) in enumerate([("dog", "table", "man"), ("cat", "ball", "dog"), ("man", "dog", "cat")])]
    for i in range(3):
        placeholder_image(str(tmp_path / "img" / f"{i}.jpg"), seed=i)
    (tmp_path / "test.json").write_text(json.dumps([{"image": f"img/{i}.jpg", "caption": c}
                                                    for i, c in enumerate(captions)]))
    cands = order_candidates([c for cs in captions for c in cs], LexiconTagger(str(lex)), seed=7)
    expected = np.mean([text_score(c[0]) >= max(text_score(x) for x in c[1:]) for c in cands])  # ties -> correct
    data = EvalDataConfig(coco_karpathy_test_json=str(tmp_path / "test.json"), coco_image_root=str(tmp_path),
                          order_pos_lexicon=str(lex))
    result = aro.run(scored_encoder(), data, seed=7)
    assert result.scores["coco_order"] == pytest.approx(round(100 * expected, 2))
    assert result.counts["coco_order"]["scored"] == 15
    assert result.details["coco_order"]["pos_tagger"].startswith("lexicon:")


def test_retrieval_known_recall(tmp_path):
    rng = np.random.default_rng(0)
    n_img, per = 30, 3
    img_vec = rng.normal(size=(n_img, 16))
    txt_vec = np.repeat(img_vec, per, axis=0) + rng.normal(scale=1.2, size=(n_img * per, 16))  # noisy captions
    entries = [{"image": f"{i}.jpg", "caption": [f"caption {i}-{j}" for j in range(per)]} for i in range(n_img)]
    for i in range(n_img):
        (tmp_path / f"{i}.jpg").touch()
    (tmp_path / "flickr.json").write_text(json.dumps(entries))
    text_index = {f"caption {i}-{j}": i * per + j for i in range(n_img) for j in range(per)}
    enc = ControlledEncoder(lambda ref: img_vec[int(os.path.basename(ref.path)[:-4])], lambda t: txt_vec[text_index[t]])
    result = retrieval.run(enc, EvalDataConfig(flickr30k_test_json=str(tmp_path / "flickr.json"),
                                                flickr30k_image_root=str(tmp_path)))
    a = img_vec / np.linalg.norm(img_vec, axis=1, keepdims=True)
    b = txt_vec / np.linalg.norm(txt_vec, axis=1, keepdims=True)
    sim = a @ b.T
    owner = np.repeat(np.arange(n_img), per)
    i2t_rank = np.array([min(np.flatnonzero(np.isin(np.argsort(-sim[i]), np.flatnonzero(owner == i))))
                         for i in range(n_img)])
    t2i_rank = np.array([np.flatnonzero(np.argsort(-sim[:, t]) == owner[t])[0] for t in range(n_img * per)])
    for k in (1, 5, 10):
        assert result.scores[f"flickr30k_i2t_r{k}"] == pytest.approx(round(100 * (i2t_rank < k).mean(), 2))
        assert result.scores[f"flickr30k_t2i_r{k}"] == pytest.approx(round(100 * (t2i_rank < k).mean(), 2))
    assert 0 < result.scores["flickr30k_t2i_r1"] < 100  # the construction is neither trivial nor hopeless
    assert result.skipped["coco"] == "no --coco_karpathy_test_json"


def _class_folder(root, assignments):
    """assignments[class] = list of the classes each of its images will look like."""
    for cls, looks in assignments.items():
        for i, look in enumerate(looks):
            placeholder_image(str(root / cls / f"{look}_{i}.png"), seed=i)


CLASSES = ["apple", "boat", "cloud"]


def _looks_like(ref):
    return np.eye(3)[CLASSES.index(os.path.basename(ref.path).split("_")[0])]


def _prompt_vec(text):
    return np.eye(3)[[c in text for c in CLASSES].index(True)]


def test_zeroshot_known_accuracy_and_mean_per_class(tmp_path):
    # apple: 4 images, 3 look like apples; boat: 2 images, 0 look like boats; cloud: 3 of 3
    _class_folder(tmp_path, {"apple": ["apple"] * 3 + ["cloud"], "boat": ["apple", "cloud"], "cloud": ["cloud"] * 3})
    (tmp_path / "zeroshot.json").write_text(json.dumps({"templates": ["a photo of a {c}.", "a drawing of a {c}."]}))
    enc = ControlledEncoder(_looks_like, _prompt_vec)
    data = EvalDataConfig(zeroshot_sources=[f"toys={tmp_path}"])
    result = zeroshot.run(enc, data)
    assert result.scores["toys"] == pytest.approx(round(100 * 6 / 9, 2))
    assert result.details["toys"]["mean_per_class_accuracy"] == pytest.approx(round(100 * (0.75 + 0 + 1) / 3, 2))
    assert result.scores["avg"] == result.scores["toys"]
    assert enc.stats["zeroshot_toys"].texts_requested == 6  # 3 classes x 2 templates
    (tmp_path / "zeroshot.json").write_text(json.dumps({"templates": ["a photo of a {c}."],
                                                        "metric": "mean_per_class"}))
    assert zeroshot.run(enc, data).scores["toys"] == pytest.approx(round(100 * 1.75 / 3, 2))


def test_linear_probe_separable_features(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 4)):
        _class_folder(tmp_path / split, {c: [c] * n for c in CLASSES})
    noise = {}

    def features(ref):  # class direction + noise: separable by a linear model, not by the zero-shot rule
        return noise.setdefault(ref.path, np.concatenate([2 * _looks_like(ref), rng.normal(size=5)]))

    enc = ControlledEncoder(features, lambda t: np.ones(8))
    result = linear_probe.run(enc, EvalDataConfig(zeroshot_sources=[f"toys={tmp_path}"]), seed=0)
    assert result.scores["toys"] == 100.0
    assert result.details["toys"]["best_C"] in linear_probe.C_GRID
    assert result.counts["toys"]["scored"] == 12


def test_linear_probe_without_train_split_is_reported(tmp_path):
    _class_folder(tmp_path, {c: [c] for c in CLASSES})
    result = linear_probe.run(scored_encoder(), EvalDataConfig(zeroshot_sources=[f"toys={tmp_path}"]))
    assert "no train split" in result.skipped["toys"] and "toys" not in result.scores


def test_zeroshot_and_linear_probe_from_a_datasets_source(tmp_path):
    """The `hf:` source path, fed a local parquet dataset (what `datasets.load_dataset` reads from the Hub)."""
    import datasets

    features = datasets.Features({"picture": datasets.Image(),
                                  "kind": datasets.ClassLabel(names=["red_apple", "boat"])})
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 6)):
        rows = {"picture": [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(n)],
                "kind": [i % 2 for i in range(n)]}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(
            str(tmp_path / "data" / f"{split}-00000-of-00001.parquet"))
    labels = {"train": [i % 2 for i in range(8)], "test": [i % 2 for i in range(6)]}

    def image_vec(ref):  # test image 0 looks like a boat, every other image like its own class
        split, index = ref.path.split("/")[-2], ref.index
        label = labels[split][index] if (split, index) != ("test", 0) else 1
        return np.concatenate([np.eye(2)[label], [0.1 * index]])

    enc = ControlledEncoder(image_vec, lambda t: np.concatenate([np.eye(2)[int("apple" not in t)], [0.0]]))
    data = EvalDataConfig(zeroshot_sources=[f"fruit=hf:{tmp_path}:test:picture:kind:train"])
    ds = classification.load_source("fruit", data.zeroshot_sources[0].split("=", 1)[1], need_train=True)
    assert ds.classnames == ["red apple", "boat"] and len(ds.train[0]) == 8 and ds.test[1].tolist() == labels["test"]
    assert ds.test[0][0].load().size == (8, 8)
    result = zeroshot.run(enc, data)
    assert result.scores["fruit"] == pytest.approx(round(100 * 5 / 6, 2))
    assert linear_probe.run(enc, data).counts["fruit"]["scored"] == 6
