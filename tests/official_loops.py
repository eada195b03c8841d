"""Plain re-implementations of the official evaluation loops, kept as close to the originals as the model interface
allows, for parity checks of the harness (tests/test_eval_parity.py with a transformers CLIP, benchmarks/parity
with open_clip itself).

- SugarCrepe: `main_eval.py` of RAIVNLab/sugar-crepe (`evaluate` / `text_retrieval`): per pair, the image and each
  caption encoded on their own, correct iff `pos_score.item() > neg_score.item()`.
- VALSE: Heidelberg-NLP/VALSE's evaluation loop (`lxmert_valse_eval.py`): only `mturk["caption"] >= 2`, pairwise
  accuracy `score(caption) > score(foil)`.
- ARO: mertyg/vision-language-models-are-bows, `CLIPWrapper.get_retrieval_scores_batched` (batches of the
  dataset, each caption position encoded as its own batch, `np.einsum("nkd,nld->nkl")`) and the datasets'
  `evaluate_scores` (`np.argmax(...) == 1` for VG with `[false, true]`, `== 0` for Order with the true caption
  first); the macro accuracies of the "Replicate ARO!" notebook (VG-Relation without ARO's excluded
  relations, VG-Attribution over attribute pairs with at least 25 examples).
- Winoground: the CLIP evaluation notebook linked from the facebook/winoground dataset card (Colab file
  15wwOSte2CjTazdnCWYUm2VPlFbk2NGc0; the copy read is juletx/spatial-reasoning
  `evaluation/winoground_clip_b32.ipynb` @ c1f6a57c239d2bb0c3d2c2bac227f1fcc1292103): `get_clip_scores` (four
  independent image-caption scores per example), `text_correct` / `image_correct` / `group_correct`.
- SugarCrepe++: Sri-Harsha/scpp `VLMs/test_Variants_CLIP.py` @ c083bbf039a5ca215acaf25e7ee736d2ea6f3864 (image,
  P1, P2 and negative encoded one by one, `nn.CosineSimilarity(dim=1, eps=1e-6)`, the four accuracies).
- VL-CheckList: om-ai-lab/VL-CheckList @ 6f8d6a3281c401b89e4e154f46c6974ec2df3a82, `DataLoader.load_itc_samples`
  (`vl_checklist/data_loader.py`, with the `corpus/v1/<type>/<name>.yaml` ANNO_PATH / IMG_ROOT of each file),
  the `itc` branch of `Evaluate.eval` (`vl_checklist/evaluate.py`: MAX_NUM/2 entries, batches of BATCH_SIZE,
  `texts_pos[0]` vs `texts_neg[0]`, `total_acc = round(accuracy, 4)`), and the averaging over `corpus.json` of
  `radar.py::generate_chart` with the Object / Attribute / Relation means of facebookresearch/DCI
  `densely_captioned_images/repro/eval/run_vlc.py::score_vlc`. The model's `predict` is DCI's
  `VLCtoHFCLIPWrap.predict`: per (image, text) pair of the batch, its score (the diagonal).

A `model` here has `encode_image(list of PIL images) -> [B, D]` and `encode_text(list of str) -> [B, D]`, both
L2-normalised, each running the checkpoint's own preprocessing and tokenizer.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from PIL import Image

SUGARCREPE_FILES = ("add_obj", "add_att", "replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att")


@torch.no_grad()
def sugarcrepe_main_eval(model, data_root: str, image_root: str) -> dict[str, list[tuple[int, float, float]]]:
    """Per subset, per pair in file order: (correct, pos_score, neg_score)."""
    out = {}
    for c in SUGARCREPE_FILES:
        dataset = json.load(open(os.path.join(data_root, f"{c}.json"), encoding="utf-8"))
        rows = []
        for _, data in dataset.items():
            image = Image.open(os.path.join(image_root, data["filename"]))
            pos_text_embedding = model.encode_text([data["caption"]])
            neg_text_embedding = model.encode_text([data["negative_caption"]])
            image_embedding = model.encode_image([image])
            pos_score = (pos_text_embedding @ image_embedding.t()).item()
            neg_score = (neg_text_embedding @ image_embedding.t()).item()
            rows.append((1 if pos_score > neg_score else 0, pos_score, neg_score))
        out[c] = rows
    return out


@torch.no_grad()
def valse_pairwise(model, valse_dir: str, image_dirs: dict[str, str],
                   instruments) -> dict[str, list[tuple[int, float, float]]]:
    """Per instrument, per validated example in file order: (correct, caption_score, foil_score)."""
    out = {}
    for instrument in instruments:
        foils_data = json.load(open(os.path.join(valse_dir, f"{instrument}.json")))
        rows = []
        for _, foil in foils_data.items():
            if foil["mturk"]["caption"] >= 2:  # valid examples only (validated by mturkers)
                image = Image.open(os.path.join(image_dirs[foil["dataset"]], foil["image_file"])).convert("RGB")
                image_embedding = model.encode_image([image])
                text_embeddings = model.encode_text([foil["caption"], foil["foil"]])
                caption_score, foil_score = (text_embeddings @ image_embedding.t()).squeeze(1).tolist()
                rows.append((1 if caption_score > foil_score else 0, caption_score, foil_score))
        out[instrument] = rows
    return out


@torch.no_grad()
def aro_retrieval_scores_batched(model, test_cases: list[dict], batch_size: int = 32) -> np.ndarray:
    """`get_retrieval_scores_batched` over `test_cases` = [{"image": PIL image, "caption_options": [...]}]:
    N x 1 x L scores."""
    scores = []
    for start in range(0, len(test_cases), batch_size):
        batch = test_cases[start : start + batch_size]
        image_embeddings = model.encode_image([case["image"] for case in batch]).cpu().numpy()
        image_embeddings = image_embeddings / np.linalg.norm(image_embeddings, axis=1, keepdims=True)
        image_options = np.expand_dims(image_embeddings, axis=1)  # B x 1 x D
        caption_options = []
        for position in range(len(batch[0]["caption_options"])):  # the collate groups captions by position
            c_option = [case["caption_options"][position] for case in batch]
            caption_embeddings = model.encode_text(c_option).cpu().numpy()
            caption_embeddings = caption_embeddings / np.linalg.norm(caption_embeddings, axis=1, keepdims=True)
            caption_options.append(np.expand_dims(caption_embeddings, axis=1))
        caption_options = np.concatenate(caption_options, axis=1)  # B x L x D
        scores.append(np.einsum("nkd,nld->nkl", image_options, caption_options))  # B x K x L
    return np.concatenate(scores, axis=0)


def aro_vg_cases(records: list[dict], image_dir: str) -> list[dict]:
    """`VG_Relation.__getitem__` / `VG_Attribution.__getitem__`: the image cropped to the box, [false, true]."""
    cases = []
    for r in records:
        image = Image.open(os.path.join(image_dir, r["image_path"])).convert("RGB")
        image = image.crop((r["bbox_x"], r["bbox_y"], r["bbox_x"] + r["bbox_w"], r["bbox_y"] + r["bbox_h"]))
        cases.append({"image": image, "caption_options": [r["false_caption"], r["true_caption"]]})
    return cases


def aro_vg_correct(scores: np.ndarray) -> np.ndarray:
    """`evaluate_scores` of VG_Relation / VG_Attribution: `np.argmax(...) == 1`."""
    return np.argmax(np.squeeze(scores, axis=1), axis=-1) == 1


def aro_order_correct(scores: np.ndarray) -> np.ndarray:
    """`evaluate_scores` of COCO_Order / Flickr30k_Order: `np.argmax(...) == 0`."""
    return np.argmax(np.squeeze(scores, axis=1), axis=-1) == 0


def aro_macro(correct: np.ndarray, groups: list[str], excluded=(), min_count: int = 1) -> float:
    """The notebook's macro accuracy: mean over groups of the per-group accuracy, leaving out excluded groups and
    groups with fewer than `min_count` examples."""
    groups = np.asarray(groups)
    accuracies = [correct[groups == g].mean() for g in np.unique(groups)
                  if g not in set(excluded) and (groups == g).sum() >= min_count]
    return float(np.mean(accuracies))


# ---------------------------------------------------------------------------------------------------- Winoground
def winoground_text_correct(result):
    return result["c0_i0"] > result["c1_i0"] and result["c1_i1"] > result["c0_i1"]


def winoground_image_correct(result):
    return result["c0_i0"] > result["c0_i1"] and result["c1_i1"] > result["c1_i0"]


def winoground_group_correct(result):
    return winoground_image_correct(result) and winoground_text_correct(result)


@torch.no_grad()
def winoground_clip_scores(model, winoground: list[dict]) -> list[dict]:
    """`get_all_clip_scores`: per example (PIL `image_0`, `image_1`, `caption_0`, `caption_1`), four independent
    image-caption scores."""
    scores = []
    for id in range(len(winoground)):
        example = winoground[id]
        out = {"id": id}
        for c in (0, 1):
            for i in (0, 1):
                image = model.encode_image([example[f"image_{i}"].convert("RGB")])
                text = model.encode_text([example[f"caption_{c}"]])
                out[f"c{c}_i{i}"] = (text @ image.t()).item()
        scores.append(out)
    return scores


# -------------------------------------------------------------------------------------------------- SugarCrepe++
@torch.no_grad()
def sugarcrepe_pp_variants_clip(model, data_path: str, img_path: str) -> dict[str, dict]:
    """Per file: the accuracies the script prints and, per record, (full, img_p1, img_p2, text) decisions and the
    six cosines (cos_p1, cos_p2, cos_neg, cos_p1p2, cos_p1_neg, cos_p2_neg)."""
    out = {}
    for fname in sorted(f for f in os.listdir(data_path) if f.endswith(".json")):  # the fixture has a LICENSE too
        data = json.load(open(os.path.join(data_path, fname)))
        total = correct_img_p1 = correct_img_p2 = correct_full = correct_text = 0
        rows = []
        for line in data:
            p1, neg, p2 = line["caption"], line["negative_caption"], line["caption2"]
            image = Image.open(os.path.join(img_path, line["filename"]))
            img_feats = model.encode_image([image])
            p1_feats, p2_feats, neg_feats = (model.encode_text([p1]), model.encode_text([p2]),
                                             model.encode_text([neg]))
            cos = torch.nn.CosineSimilarity(dim=1, eps=1e-6)
            cos_p1, cos_p2, cos_neg = cos(img_feats, p1_feats), cos(img_feats, p2_feats), cos(img_feats, neg_feats)
            cos_p1p2, cos_p1_neg, cos_p2_neg = cos(p1_feats, p2_feats), cos(p1_feats, neg_feats), cos(p2_feats,
                                                                                                       neg_feats)
            total += 1
            full, img_p1, img_p2 = bool(cos_p1 > cos_neg and cos_p2 > cos_neg), bool(cos_p1 > cos_neg), bool(
                cos_p2 > cos_neg)
            text = bool(cos_p1p2 > cos_p1_neg and cos_p1p2 > cos_p2_neg)
            correct_full, correct_img_p1 = correct_full + full, correct_img_p1 + img_p1
            correct_img_p2, correct_text = correct_img_p2 + img_p2, correct_text + text
            rows.append(((full, img_p1, img_p2, text), [float(x) for x in (cos_p1, cos_p2, cos_neg, cos_p1p2,
                                                                           cos_p1_neg, cos_p2_neg)]))
        out[fname[: -len(".json")]] = {
            "image-to-text": float(correct_full) / float(total), "Image-P1-Neg": float(correct_img_p1) / float(total),
            "Image-P2-Neg": float(correct_img_p2) / float(total), "text-only": float(correct_text) / float(total),
            "rows": rows}
    return out


# -------------------------------------------------------------------------------------------------- VL-CheckList
# corpus.json of om-ai-lab/VL-CheckList (the radar chart's and score_vlc's grouping of result files)
VL_CHECKLIST_CORPUS = {
    "large": {
        "vg": ["Object_Size_large_vg_obj", "Object_Size_large_vg_subj"],
        "swig": [
            "Object_Size_large_swig_agent",
            "Object_Size_large_swig_destination",
            "Object_Size_large_swig_item",
            "Object_Size_large_swig_tool",
        ],
        "hake": ["Object_Size_large_hake"],
    },
    "medium": {
        "vg": ["Object_Size_medium_vg_obj", "Object_Size_medium_vg_subj"],
        "swig": [
            "Object_Size_medium_swig_agent",
            "Object_Size_medium_swig_destination",
            "Object_Size_medium_swig_item",
            "Object_Size_medium_swig_tool",
        ],
        "hake": ["Object_Size_medium_hake"],
    },
    "small": {
        "vg": ["Object_Size_small_vg_obj", "Object_Size_small_vg_subj"],
        "swig": [
            "Object_Size_small_swig_agent",
            "Object_Size_small_swig_destination",
            "Object_Size_small_swig_item",
            "Object_Size_small_swig_tool",
        ],
        "hake": ["Object_Size_small_hake"],
    },
    "center": {
        "vg": ["Object_Location_center_vg_obj", "Object_Location_center_vg_subj"],
        "swig": [
            "Object_Location_center_swig_agent",
            "Object_Location_center_swig_destination",
            "Object_Location_center_swig_item",
            "Object_Location_center_swig_tool",
        ],
        "hake": ["Object_Location_center_hake"],
    },
    "mid": {
        "vg": ["Object_Location_mid_vg_obj", "Object_Location_mid_vg_subj"],
        "swig": [
            "Object_Location_mid_swig_agent",
            "Object_Location_mid_swig_destination",
            "Object_Location_mid_swig_item",
            "Object_Location_mid_swig_tool",
        ],
        "hake": ["Object_Location_mid_hake"],
    },
    "margin": {
        "vg": ["Object_Location_margin_vg_obj", "Object_Location_margin_vg_subj"],
        "swig": [
            "Object_Location_margin_swig_agent",
            "Object_Location_margin_swig_destination",
            "Object_Location_margin_swig_item",
            "Object_Location_margin_swig_tool",
        ],
        "hake": ["Object_Location_margin_hake"],
    },
    "color": {
        "vg": ["Attribute_color_vg"],
        "vaw": ["Attribute_color_vaw"],
    },
    "material": {
        "vg": ["Attribute_material_vg"],
        "vaw": ["Attribute_material_vaw"],
    },
    "action_a": {
        "vg": ["Attribute_action_vg"],
        "vaw": ["Attribute_action_vaw"],
    },
    "size": {
        "vg": ["Attribute_size_vg"],
        "vaw": ["Attribute_size_vaw"],
    },
    "state": {
        "vg": ["Attribute_state_vg"],
        "vaw": ["Attribute_state_vaw"],
    },
    "action_r": {
        "vg": ["Relation_action_vg"],
        "swig": ["Relation_action_swig"],
        "hake": ["Relation_action_hake"],
    },
    "spatial": {
        "vg": ["Relation_spatial_vg"],
    },
}
# corpus/v1/<type>/<name>.yaml: (ANNO_PATH, IMG_ROOT) of each evaluated (type, corpus name)
VL_CHECKLIST_YAML = {
    "Attribute/action/vaw": ("data/Attribute/vaw/action.json", "vg"),
    "Attribute/action/vg": ("data/Attribute/vg/action.json", "vg"),
    "Attribute/color/vaw": ("data/Attribute/vaw/color.json", "vg"),
    "Attribute/color/vg": ("data/Attribute/vg/color.json", "vg"),
    "Attribute/material/vaw": ("data/Attribute/vaw/material.json", "vg/"),
    "Attribute/material/vg": ("data/Attribute/vg/material.json", "vg/"),
    "Attribute/size/vaw": ("data/Attribute/vaw/size.json", "vg/"),
    "Attribute/size/vg": ("data/Attribute/vg/size.json", "vg/"),
    "Attribute/state/vaw": ("data/Attribute/vaw/state.json", "vg/"),
    "Attribute/state/vg": ("data/Attribute/vg/state.json", "vg/"),
    "Object/Location/center/hake": ("data/Object/Location/hake_location/hake_obj_center.json", "hake/"),
    "Object/Location/center/swig_agent": (
        "data/Object/Location/swig_location/swig_agent/swig_agent_center.json", "swig/",
    ),
    "Object/Location/center/swig_destination": (
        "data/Object/Location/swig_location/swig_destination/swig_destination_center.json", "swig/",
    ),
    "Object/Location/center/swig_item": ("data/Object/Location/swig_location/swig_item/swig_item_center.json", "swig/"),
    "Object/Location/center/swig_tool": ("data/Object/Location/swig_location/swig_tool/swig_tool_center.json", "swig/"),
    "Object/Location/center/vg_obj": ("data/Object/Location/vg_location/vg_obj_center.json", "vg/"),
    "Object/Location/center/vg_subj": ("data/Object/Location/vg_location/vg_subj_center.json", "vg/"),
    "Object/Location/margin/hake": ("data/Object/Location/hake_location/hake_obj_margin.json", "hake/"),
    "Object/Location/margin/swig_agent": (
        "data/Object/Location/swig_location/swig_agent/swig_agent_margin.json", "swig/",
    ),
    "Object/Location/margin/swig_destination": (
        "data/Object/Location/swig_location/swig_destination/swig_destination_margin.json", "swig/",
    ),
    "Object/Location/margin/swig_item": ("data/Object/Location/swig_location/swig_item/swig_item_margin.json", "swig/"),
    "Object/Location/margin/swig_tool": ("data/Object/Location/swig_location/swig_tool/swig_tool_margin.json", "swig/"),
    "Object/Location/margin/vg_obj": ("data/Object/Location/vg_location/vg_obj_margin.json", "vg/"),
    "Object/Location/margin/vg_subj": ("data/Object/Location/vg_location/vg_subj_margin.json", "vg/"),
    "Object/Location/mid/hake": ("data/Object/Location/hake_location/hake_obj_mid.json", "hake/"),
    "Object/Location/mid/swig_agent": ("data/Object/Location/swig_location/swig_agent/swig_agent_mid.json", "swig/"),
    "Object/Location/mid/swig_destination": (
        "data/Object/Location/swig_location/swig_destination/swig_destination_mid.json", "swig/",
    ),
    "Object/Location/mid/swig_item": ("data/Object/Location/swig_location/swig_item/swig_item_mid.json", "swig/"),
    "Object/Location/mid/swig_tool": ("data/Object/Location/swig_location/swig_tool/swig_tool_mid.json", "swig/"),
    "Object/Location/mid/vg_obj": ("data/Object/Location/vg_location/vg_obj_mid.json", "vg/"),
    "Object/Location/mid/vg_subj": ("data/Object/Location/vg_location/vg_subj_mid.json", "vg/"),
    "Object/Size/large/hake": ("data/Object/Size/hake_size/hake_obj_large.json", "hake/"),
    "Object/Size/large/swig_agent": ("data/Object/Size/swig_size/swig_agent/swig_agent_large.json", "swig/"),
    "Object/Size/large/swig_destination": (
        "data/Object/Size/swig_size/swig_destination/swig_destination_large.json", "swig/",
    ),
    "Object/Size/large/swig_item": ("data/Object/Size/swig_size/swig_item/swig_item_large.json", "swig/"),
    "Object/Size/large/swig_tool": ("data/Object/Size/swig_size/swig_tool/swig_tool_large.json", "swig/"),
    "Object/Size/large/vg_obj": ("data/Object/Size/vg_size/vg_obj_large.json", "vg/"),
    "Object/Size/large/vg_subj": ("data/Object/Size/vg_size/vg_subj_large.json", "vg/"),
    "Object/Size/medium/hake": ("data/Object/Size/hake_size/hake_obj_medium.json", "hake/"),
    "Object/Size/medium/swig_agent": ("data/Object/Size/swig_size/swig_agent/swig_agent_medium.json", "swig/"),
    "Object/Size/medium/swig_destination": (
        "data/Object/Size/swig_size/swig_destination/swig_destination_medium.json", "swig/",
    ),
    "Object/Size/medium/swig_item": ("data/Object/Size/swig_size/swig_item/swig_item_medium.json", "swig/"),
    "Object/Size/medium/swig_tool": ("data/Object/Size/swig_size/swig_tool/swig_tool_medium.json", "swig/"),
    "Object/Size/medium/vg_obj": ("data/Object/Size/vg_size/vg_obj_medium.json", "vg/"),
    "Object/Size/medium/vg_subj": ("data/Object/Size/vg_size/vg_subj_medium.json", "vg/"),
    "Object/Size/small/hake": ("data/Object/Size/hake_size/hake_obj_small.json", "hake/"),
    "Object/Size/small/swig_agent": ("data/Object/Size/swig_size/swig_agent/swig_agent_small.json", "swig/"),
    "Object/Size/small/swig_destination": (
        "data/Object/Size/swig_size/swig_destination/swig_destination_small.json", "swig/",
    ),
    "Object/Size/small/swig_item": ("data/Object/Size/swig_size/swig_item/swig_item_small.json", "swig/"),
    "Object/Size/small/swig_tool": ("data/Object/Size/swig_size/swig_tool/swig_tool_small.json", "swig/"),
    "Object/Size/small/vg_obj": ("data/Object/Size/vg_size/vg_obj_small.json", "vg/"),
    "Object/Size/small/vg_subj": ("data/Object/Size/vg_size/vg_subj_small.json", "vg/"),
    "Relation/action/hake": ("data/Relation/hake_action.json", "hake/"),
    "Relation/action/swig": ("data/Relation/swig_action.json", "swig/"),
    "Relation/action/vg": ("data/Relation/vg/action.json", "vg/"),
    "Relation/spatial/vg": ("data/Relation/vg/spatial.json", "vg/"),
}
VL_CHECKLIST_ORDER = ["O-Large", "O-Medium", "O-Small", "O-Center", "O-Mid", "O-Margin", "A-Color", "A-Material",
                      "A-Size", "A-State", "A-Action", "R-action", "R-spatial"]  # score_vlc's labels, as printed


def vl_checklist_load_itc_samples(corpus_names: list, type, cur_dir: str, image_roots: dict[str, str]):
    """`DataLoader.load_itc_samples`, the yaml read from VL_CHECKLIST_YAML; `image_roots` maps each IMG_ROOT
    (relative to the working directory in the original) to a folder."""
    corpus = {}
    for corpus_name in corpus_names:
        corpus[corpus_name] = []
        anno_path, img_root = VL_CHECKLIST_YAML[f"{type}/{corpus_name}"]
        m = json.load(open(os.path.join(cur_dir, anno_path)))
        for x in m:
            path, texts_dict = x
            path = os.path.join(image_roots[img_root.rstrip("/")], path)
            if os.path.exists(path):
                corpus[corpus_name].append({"path": path, "texts_pos": texts_dict["POS"],
                                            "texts_neg": texts_dict["NEG"]})
    return corpus


class VLChecklistCLIPWrap:
    """DCI's `VLCtoHFCLIPWrap.predict`: the score of each (image, text) pair of a batch."""

    def __init__(self, model):
        self.model = model

    @torch.no_grad()
    def predict(self, images: list, texts: list, src_type: str = "local"):
        loaded_images = [Image.open(p) for p in images]
        probs = (self.model.encode_image(loaded_images) * self.model.encode_text(texts)).sum(-1).tolist()
        return {"probs": [(None, p) for p in probs]}


