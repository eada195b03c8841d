"""Loaders on the real annotation files (tests/fixtures), synthetic ARO/Karpathy/ImageFolder data, and the
errors raised on bad input."""

import json
import os

import numpy as np
import pytest

from degla.eval import TASKS, EvalDataConfig, EvalDataError, parse_tasks
from degla.eval.encoder import ImageRef
from degla.eval.tasks import aro, classification, sugarcrepe, valse
from degla.eval.tasks.karpathy import load_karpathy
from degla.eval.tasks.order_perturbations import LexiconTagger, order_candidates, pre_caption, word_tokenize

from eval_helpers import placeholder_image


def test_sugarcrepe_loader_reads_every_official_file(sugarcrepe_dir):
    folder = sugarcrepe_dir
    for name in sugarcrepe.SUBSETS:
        path = os.path.join(folder, f"{name}.json")
        raw = json.load(open(path))
        refs, pos, neg = sugarcrepe.load_subset(path, "/coco")
        assert len(refs) == len(raw) == 20
        first = next(iter(raw.values()))
        assert refs[0].path == os.path.join("/coco", first["filename"]) and refs[0].box is None
        assert (pos[0], neg[0]) == (first["caption"], first["negative_caption"])


def test_valse_loader_mturk_filter_and_image_sources(valse_dir):
    folder = valse_dir
    data = EvalDataConfig(valse_dir=folder, valse_visual7w_dir="/v7w", coco_val2017_dir="/coco17",
                          valse_visdial_dir="/visdial", valse_coco2014_dir="/coco14")  # no SWiG folder
    roots = {"visual7w": "/v7w", "coco2017": "/coco17", "coco_2017": "/coco17", "VisDial_v1.0": "/visdial",
             "FOIL dataset": "/coco14"}
    for name in valse.INSTRUMENTS:
        raw = json.load(open(os.path.join(folder, f"{name}.json")))
        validated = [r for r in raw.values() if r["mturk"]["caption"] >= 2]
        refs, caps, foils, skipped = valse.load_instrument(os.path.join(folder, f"{name}.json"), data)
        assert skipped["mturk.caption < 2"] == len(raw) - len(validated)
        if validated[0]["dataset"] == "SWiG":
            assert refs == [] and skipped["no --valse_swig_dir"] == len(validated)
            continue
        assert len(refs) == len(validated)
        assert refs[0].path == os.path.join(roots[validated[0]["dataset"]], validated[0]["image_file"])
        assert (caps[0], foils[0]) == (validated[0]["caption"], validated[0]["foil"])


def test_valse_coco2017_defaults_to_coco_val2017_dir():
    assert EvalDataConfig(coco_val2017_dir="/c").valse_coco2017_dir == "/c"
    assert EvalDataConfig(coco_val2017_dir="/c", valse_coco2017_dir="/d").valse_coco2017_dir == "/d"


def _vg_records():
    return [{"image_path": "1.jpg", "bbox_x": 4, "bbox_y": 2, "bbox_w": 20, "bbox_h": 10,
             "true_caption": "the horse is eating the grass", "false_caption": "the grass is eating the horse",
             "relation_name": "eating", "attributes": ["white", "wooden"]}]


def test_vg_loader_crops_to_the_bbox(tmp_path):
    placeholder_image(str(tmp_path / "images" / "1.jpg"), size=(48, 40))
    (tmp_path / "visual_genome_relation.json").write_text(json.dumps(_vg_records()))
    refs, false_caps, true_caps, groups = aro.load_vg(str(tmp_path / "visual_genome_relation.json"),
                                                      str(tmp_path / "images"), "relation")
    assert refs[0].box == (4.0, 2.0, 24.0, 12.0) and refs[0].load().size == (20, 10)
    assert (false_caps, true_caps, groups) == (["the grass is eating the horse"], ["the horse is eating the grass"],
                                               ["eating"])
    _, _, _, groups = aro.load_vg(str(tmp_path / "visual_genome_relation.json"), str(tmp_path / "images"),
                                  "attribution")
    assert groups == ["white_wooden"]


def test_aro_protocol_data_is_shipped():
    proto = aro.aro_protocol()
    assert "next to" in proto["excluded_relations"] and "on" not in proto["excluded_relations"]
    assert proto["vg_attribution_min_group_size"] == 25


