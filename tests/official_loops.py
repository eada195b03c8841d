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