def vl_checklist_itc(model, types: list[str], data_names: dict[str, list[str]], cur_dir: str,
                     image_roots: dict[str, str], max_num: int = 2000, batch_size: int = 4):
    """The `itc` branch of `Evaluate.eval` for every type: {f"{type with _}_{name}": (total_acc, [(correct,
    pos_score, neg_score)])}."""
    out = {}
    for data_type in types:
        d = vl_checklist_load_itc_samples(data_names[data_type], data_type, cur_dir, image_roots)
        for name in d:
            if max_num:
                d[name] = d[name][: int(max_num / 2)]
            num_t, num_f, rows = 0, 0, []
            for start in range(0, len(d[name]), batch_size):
                batch = d[name][start : start + batch_size]
                images = [z["path"] for z in batch]
                texts_pos = [z["texts_pos"][0] for z in batch]
                texts_neg = [z["texts_neg"][0] for z in batch]
                result_pos = model.predict(images, texts_pos, src_type="local")
                result_neg = model.predict(images, texts_neg, src_type="local")
                for pos, neg in zip(result_pos["probs"], result_neg["probs"]):
                    if pos[1] > neg[1]:
                        num_t += 1
                    else:
                        num_f += 1
                    rows.append((pos[1] > neg[1], pos[1], neg[1]))
            accuracy = float(num_t) / (num_t + num_f)
            out[f"{data_type.replace('/', '_')}_{name}"] = (round(accuracy, 4), rows)
    return out