def test_karpathy_loader(tmp_path):
    path = tmp_path / "test.json"
    path.write_text(json.dumps([{"image": "val2014/a.jpg", "caption": ["c1", "c2"]},
                                {"image": "b.jpg", "caption": "c3"}]))
    refs, caps = load_karpathy(str(path), "/root")
    assert [r.path for r in refs] == ["/root/val2014/a.jpg", "/root/b.jpg"] and caps == [["c1", "c2"], ["c3"]]


@pytest.mark.parametrize("content, message", [
    ("[{\"image\": \"a.jpg\", ", "malformed JSON"),
    ("{\"image\": \"a.jpg\"}", "expected a JSON list"),
    ("[{\"image\": \"a.jpg\"}]", "lacks field"),
    ("[{\"image\": \"a.jpg\", \"caption\": []}]", "non-empty list"),
])
def test_karpathy_bad_input_names_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_karpathy(str(path), "/root")
    assert str(path) in str(err.value)


def test_karpathy_needs_an_image_root(tmp_path):
    with pytest.raises(ValueError, match="image root"):
        load_karpathy(str(tmp_path / "x.json"), None)


def test_sugarcrepe_malformed_records_name_the_file(tmp_path):
    (tmp_path / "swap_att.json").write_text(json.dumps({"0": {"filename": "a.jpg", "caption": "x"}}))
    with pytest.raises(ValueError, match="negative_caption") as err:
        sugarcrepe.load_subset(str(tmp_path / "swap_att.json"), "/coco")
    assert "swap_att.json" in str(err.value)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        sugarcrepe.load_subset(str(tmp_path / "nope.json"), "/coco")


def test_unknown_task_and_unknown_option_are_rejected():
    with pytest.raises(ValueError, match="unknown task.*'sugarcrep'.*valid tasks: valse, sugarcrepe"):
        parse_tasks("sugarcrep,aro")
    assert parse_tasks("all") == ["all"]
    assert list(TASKS) == ["valse", "sugarcrepe", "aro", "zeroshot", "linear_probe", "retrieval",  # paper order
                           "winoground", "sugarcrepe_pp", "vl_checklist",  # then the benchmarks beyond it
                           "whatsup", "crepe", "mmvp_vlm", "bivlc", "spec", "colorswap"]
    with pytest.raises(ValueError, match="unknown data option.*sugar_dir"):
        EvalDataConfig.from_dict({"sugar_dir": "x"})


LEXICON = {"nouns": ["man", "dog", "park", "frisbee", "ball"], "adjectives": ["young", "brown", "red", "big"]}


def test_order_perturbations_are_seeded_permutations(tmp_path):
    lex = tmp_path / "lex.json"
    lex.write_text(json.dumps(LEXICON))
    tagger = LexiconTagger(str(lex))
    captions = ["A young man throws a red frisbee to a brown dog in the big park.", "A dog with a ball."]
    first = order_candidates(captions, tagger, seed=3)
    assert first == order_candidates(captions, tagger, seed=3)
    assert first != order_candidates(captions, tagger, seed=4)
    for caption, cands in zip(captions, first):
        assert len(cands) == 5 and cands[0] == pre_caption(caption)
        words = sorted(pre_caption(" ".join(word_tokenize(caption))).split())
        for c in cands[1:]:
            assert sorted(c.split()) == words  # a reordering of the same words
    # perturbation 1 moves nouns among noun slots and adjectives among adjective slots only
    tokens = word_tokenize(captions[0])
    shuffled = first[0][1].split()
    kept = [t.lower() for t in tokens if t.lower() not in LEXICON["nouns"] + LEXICON["adjectives"] and t != "."]
    assert [w for w in shuffled if w not in LEXICON["nouns"] + LEXICON["adjectives"]] == kept
    for i, tok in enumerate(t for t in tokens if t != "."):
        if tok.lower() in LEXICON["nouns"]:
            assert shuffled[i] in LEXICON["nouns"]


def test_pre_caption_matches_blip():
    assert pre_caption("A  Man (riding) a horse.\n") == "a man riding a horse"
    assert pre_caption(" ".join(["w"] * 40)) == " ".join(["w"] * 30)


def test_lexicon_file_must_have_nouns_and_adjectives(tmp_path):
    (tmp_path / "lex.json").write_text(json.dumps({"nouns": []}))
    with pytest.raises(ValueError, match="lex.json"):
        LexiconTagger(str(tmp_path / "lex.json"))


def _image_folder(root, classes=("cat", "dog", "red_car"), per_class=2):
    for c in classes:
        for i in range(per_class):
            placeholder_image(str(root / c / f"{i}.png"), seed=i)


