"""The shapes world run through the real pipeline (what `degla.demo` and the miniature study start from).

- `build_negatives_dataset`: fine-tuning captions of the world + negatives from `degla.generation`'s rule-based
  generator, in the negatives schema that `scripts/train.py` reads, saved with `save_to_disk`.
- `world_train_options`: the options of `scripts/train.py` that fine-tune the shipped base CLIP on them with the
  world recipe (`WORLD_RECIPE`).
- `build_benchmarks`: the world's benchmarks in the real formats, and the `EvalDataConfig` that points the
  evaluation harness at them.
- `BASE_MODEL_DIR`: the shipped base CLIP (pretrained from scratch on the broad world distribution).

Everything is cached under `cache_dir` (default `world_cache_dir()`: `$DEGLA_CACHE/world`, else
`~/.cache/degla/world`, read when called) keyed by its arguments.
"""

from __future__ import annotations

import json
import os

from ..atomic_io import atomic_directory, degla_cache_dir
from ..generation import generate_rule_based
from ..schema import RULES, neg_column
from .clip import BASE_MODEL_DIR


def world_cache_dir() -> str:
    """Where the world's data is cached: `$DEGLA_CACHE/world`, else `~/.cache/degla/world` (read when called)."""
    return degla_cache_dir("world")


def build_negatives_dataset(n_images: int = 1000, seed: int = 0, cache_dir: str | None = None) -> str:
    """Save (once) the world's fine-tuning captions with rule-based negatives; returns the dataset folder."""
    from datasets import load_from_disk

    from .data import finetuning_dataset

    cache_dir = cache_dir or world_cache_dir()
    path = os.path.join(cache_dir, f"negatives_n{n_images}_s{seed}")
    if os.path.exists(os.path.join(path, "state.json")):
        load_from_disk(path)  # fail loudly on a damaged cache rather than later in training
        return path
    dataset = finetuning_dataset(n_images=n_images, seed=seed)
    negatives = generate_rule_based(dataset["caption"], RULES, seed=seed)
    for rule in RULES:
        dataset = dataset.add_column(neg_column(rule), negatives[rule])
    accepted = {rule: sum(n is not None for n in negatives[rule]) for rule in RULES}
    with atomic_directory(path) as tmp:  # a killed build leaves no half-written cache entry
        dataset.save_to_disk(tmp)
        with open(os.path.join(tmp, "negatives_summary.json"), "w") as f:
            json.dump({"captions": len(dataset), "accepted_per_rule": accepted}, f, indent=1)
    return path


# The world's fine-tuning recipe: 2,000 captions, 2 epochs of batch 64 (62 steps). The objective keeps the
# paper's λ; the EMA is scaled to the short run: 1/(1-α) = 33 steps is half the run (the paper's α = 0.9996
# gives 2,500 of ~8,000 steps). The learning rate is the one at which plain hard-negative fine-tuning (NegCLIP)
# visibly forgets (zero-shot 85 → 71), so that the experiment can show what self-distillation does about it.
WORLD_RECIPE = {
    "per_device_train_batch_size": 64, "num_train_epochs": 2, "learning_rate": 3e-4, "warmup_steps": 10,
    "lr_scheduler_type": "cosine", "weight_decay": 0.1, "adam_beta2": 0.98, "adam_epsilon": 1e-6,
    "ema_decay": 0.97, "logging_steps": 10, "save_strategy": "no", "report_to": "none", "seed": 0,
    "dataloader_num_workers": 0,
}


def world_train_options(output_dir: str, cache_dir: str | None = None, **overrides) -> dict:
    """The options of `scripts/train.py` that fine-tune the shipped base CLIP on the world's negatives with the
    world recipe, changed by `overrides` (builds the world data if needed)."""
    return {"model_name_or_path": BASE_MODEL_DIR, "train_file": build_negatives_dataset(cache_dir=cache_dir),
            "output_dir": output_dir, **WORLD_RECIPE, **overrides}


def build_benchmarks(seed: int = 1000, cache_dir: str | None = None) -> dict:
    """Write (once) the world's benchmarks; returns the `EvalDataConfig` fields that point at them."""
    from .benchmarks import write_benchmarks
    from .shapes import COLOURS, SHAPES, SIZES, TEXTURES

    cache_dir = cache_dir or world_cache_dir()
    root = os.path.join(cache_dir, f"benchmarks_s{seed}")
    done = os.path.join(root, "done.json")
    if not os.path.exists(done):
        counts = write_benchmarks(root, seed=seed)
        with open(os.path.join(root, "order_lexicon.json"), "w") as f:
            json.dump({"nouns": list(SHAPES), "adjectives": [*COLOURS, *SIZES, *TEXTURES]}, f)
        with open(done, "w") as f:
            json.dump(counts, f, indent=1)
    return {
        "sugarcrepe_dir": os.path.join(root, "sugarcrepe"),
        "coco_val2017_dir": os.path.join(root, "images"),
        "aro_dir": root,
        "aro_image_dir": os.path.join(root, "images"),
        "coco_karpathy_test_json": os.path.join(root, "karpathy_test.json"),
        "coco_image_root": root,
        "order_pos_lexicon": os.path.join(root, "order_lexicon.json"),
        "zeroshot_sources": [f"{name}={os.path.join(root, f'zeroshot_{name}')}"
                             for name in ("colour_shape", "heldout")],
    }