def vl_checklist_score(total_acc: dict[str, float]):
    """`score_vlc` (radar.py's per-type averaging over corpus.json, then Object / Attribute / Relation)."""
    m = VL_CHECKLIST_CORPUS
    score_list = []
    for item in m.keys():
        data_num = len(m[item].keys())
        data_score = []
        for data in m[item].keys():
            score = 0
            file_num = len(m[item][data])
            for file in m[item][data]:
                score += total_acc[file]
            data_score.append(score / file_num)
        score_list.append(sum(data_score) / data_num)
    overall_scores = [sum(score_list[0:6]) / 6, sum(score_list[6:11]) / 5, sum(score_list[11:]) / 2]
    return dict(zip(m.keys(), score_list)), dict(zip(["Object", "Attribute", "Relation"], overall_scores))


# ------------------------------------------------------------------------------------------------------- What'sUp
# amitakamath/whatsup_vlms @ 7c1f2550eace32e7b8c77de5a792347c402960d1, dataset_zoo/aro_datasets.py: the datasets'
# `__init__` (annotation files, `all_prepositions`, the controlled `eval_dict`), `__getitem__` (image and caption
# options) and `evaluate_scores`; main_aro.py scores them with `get_retrieval_scores_batched`
# (model_zoo/clip_models.py, the same loop as ARO's: `aro_retrieval_scores_batched` above). The `prep_counts` and
# `pred_dict` bookkeeping of `evaluate_scores` feeds nothing that is returned or printed and is left out.
WHATSUP_FILES = {"Controlled_Images_A": "controlled_images_dataset.json",
                 "Controlled_Images_B": "controlled_clevr_dataset.json",
                 "COCO_QA_one_obj": "coco_qa_one_obj.json", "COCO_QA_two_obj": "coco_qa_two_obj.json",
                 "VG_QA_one_obj": "vg_qa_one_obj.json", "VG_QA_two_obj": "vg_qa_two_obj.json"}