def test_zeroshot_local_folder_with_metadata(tmp_path):
    _image_folder(tmp_path / "test")
    _image_folder(tmp_path / "train")
    ds = classification.load_source("toys", str(tmp_path), need_train=True)
    assert ds.classnames == ["cat", "dog", "red car"] and ds.templates == ["a photo of a {c}."]
    assert ds.test[1].tolist() == [0, 0, 1, 1, 2, 2] and ds.train is not None and ds.metric == "accuracy"
    (tmp_path / "zeroshot.json").write_text(json.dumps({"classnames": {"cat": "kitty", "dog": "puppy",
                                                                       "red_car": "red auto"},
                                                        "templates": ["a {label} drawing.", "itap of a {c}."],
                                                        "metric": "mean_per_class"}))
    ds = classification.load_source("toys", str(tmp_path), need_train=False)
    assert ds.classnames == ["kitty", "puppy", "red auto"] and ds.templates == ["a {c} drawing.", "itap of a {c}."]
    assert ds.metric == "mean_per_class"


def test_zeroshot_flat_folder_and_bad_metadata(tmp_path):
    _image_folder(tmp_path)
    ds = classification.load_source("cifar10", str(tmp_path), need_train=True)
    assert ds.train is None and len(ds.templates) == 18  # a known name brings its prompt ensemble
    (tmp_path / "zeroshot.json").write_text(json.dumps({"classnames": ["a", "b"]}))
    with pytest.raises(ValueError, match="2 classnames for 3 class folders"):
        classification.load_source("x", str(tmp_path), need_train=False)
    (tmp_path / "zeroshot.json").write_text(json.dumps({"templates": ["no placeholder"]}))
    with pytest.raises(ValueError, match="placeholder"):
        classification.load_source("x", str(tmp_path), need_train=False)
    (tmp_path / "zeroshot.json").write_text("{oops")
    with pytest.raises(ValueError, match="malformed JSON.*zeroshot.json"):
        classification.load_source("x", str(tmp_path), need_train=False)


def test_zeroshot_sources_resolution():
    data = EvalDataConfig(zeroshot_sources=["toys=/data/toys"], zeroshot_datasets=[])
    assert classification.resolve_sources(data) == {"toys": "/data/toys"}
    data = EvalDataConfig(zeroshot_datasets=["cifar10"])
    assert classification.resolve_sources(data) == {"cifar10": "hf:uoft-cs/cifar10"}
    with pytest.raises(ValueError, match="'mystery' has no source"):
        classification.resolve_sources(EvalDataConfig(zeroshot_datasets=["mystery"]))
    with pytest.raises(ValueError, match="NAME=SOURCE"):
        classification.resolve_sources(EvalDataConfig(zeroshot_sources=["/data/toys"]))


def test_known_datasets_follow_tables_9_and_13():
    known = classification.known_datasets()
    templates = {"cifar10": 18, "cifar100": 18, "food101": 1, "pets": 1, "flowers": 1, "sun397": 2, "cars": 8,
                 "dtd": 8, "caltech101": 34, "aircraft": 2, "imagenet": 80}
    assert {k: len(v["templates"]) for k, v in known.items()} == templates
    per_class = {k for k, v in known.items() if v["metric"] == "mean_per_class"}
    assert per_class == {"aircraft", "pets", "caltech101", "flowers"}
    assert len(known["imagenet"]["classnames"]) == 1000 and len(known["pets"]["classnames"]) == 37
    assert all("{c}" in t for v in known.values() for t in v["templates"])


def test_image_ref_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        ImageRef(str(tmp_path / "missing.png")).load()
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(OSError, match="broken.png"):
        ImageRef(str(tmp_path / "broken.png")).load()
    assert np.asarray(ImageRef(placeholder_image(str(tmp_path / "ok.png")), (0, 0, 5, 6)).load()).shape == (6, 5, 3)


def test_order_without_spacy_model_explains_both_fixes():
    import importlib.util

    from degla.eval.tasks.order_perturbations import SpacyTagger, make_tagger

    if importlib.util.find_spec("en_core_web_sm") is not None:
        pytest.skip("spaCy's en_core_web_sm is installed here")
    with pytest.raises(EvalDataError, match="en_core_web_sm.*--order_pos_lexicon"):
        SpacyTagger()
    with pytest.raises(EvalDataError, match="--order_pos_lexicon"):
        make_tagger(None)
