"""ColorSwap (Burapacheep et al., ACL Findings 2024): two captions with the same words, the colour words swapped
between objects, and an image for each; 300 test examples.

Scores: text, image and group score per example, as the repository's scoring code (Top34051/colorswap
`vlm_eval.py`) aggregates them: the text score is right when each image picks its own caption, the image score
when each caption picks its own image, the group score when both are; each the percent of examples. For an
image-text matching model the picks are Winoground's rules on the four image-caption scores (caption_1 and
image_1 go together, as caption_2 and image_2): text `s(c1,i1) > s(c2,i1) and s(c2,i2) > s(c1,i2)`, image
`s(c1,i1) > s(c1,i2) and s(c2,i2) > s(c2,i1)`, strict (see `winoground`). The authors score CLIP-style models in a
Colab notebook linked from their README, which could not be read here; the repository itself holds only the
aggregation above (for generative models' answers), and the benchmark follows Winoground's definitions.

Data: the Hub dataset `stanfordnlp/colorswap` (gated: accept its terms and log in; split `test`; columns `id,
image_1, image_2, caption_1, caption_2, image_source, caption_source`) through `datasets` (`--colorswap_hub_id`),
or a local copy (`--colorswap_dir`): a `save_to_disk` folder or the dataset's parquet files.
"""

from __future__ import annotations

from collections import Counter

from ..config import EvalDataConfig
from .common import EvalTask, Table, TaskResult, percent
from .hub_layout import check_options, image_refs, load_from_options
from .winoground import by_tag, decisions, example_scores

COLUMNS = ("id", "image_1", "image_2", "caption_1", "caption_2", "image_source", "caption_source")


def load(data: EvalDataConfig):
    """(the dataset, its source name) from `--colorswap_hub_id` or `--colorswap_dir`."""
    return load_from_options(data.colorswap_dir, data.colorswap_hub_id, "colorswap", "stanfordnlp/colorswap",
                             COLUMNS, ("image_1", "image_2"))


def check(data: EvalDataConfig) -> bool:
    return check_options(data.colorswap_dir, data.colorswap_hub_id, "colorswap", "stanfordnlp/colorswap")


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    ds, source = load(data)
    records = ds.remove_columns(["image_1", "image_2"]).to_list()
    if not records:
        result.skipped["colorswap"] = "no example in the data"
        return result
    scores = example_scores(encoder, image_refs(ds, source, "image_1"), image_refs(ds, source, "image_2"),
                            [r["caption_1"] for r in records], [r["caption_2"] for r in records], task="colorswap")
    correct = decisions(scores)
    for key in ("text", "image", "group"):
        result.scores[key] = percent(float(correct[key].mean()))
    result.count("colorswap", len(records))
    result.items["colorswap"] = {"scores": scores, "ids": [r["id"] for r in records],
                                 **{k: v.tolist() for k, v in correct.items()}}
    tags = [{"image_source": r["image_source"], "caption_source": r["caption_source"]} for r in records]
    result.details["by_source"] = by_tag(tags, correct, fields=("image_source", "caption_source"))
    result.details["source_counts"] = dict(Counter(str(r["image_source"]) for r in records))
    return result


TASK = EvalTask(
    name="colorswap", data_options=("colorswap_dir", "colorswap_hub_id"),
    order=15, run=run, check=check,
    description="ColorSwap: text, image and group scores over two captions whose colour words are swapped and "
                "their two images (beyond the paper)",
    suite=(("ColorSwap text", "text"), ("ColorSwap image", "image"), ("ColorSwap group", "group")),
    table=Table("ColorSwap (beyond the paper)", (("Text", "text"), ("Image", "image"), ("Group", "group"))),
)