def whatsup_cases(name: str, root_dir: str, repo_root: str) -> tuple[list, list[dict]]:
    """(the dataset's JSON list, its `__getitem__` items as {"image", "caption_options"}). `image_path` of the
    controlled sets is relative to the repository's root (`repo_root`), as the official code opens it."""
    dataset = json.load(open(os.path.join(root_dir, WHATSUP_FILES[name])))
    cases = []
    for test_case in dataset:
        if name.startswith("Controlled"):
            image = Image.open(os.path.join(repo_root, test_case["image_path"])).convert('RGB')
            cases.append({"image": image, "caption_options": test_case['caption_options']})
        elif name.startswith("COCO"):
            image = Image.open(os.path.join(root_dir, 'val2017/{}.jpg'.format(str(test_case[0]).zfill(12))))
            cases.append({"image": image.convert('RGB'), "caption_options": [test_case[1], test_case[2]]})
        else:
            image = Image.open(os.path.join(root_dir, 'vg_images/{}.jpg'.format(test_case[0]))).convert('RGB')
            cases.append({"image": image, "caption_options": [test_case[1], test_case[2]]})
    return dataset, cases


def whatsup_controlled_evaluate_scores(dataset: list[dict], subset: str, scores: np.ndarray) -> dict:
    """`Controlled_Images.__init__` (all_prepositions, eval_dict) and `evaluate_scores`: individual, pair and set
    accuracy (percent) and the per-preposition records."""
    all_prepositions = []
    if subset == 'A':
        for d in dataset:
            if 'left_of' in d['image_path']:
                all_prepositions.append('left_of')
            elif 'right_of' in d['image_path']:
                all_prepositions.append('right_of')
            elif '_on_' in d['image_path']:
                all_prepositions.append('on')
            else:
                all_prepositions.append('under')
        eval_dict = {(d['image_path'].split('/')[-1].split('_')[0],
                      d['image_path'].split('/')[-1].split('_')[-1][:-5]):
                     {'left': 0, 'right': 0, 'on': 0, 'under': 0} for d in dataset}
    else:
        for d in dataset:
            if 'left_of' in d['image_path']:
                all_prepositions.append('left_of')
            elif 'right_of' in d['image_path']:
                all_prepositions.append('right_of')
            elif '_in-front_of_' in d['image_path']:
                all_prepositions.append('in-front_of')
            else:
                all_prepositions.append('behind')
        eval_dict = {(d['image_path'].split('/')[-1].split('_')[0],
                      d['image_path'].split('/')[-1].split('_')[-1][:-5]):
                     {'left': 0, 'right': 0, 'in-front': 0, 'behind': 0} for d in dataset}

    scores_i2t = scores
    preds = np.argmax(np.squeeze(scores_i2t, axis=1), axis=-1)
    correct_mask = (preds == 0)
    accuracy = np.mean(correct_mask)
    for d, correct in zip(dataset, correct_mask):
        eval_dict[(d['image_path'].split('/')[-1].split('_')[0],
                   d['image_path'].split('/')[-1].split('_')[-1][:-5])][d['image_path'].split('/')[-1].split('_')[1]] \
            = correct
    pair_correct = 0
    set_correct = 0
    for obj_pair, correct_dict in eval_dict.items():
        if correct_dict['left'] and correct_dict['right']:
            pair_correct += 1
        if subset == 'A':
            if correct_dict['on'] and correct_dict['under']:
                pair_correct += 1
        else:
            if correct_dict['in-front'] and correct_dict['behind']:
                pair_correct += 1
        if sum(correct_dict.values()) == 4:
            set_correct += 1
    pair_accuracy = pair_correct * 100 / (len(dataset) / 2)
    set_accuracy = set_correct * 100 / (len(dataset) / 4)
    all_prepositions = np.array(all_prepositions)
    result_records = []
    for prepositions in np.unique(all_prepositions):
        prepositions_mask = (all_prepositions == prepositions)
        if prepositions_mask.sum() == 0:
            continue
        result_records.append({"Preposition": prepositions, "Accuracy": correct_mask[prepositions_mask].mean(),
                               "Count": prepositions_mask.sum()})
    return {"Accuracy": accuracy * 100, "Pair accuracy": pair_accuracy, "Set accuracy": set_accuracy,
            "correct": correct_mask, "records": result_records}


