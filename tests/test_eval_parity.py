"""The harness against plain re-implementations of the official loops (tests/official_loops.py), item by item, on
a tiny random CLIP and real photos: the reference side preprocesses with torchvision's transform (written out in
eval_helpers), tokenizes with OpenAI's reference tokenizer and encodes pair by pair; the harness batches,
de-duplicates, cleans texts and uses `OpenCLIPImageProcessor`. The same checks on an open_clip ViT-B/32, with
open_clip and clip_benchmark themselves, are benchmarks/parity/run_parity.py. Also: ARO-Order accuracy does not
depend on the batch size or the order of the candidates."""

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from transformers import CLIPModel, CLIPProcessor

from degla.eval import TASKS, CLIPFeatureEncoder, EvalDataConfig
from degla.eval.tasks import aro, valse
from degla.eval.tasks.common import candidate_scores, load_metric
from degla.eval.tasks.order_perturbations import LexiconTagger, order_candidates

import official_loops as official
from eval_helpers import (ORDER_LEXICON, SCORE_TOLERANCE, SHORT_CAPTIONS, ReferenceCLIP, real_photos, save_photos,
                          save_tiny_clip, synthetic_vg_records)

VALSE_PER_INSTRUMENT = 12


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sugarcrepe_dir, valse_dir):
    pytest.importorskip("skimage", reason="the real photos come from scikit-image (pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp("parity")
    model_dir = save_tiny_clip(str(root / "tiny-clip"))
    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    photos = real_photos()

    sugar_files = sorted({r["filename"] for n in official.SUGARCREPE_FILES
                          for r in json.load(open(os.path.join(sugarcrepe_dir, f"{n}.json"))).values()})
    save_photos(str(root / "coco2017"), sugar_files)

    valse_sub, image_dirs, files = root / "valse", {}, {}
    valse_sub.mkdir()
    for name in valse.INSTRUMENTS:
        records = dict(list(json.load(open(os.path.join(valse_dir, f"{name}.json"))).items())[:VALSE_PER_INSTRUMENT])
        (valse_sub / f"{name}.json").write_text(json.dumps(records))
        for r in records.values():
            image_dirs[r["dataset"]] = str(root / valse.SOURCES[r["dataset"]])
            files.setdefault(image_dirs[r["dataset"]], set()).add(r["image_file"])
    for folder, names in files.items():
        save_photos(folder, sorted(names))
    valse_options = {valse.SOURCES[d]: folder for d, folder in image_dirs.items()}

    vg_files = {f"vg{i}.jpg": photos[name].size
                for i, name in enumerate(save_photos(str(root / "aro" / "images"),
                                                     [f"vg{i}.jpg" for i in range(9)]).values())}
    relations, attribution = synthetic_vg_records(vg_files)
    (root / "aro" / "visual_genome_relation.json").write_text(json.dumps(relations))
    (root / "aro" / "visual_genome_attribution.json").write_text(json.dumps(attribution))

    positives = [r["caption"] for r in json.load(open(os.path.join(sugarcrepe_dir, "swap_att.json"))).values()]
    captions = [positives[5 * i : 5 * i + 5] for i in range(4)] + [SHORT_CAPTIONS, SHORT_CAPTIONS[::-1]]
    karpathy = [{"image": f"val2014/{i}.jpg", "caption": caps} for i, caps in enumerate(captions)]
    save_photos(str(root / "coco" / "val2014"), [f"{i}.jpg" for i in range(len(karpathy))])
    (root / "coco" / "karpathy_test.json").write_text(json.dumps(karpathy))
    (root / "lexicon.json").write_text(json.dumps(ORDER_LEXICON))

    data = EvalDataConfig(sugarcrepe_dir=sugarcrepe_dir, coco_val2017_dir=str(root / "coco2017"),
                          valse_dir=str(valse_sub), **valse_options, aro_dir=str(root / "aro"),
                          coco_karpathy_test_json=str(root / "coco" / "karpathy_test.json"),
                          coco_image_root=str(root / "coco"), order_pos_lexicon=str(root / "lexicon.json"))
    return {"root": root, "model": model, "processor": processor, "reference": ReferenceCLIP(model), "data": data,
            "image_dirs": image_dirs, "relations": relations, "attribution": attribution, "captions": captions}


def _harness(setup, task, batch_size=16, data=None):
    encoder = CLIPFeatureEncoder(setup["model"], setup["processor"], batch_size=batch_size, show_progress=False,
                                 num_workers=0)
    return TASKS[task].run(encoder, data or setup["data"], seed=0)


def _assert_items_agree(ours: dict, reference_rows: list, name: str):
    correct = [bool(c) for c, _, _ in reference_rows]
    assert ours["correct"] == correct, (f"{name}: {sum(a != b for a, b in zip(ours['correct'], correct))} "
                                        "decisions differ")
    reference_scores = torch.tensor([[a, b] for _, a, b in reference_rows])
    assert (ours["scores"] - reference_scores).abs().max() < SCORE_TOLERANCE, name


@pytest.mark.slow
def test_sugarcrepe_matches_main_eval_item_by_item(setup):
    result = _harness(setup, "sugarcrepe")
    reference = official.sugarcrepe_main_eval(setup["reference"], setup["data"].sugarcrepe_dir,
                                              setup["data"].coco_val2017_dir)
    for subset, rows in reference.items():
        _assert_items_agree(result.items[subset], rows, subset)
        assert result.scores[subset] == pytest.approx(100 * np.mean([c for c, _, _ in rows]), abs=0.01)
    assert sum(len(rows) for rows in reference.values()) == 140


@pytest.mark.slow
def test_valse_matches_the_official_pairwise_loop(setup):
    result = _harness(setup, "valse")
    reference = official.valse_pairwise(setup["reference"], setup["data"].valse_dir, setup["image_dirs"],
                                        valse.INSTRUMENTS)
    for instrument, rows in reference.items():
        _assert_items_agree(result.items[instrument], rows, instrument)
    assert len(result.items) == len(valse.INSTRUMENTS)


def test_aro_vg_matches_the_official_loop_and_macro_means(setup):
    result = _harness(setup, "aro")
    proto = aro.aro_protocol()
    for name, records, kwargs in (
        ("vg_relation", setup["relations"], {"excluded": proto["excluded_relations"]}),
        ("vg_attribution", setup["attribution"], {"min_count": proto["vg_attribution_min_group_size"]}),
    ):
        scores = official.aro_retrieval_scores_batched(setup["reference"],
                                                       official.aro_vg_cases(records, setup["data"].aro_image_dir))
        correct = official.aro_vg_correct(scores)
        assert result.items[name]["correct"] == correct.tolist(), name
        assert (result.items[name]["scores"] - torch.from_numpy(scores[:, 0])).abs().max() < SCORE_TOLERANCE
        groups = result.items[name]["groups"]
        assert result.scores[name] == pytest.approx(100 * official.aro_macro(correct, groups, **kwargs), abs=0.01)


def _order_cases(setup, candidates):
    from PIL import Image

    root = setup["data"].coco_image_root
    images = [Image.open(os.path.join(root, f"val2014/{i}.jpg")).convert("RGB")
              for i, caps in enumerate(setup["captions"]) for _ in caps]
    return [{"image": im, "caption_options": cands} for im, cands in zip(images, candidates)]


def test_aro_order_matches_the_official_loop_up_to_exact_ties(setup):
    """Same candidates (our perturbations, seed 0) through ARO's loop: every decision agrees, except where a
    perturbation equals the true caption, which ARO's argmax leaves to float noise and the harness counts as
    correct (the true caption comes first)."""
    result = _harness(setup, "aro")
    candidates = result.items["coco_order"]["candidates"]
    assert candidates == order_candidates([c for caps in setup["captions"] for c in caps],
                                          LexiconTagger(setup["data"].order_pos_lexicon), seed=0)
    ties = np.array([cands[0] in cands[1:] for cands in candidates])
    assert ties.sum() >= 5  # the construction exercises the tie rule
    scores = official.aro_retrieval_scores_batched(setup["reference"], _order_cases(setup, candidates))
    official_correct = official.aro_order_correct(scores)
    ours = np.array(result.items["coco_order"]["correct"])
    assert np.array_equal(ours[~ties], official_correct[~ties])
    tied_ok = [s[0] >= max(s[1:]) for s in result.items["coco_order"]["scores"][ties].tolist()]
    assert ours[ties].tolist() == tied_ok  # exact ties with the caption count as correct


def test_aro_order_accuracy_ignores_batch_size_and_candidate_order(setup):
    order_only = dataclasses.replace(setup["data"], aro_dir=None, aro_image_dir=None)
    runs = {b: _harness(setup, "aro", batch_size=b, data=order_only) for b in (1, 3, 64)}
    first = runs[1]
    for b, result in runs.items():
        assert result.scores == first.scores, b
        assert result.items["coco_order"]["correct"] == first.items["coco_order"]["correct"], b
    # the candidates of every example shuffled (the true caption moves): the same decisions
    candidates = first.items["coco_order"]["candidates"]
    refs = [r for r in aro.load_karpathy(setup["data"].coco_karpathy_test_json, setup["data"].coco_image_root)[0]
            for _ in range(5)]
    encoder = CLIPFeatureEncoder(setup["model"], setup["processor"], batch_size=7, show_progress=False)
    rng = np.random.default_rng(0)
    orders = [rng.permutation(5) for _ in candidates]
    shuffled = [[cands[j] for j in order] for cands, order in zip(candidates, orders)]
    labels = [int(np.flatnonzero(order == 0)[0]) for order in orders]
    scores = candidate_scores(encoder, "order", refs, shuffled)
    out = load_metric("multiple_choice_accuracy").compute(scores=scores.tolist(), labels=labels, tie_break="lenient",
                                                          return_correct=True)
    assert out["correct"] == first.items["coco_order"]["correct"]
    # identical candidates of an example have bit-identical scores
    for row, cands in zip(scores.tolist(), shuffled):
        for j, text in enumerate(cands):
            assert row[j] == row[cands.index(text)]
