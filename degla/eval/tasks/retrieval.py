"""Zero-shot image-text retrieval on COCO 5k (Karpathy test) and Flickr30k 1k: Recall@1/5/10 both ways.

Image->text: a hit at K if any of the image's captions is in its top K; text->image: if the caption's image
is in its top K. Captions are used as written in the caption file (no `pre_caption`). Top-K lists are
computed in chunks with `torch.topk`, so the full 5k x 25k score matrix never has to be materialised at once.
Subsets: `{coco,flickr30k}_{i2t,t2i}_r{1,5,10}` (percent) and `{coco,flickr30k}_rsum`.
"""

from __future__ import annotations

import torch

from ..config import EvalDataConfig
from .common import EvalTask, Table, TaskResult, load_metric, percent
from .karpathy import check_karpathy, load_karpathy

KS = (1, 5, 10)


def topk_chunked(queries: torch.Tensor, items: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Ids of the `k` most similar items for every query, best first: [Q, k]."""
    k = min(k, items.shape[0])
    return torch.cat([(queries[i : i + chunk] @ items.T).topk(k, dim=1).indices for i in range(0, len(queries), chunk)])


def recall(ranked: torch.Tensor, truths: list[list[int]]) -> dict:
    width = max(KS)
    if ranked.shape[1] < width:  # fewer items than max(K): pad with an id that never matches
        ranked = torch.cat([ranked, torch.full((ranked.shape[0], width - ranked.shape[1]), -1)], 1)
    return load_metric("retrieval_recall").compute(predictions=ranked.tolist(), references=truths, k=list(KS))


def _parts(data: EvalDataConfig):
    return (("coco", data.coco_karpathy_test_json, data.coco_image_root, "coco_karpathy_test_json", "coco_image_root"),
            ("flickr30k", data.flickr30k_test_json, data.flickr30k_image_root, "flickr30k_test_json",
             "flickr30k_image_root"))


def check(data: EvalDataConfig) -> bool:
    found = [check_karpathy(json_path, root, opt, root_opt) for _, json_path, root, opt, root_opt in _parts(data)]
    return any(found)


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    for name, json_path, root, opt, _ in _parts(data):
        if not json_path:
            result.skipped[name] = f"no --{opt}"
            continue
        refs, captions = load_karpathy(json_path, root)
        texts = [c for caps in captions for c in caps]
        img2txt, txt2img, t = [], [], 0
        for i, caps in enumerate(captions):
            img2txt.append(list(range(t, t + len(caps))))
            txt2img.extend([[i]] * len(caps))
            t += len(caps)
        img = encoder.encode_images(refs, task=f"retrieval_{name}")
        txt = encoder.encode_texts(texts, task=f"retrieval_{name}")
        i2t = recall(topk_chunked(img, txt, max(KS)), img2txt)
        t2i = recall(topk_chunked(txt, img, max(KS)), txt2img)
        for direction, out in (("i2t", i2t), ("t2i", t2i)):
            for k in KS:
                result.scores[f"{name}_{direction}_r{k}"] = percent(out[f"recall@{k}"])
        result.scores[f"{name}_rsum"] = round(sum(result.scores[f"{name}_{d}_r{k}"] for d in ("i2t", "t2i")
                                                  for k in KS), 2)
        result.count(name, len(refs))
        result.details[name] = {"images": len(refs), "captions": len(texts)}
    return result


TASK = EvalTask(
    name="retrieval", data_options=("coco_karpathy_test_json", "coco_image_root", "flickr30k_test_json",
                                    "flickr30k_image_root"),
    order=6, run=run, check=check,
    description="Zero-shot retrieval, COCO 5k and Flickr30k 1k: R@1/5/10 image-to-text and text-to-image",
    table=Table("Figure 4: Zero-shot retrieval",
                tuple((f"{ds} {d} R@{k}", f"{key}_{d.lower()}_r{k}")
                      for ds, key in (("COCO", "coco"), ("Flickr30k", "flickr30k"))
                      for d in ("I2T", "T2I") for k in KS), only_present=True),
)