def whatsup_qa_evaluate_scores(dataset: list, name: str, scores: np.ndarray) -> dict:
    """`COCO_QA` / `VG_QA` `__init__` (all_prepositions) and `evaluate_scores`: accuracy (percent) and the
    per-preposition records."""
    subset = 'one' if name.endswith('one_obj') else 'two'
    all_prepositions = []
    if subset == 'one':
        all_prepositions = [d[1].split()[-1] for d in dataset]
    elif name.startswith('COCO'):
        for d in dataset:
            if 'left of' in d[1]:
                all_prepositions.append('left')
            elif 'right of' in d[1]:
                all_prepositions.append('right')
            elif 'above' in d[1]:
                all_prepositions.append('above')
            else:
                all_prepositions.append('below')
    else:
        for d in dataset:
            if 'left of' in d[1]:
                all_prepositions.append('left')
            elif 'right of' in d[1]:
                all_prepositions.append('right')
            elif 'front of' in d[1]:
                all_prepositions.append('front')
            elif 'behind' in d[1]:
                all_prepositions.append('behind')
            else:
                all_prepositions.append('top')
    scores_i2t = scores
    preds = np.argmax(np.squeeze(scores_i2t, axis=1), axis=-1)
    correct_mask = (preds == 0)
    accuracy = np.mean(correct_mask)
    all_prepositions = np.array(all_prepositions)
    result_records = []
    for prepositions in np.unique(all_prepositions):
        prepositions_mask = (all_prepositions == prepositions)
        if prepositions_mask.sum() == 0:
            continue
        result_records.append({"Preposition": prepositions, "Accuracy": correct_mask[prepositions_mask].mean(),
                               "Count": prepositions_mask.sum()})
    return {"Accuracy": accuracy * 100, "correct": correct_mask, "records": result_records}


# ---------------------------------------------------------------------------------------------------------- CREPE
# RAIVNLab/CREPE @ 1fa81c425f442396fe304f170c8eb6dc0747c814: `crepe_compo_eval_open_clip.py` (`gather_params`: the
# file and hard-negative column of each type and split, one2many, crop, batch size 1; `CsvDataset.__getitem__`;
# `evaluate`'s one2many branch) with `crepe_eval_utils.py` (`BaseCsvDataset`, `get_image_by_id`,
# `get_one2many_rank`, `get_one2many_metrics`). `pd.read_csv` as the original; `TF.crop(img, y, x, h, w)` on a PIL
# image is torchvision's `F_pil.crop`, `img.crop((x, y, x + w, y + h))`, written out (torchvision does not import
# beside CI's CPU torch).
def crepe_gather_params(input_dir: str, compo_type: str, hard_neg_type: str, split, train_dataset: str = "laion"):
    """(retrieval_data_path, hard_neg_key) of `gather_params`."""
    if compo_type == 'systematicity':
        hard_neg_key = f'valid_hard_negs_{hard_neg_type}'
        retrieval_data_path = os.path.join(input_dir, f'syst_vg_hard_negs_{split}_in_{train_dataset}.csv')
    else:
        hard_neg_key = 'hard_negs'
        input_dir = os.path.join(input_dir, hard_neg_type)
        retrieval_data_path = os.path.join(input_dir, f'prod_vg_hard_negs_{hard_neg_type}_complexity_{split}.csv')
    return retrieval_data_path, hard_neg_key


def crepe_get_one2many_rank(image_features, text_features):
    logits_per_image = (image_features @ text_features.t()).detach().cpu()
    ground_truth = 0  # because the grountruth caption is placed first
    ranking = torch.argsort(logits_per_image, descending=True)
    pred = torch.where(ranking == ground_truth)[1].detach().cpu().numpy()
    return pred


def crepe_get_one2many_metrics(preds, name='image_to_text'):
    metrics = {}
    metrics[f"{name}_mean_rank"] = preds.mean() + 1
    metrics[f"{name}_rank_std"] = preds.std()
    metrics[f"{name}_median_rank"] = np.floor(np.median(preds)) + 1
    for k in [1, 3, 5, 10]:
        metrics[f"{name}_R@{k}"] = np.mean(preds < k)
        metrics[f"{name}_R@{k}_std"] = np.std(preds < k)
    return metrics


@torch.no_grad()
def crepe_evaluate(model, input_filename: str, hard_neg_key: str, vg_image_paths: list[str]):
    """`evaluate` (one2many, batch size 1) over `CsvDataset(input_filename)`: (metrics, per-row scores)."""
    import ast

    import pandas as pd

    df = pd.read_csv(input_filename)
    xs, ys = df['x'].tolist(), df['y'].tolist()
    heights, widths = df['height'].tolist(), df['width'].tolist()
    hard_negs = [ast.literal_eval(ls_str) for ls_str in df[hard_neg_key]]
    images, captions = df['image_id'].tolist(), df['caption'].tolist()

    def get_image_by_id(image_id):
        for p in vg_image_paths:
            path = os.path.join(p, f"{image_id}.jpg")
            if os.path.exists(path):
                return Image.open(path).convert("RGB")
        raise FileNotFoundError(f'The image with id {image_id} is not found.')

    all_ranks, all_scores = [], []
    for idx in range(len(captions)):
        raw_image = get_image_by_id(images[idx])
        raw_image = raw_image.crop((xs[idx], ys[idx], xs[idx] + widths[idx], ys[idx] + heights[idx]))  # TF.crop
        image_features = model.encode_image([raw_image])
        text_features = model.encode_text([str(captions[idx])] + list(hard_negs[idx]))
        all_ranks.append(crepe_get_one2many_rank(image_features, text_features))
        all_scores.append((image_features @ text_features.t())[0])
    return crepe_get_one2many_metrics(np.array(all_ranks)), all_scores


# ------------------------------------------------------------------------------------------------------- MMVP-VLM
# tsb0601/MMVP @ 763500597e65c3446f09047837ceda76f4e264bf, scripts/evaluate_vlm.py::benchmark_model. `model(imgs,
# text)` of OpenAI's CLIP returns (logits_per_image, logits_per_text) with logits = logit_scale * cosine; here the
# scale is the checkpoint's `logit_scale.exp()`. The per-pair output.csv the script writes is left out.
@torch.no_grad()
def mmvp_vlm_benchmark_model(model, benchmark_dir, logit_scale: float, image_folder: str = 'MLLM_VLM Images'):
    import csv

    image_dir = os.path.join(benchmark_dir, image_folder)
    csv_file = os.path.join(benchmark_dir, 'Questions.csv')
    categories = [
        'Orientation and Direction', 'Presence of Specific Features',
        'State and Condition', 'Quantity and Count',
        'Positional and Relational Context', 'Color and Appearance',
        'Structural Characteristics', 'Texts',
        'Viewpoint and Perspective'
    ]
    pair_accuracies = {category: 0 for category in categories}
    num_pairs = 0
    rows_out = []

    def clip_model(imgs, text):
        logits_per_image = logit_scale * model.encode_image(imgs) @ model.encode_text(text).t()
        return logits_per_image, logits_per_image.t()

    with open(csv_file, 'r') as f:
        reader = csv.reader(f)
        next(reader)  # skip header
        for i, row in enumerate(reader):
            qid1, qtype1, statement1 = row
            # Get next row for the pair
            row = next(reader, None)
            if not row:
                break
            qid2, qtype2, statement2 = row
            qid1, qid2 = int(qid1), int(qid2)
            img1 = Image.open(os.path.join(image_dir, qtype1, f'{qid1}.jpg'))
            img2 = Image.open(os.path.join(image_dir, qtype1, f'{qid2}.jpg'))
            text1 = ['a photo of ' + statement1]
            text2 = ['a photo of ' + statement2]
            imgs = [img1, img2]
            logits_per_image1, logits_per_text1 = clip_model(imgs, text1)
            logits_per_image2, logits_per_text2 = clip_model(imgs, text2)
            probs1 = logits_per_text1.softmax(dim=-1).cpu().numpy()
            probs2 = logits_per_text2.softmax(dim=-1).cpu().numpy()
            img1_score1 = probs1[0][0]
            img1_score2 = probs2[0][0]
            pred1 = "img1" if img1_score1 > 0.5 else "img2"
            pred2 = "img1" if img1_score2 > 0.5 else "img2"
            gt1 = "img1" if qid1 % 2 == 1 else "img2"
            gt2 = "img1" if qid2 % 2 == 1 else "img2"
            rows_out.append([qid1, qid2, pred1, pred2, gt1, gt2, img1_score1, img1_score2])
            current_category = categories[num_pairs // 15]
            if pred1 == gt1 and pred2 == gt2:
                pair_accuracies[current_category] += 1
            num_pairs += 1
    # Calculate percentage accuracies
    for category in pair_accuracies:
        pair_accuracies[category] = (pair_accuracies[category] / (num_pairs // len(categories))) * 100
    return pair_accuracies, rows_out


# ---------------------------------------------------------------------------------------------------------- BiVLC
# IMirandaM/BiVLC @ 84f0d1751e7212d97cdeaeb01353862c09908bcb: `src/CLIP_fine_tuning/CLIP_utils.py` (`dataset`'s
# 'evaluation' collate_fn: image, negative_image, caption, negative_caption; `evaluate_BiVLC`) and
# main_evaluation_BiVLC.py (batches of --batch-size over the test split in order; overall and per-type percents).
# open_clip's `encode_image/encode_text(..., normalize=True)` is the reference model's (L2-normalised) encoding.
@torch.no_grad()
def bivlc_evaluate(model, batch):
    image_0_embedding = model.encode_image(batch["image_0"])
    image_1_embedding = model.encode_image(batch["image_1"])
    caption_0_embedding = model.encode_text(batch['caption_0'])
    caption_1_embedding = model.encode_text(batch['caption_1'])

    sim_C0_I0 = caption_0_embedding @ image_0_embedding.t()
    sim_C0_I1 = caption_0_embedding @ image_1_embedding.t()
    sim_C1_I0 = caption_1_embedding @ image_0_embedding.t()
    sim_C1_I1 = caption_1_embedding @ image_1_embedding.t()

    sim_C0_I0 = torch.diagonal(sim_C0_I0)
    sim_C0_I1 = torch.diagonal(sim_C0_I1)
    sim_C1_I0 = torch.diagonal(sim_C1_I0)
    sim_C1_I1 = torch.diagonal(sim_C1_I1)

    l_I2T, l_T2I, l_group_score, l_Ipos_2T, l_Ineg_2T, l_Tpos_2I, l_Tneg_2I = [], [], [], [], [], [], []
    for s_C0_I0, s_C0_I1, s_C1_I0, s_C1_I1 in zip(sim_C0_I0, sim_C0_I1, sim_C1_I0, sim_C1_I1):
        Ipos_2T = s_C0_I0 > s_C1_I0
        Ineg_2T = s_C1_I1 > s_C0_I1
        Tpos_2I = s_C0_I0 > s_C0_I1
        Tneg_2I = s_C1_I1 > s_C1_I0
        I2T = Ipos_2T and Ineg_2T
        T2I = Tpos_2I and Tneg_2I
        group_score = I2T and T2I
        l_I2T.append(I2T)
        l_T2I.append(T2I)
        l_group_score.append(group_score)
        l_Ipos_2T.append(Ipos_2T)
        l_Ineg_2T.append(Ineg_2T)
        l_Tpos_2I.append(Tpos_2I)
        l_Tneg_2I.append(Tneg_2I)
    scores = torch.stack([sim_C0_I0, sim_C1_I0, sim_C0_I1, sim_C1_I1], dim=1)
    return [l_I2T, l_T2I, l_group_score, l_Ipos_2T, l_Ineg_2T, l_Tpos_2I, l_Tneg_2I], scores


def bivlc_main(model, dataset, batch_size: int = 1000) -> dict:
    """main_evaluation_BiVLC.py: per-instance decisions, overall and per-type percents."""
    names = ("I2T", "T2I", "group_score", "Ipos_2T", "Ineg_2T", "Tpos_2I", "Tneg_2I")
    lists = {n: [] for n in names}
    all_scores = []
    for start in range(0, len(dataset), batch_size):
        batch = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        out, scores = bivlc_evaluate(model, {
            'image_0': [b['image'].convert("RGB") for b in batch],
            'image_1': [b['negative_image'].convert("RGB") for b in batch],
            'caption_0': [b['caption'] for b in batch], 'caption_1': [b['negative_caption'] for b in batch]})
        for n, values in zip(names, out):
            lists[n].extend(values)
        all_scores.append(scores)
    types = [dataset[i]['type'] for i in range(len(dataset))]
    overall = {n: float(100 * (sum(v) / len(dataset))) for n, v in lists.items()}
    per_type = {}
    for t in ('replace', 'swap', 'add'):
        idx = [i for i, x in enumerate(types) if x == t]
        per_type[t] = {n: 100 * (sum(lists[n][i].item() for i in idx) / len(idx)) for n in names}
    return {"decisions": {n: [bool(x) for x in v] for n, v in lists.items()}, "overall": overall,
            "per_type": per_type, "scores": torch.cat(all_scores)}


# ----------------------------------------------------------------------------------------------------------- SPEC
# wjpoom/SPEC @ ad982a42d023581fae256608a7f812ec1c64ef94: spec/dataset.py (`Image2TextDataset`,
# `Text2ImageDataset`, `get_data`: batches of batch_size in file order), spec/models/clip_wrapper.py
# (`CLIPWrapper.i2t_evaluate`, `t2i_evaluate`: normalised embeddings, einsum, `argmax(dim=-1)` against the label)
# and spec/eval.py (per subset accuracies, their mean over the selected subsets). `rearrange` is written as reshape.
@torch.no_grad()
def spec_i2t_evaluate(model, subset_root, batch_size):
    sample_list = json.load(open(os.path.join(subset_root, 'image2text.json')))
    i2t_scores, i2t_correct_num, total_num = [], 0, 0
    for start in range(0, len(sample_list), batch_size):
        batch = sample_list[start:start + batch_size]
        bs = len(batch)
        query_images = [Image.open(os.path.join(subset_root, s['query'])).convert('RGB') for s in batch]
        image_embeddings = model.encode_image(query_images)  # B,D
        candidate_texts = [s['keys'] for s in batch]
        text_embeddings = model.encode_text([t for texts in candidate_texts for t in texts])  # BL,D
        text_embeddings = text_embeddings.reshape(bs, -1, text_embeddings.shape[-1])  # B,L,D
        batch_i2t_scores = torch.einsum('BD,BLD->BL', [image_embeddings, text_embeddings]).cpu()
        i2t_scores.append(batch_i2t_scores)
        gt_labels = torch.tensor([s['label'] for s in batch])
        pred_labels = batch_i2t_scores.argmax(dim=-1)
        correct_num = (gt_labels == pred_labels).sum()
        i2t_correct_num += correct_num.item()
        total_num += bs
    i2t_scores = torch.cat(i2t_scores, dim=0)
    i2t_acc = 100 * i2t_correct_num / total_num
    return i2t_scores, i2t_acc


@torch.no_grad()
def spec_t2i_evaluate(model, subset_root, batch_size):
    sample_list = json.load(open(os.path.join(subset_root, 'text2image.json')))
    t2i_scores, t2i_correct_num, total_num = [], 0, 0
    for start in range(0, len(sample_list), batch_size):
        batch = sample_list[start:start + batch_size]
        bs = len(batch)
        query_texts = [s['query'] for s in batch]
        text_embeddings = model.encode_text(query_texts)  # B,D
        candidate_images = [Image.open(os.path.join(subset_root, img)).convert('RGB') for s in batch
                            for img in s['keys']]
        image_embeddings = model.encode_image(candidate_images)  # BK,D
        image_embeddings = image_embeddings.reshape(bs, -1, image_embeddings.shape[-1])  # B,K,D
        batch_t2i_scores = torch.einsum('BD,BKD->BK', [text_embeddings, image_embeddings]).cpu()
        t2i_scores.append(batch_t2i_scores)
        gt_labels = torch.tensor([s['label'] for s in batch])
        pred_labels = batch_t2i_scores.argmax(dim=-1)
        correct_num = (gt_labels == pred_labels).sum()
        t2i_correct_num += correct_num.item()
        total_num += bs
    t2i_scores = torch.cat(t2i_scores, dim=0)
    t2i_acc = 100 * t2i_correct_num / total_num
    return t2i_scores, t2i_acc


def spec_eval(model, data_root, subset_names, batch_size=64):
    """eval.py's `main`: per subset {"accuracy", "scores"}, and the average over subsets of each direction."""
    result, i2t_acc, t2i_acc, subset_num = {}, 0., 0., 0
    for subset_name in subset_names:
        subset_root = os.path.join(data_root, subset_name)
        i2t_scores, i2t = spec_i2t_evaluate(model, subset_root, batch_size)
        t2i_scores, t2i = spec_t2i_evaluate(model, subset_root, batch_size)
        result[subset_name] = {"accuracy": {'i2t_accuracy': i2t, 't2i_accuracy': t2i},
                               "scores": {'i2t_scores': i2t_scores, 't2i_scores': t2i_scores}}
        i2t_acc += i2t
        t2i_acc += t2i
        subset_num += 1
    return result, i2t_acc / subset_num, t2i_acc / subset_num


# ------------------------------------------------------------------------------------------------------ ColorSwap
# Top34051/colorswap @ 4f2c9e40ab4cf9db9e4c7b89410d0b15dccb404a, vlm_eval.py: the text / image / group aggregation
# of its `__main__` (text score: both images' answers right; image score: both captions' answers right; group: both;
# each `sum / len * 100`). The answers of an image-text matching model are Winoground's rules on the four scores
# (`winoground_text_correct` / `winoground_image_correct` above, caption_1/image_1 as c0/i0): the authors' CLIP
# evaluation is a Colab notebook that could not be read here.
def colorswap_aggregate(text_scores: list[bool], image_scores: list[bool]) -> dict[str, float]:
    group_scores = [text_score and image_score for text_score, image_score in zip(text_scores, image_scores)]
    return {"Text score": sum(text_scores) / len(text_scores) * 100,
            "Image score": sum(image_scores) / len(image_scores) * 100,
            "Group score": sum(group_scores) / len(group_scores) * 100}
