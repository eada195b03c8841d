"""The model card of the drop-in export (`<output_dir>/<family>`): what was trained, on what, and how.

The objective's values come from the trained model's `DeGLAConfig` (never from the arguments that built it);
the recipe from the training arguments. No local absolute path is written: a local model or data folder is
named by its last component. The card's metadata holds what the Hub reads: `license` (`--license`, else the base
model's), `base_model` (a Hub id: the base's, or the `_name_or_path` a local base was saved from), `datasets` (the
Hub dataset of `--train_file`), `pipeline_tag` and `tags`.
"""

from __future__ import annotations

import json
import os
from enum import Enum

from huggingface_hub import HfApi, ModelCard, ModelCardData, constants

from ..hub import HUB_CHECK_TIMEOUT, looks_like_local_path, parse_hub_file, public_name
from .arguments import DeGLATrainingArguments

RECIPE_FIELDS = ("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "lr_scheduler_type",
                 "warmup_steps", "open_clip_warmup", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                 "gradient_accumulation_steps", "max_grad_norm", "dataloader_drop_last", "bf16", "fp16", "seed")
CARD_FILE, RECIPE_FILE = "README.md", "degla_training_args.json"


def _hub_id(name: str | None) -> str | None:
    """`name` when it names a Hub repository (`org/name`, not a local path), else None."""
    if not name or os.path.exists(os.path.expanduser(name)) or os.path.isabs(name) or looks_like_local_path(name):
        return None
    return name if name.count("/") == 1 else None


def base_model_facts(name: str) -> tuple[str | None, str | None, str]:
    """(Hub id, licence, title) of the base model. A Hub id: itself, its card's licence (one request, none offline),
    itself. A local folder: its config's `_name_or_path` when that is a Hub id, its README's licence and first
    heading (else the folder's name)."""
    folder = os.path.expanduser(name)
    if not os.path.isdir(folder):
        license = None
        if not constants.HF_HUB_OFFLINE:
            try:
                card_data = HfApi().model_info(name, timeout=HUB_CHECK_TIMEOUT).card_data
                license = card_data.license if card_data else None
            except Exception:  # the card is not needed to train: an unreachable Hub leaves the licence unknown
                pass
        return name, license, name
    config = os.path.join(folder, "config.json")
    origin = None
    if os.path.isfile(config):
        with open(config, encoding="utf-8") as f:
            origin = _hub_id(json.load(f).get("_name_or_path"))
    license, title = None, origin or public_name(name)
    readme = os.path.join(folder, "README.md")
    if os.path.isfile(readme):
        card = ModelCard.load(readme)
        license = card.data.license
        heading = next((line[2:].strip() for line in card.text.splitlines() if line.startswith("# ")), None)
        title = origin or heading or title
    return origin, license, title


def _value(value):
    """What a card shows of an option: an enum's value (`cosine`, not `SchedulerType.COSINE`)."""
    return value.value if isinstance(value, Enum) else value


def train_dataset_id(train_source: str) -> str | None:
    """The Hub dataset `--train_file` comes from (`org/name`, or the repository of an `hf://datasets/` file)."""
    hub_file = parse_hub_file(train_source) if train_source.startswith("hf://") else None
    if hub_file is not None:
        return hub_file.repo_id if hub_file.repo_type == "dataset" else None
    return _hub_id(train_source)


def model_card_files(base_model: str, objective: dict, args: DeGLATrainingArguments, data_options: dict,
                     train_source: str, data_summary: str, world_size: int, model_class: str = "CLIPModel",
                     processor_class: str = "CLIPProcessor", license: str | None = None) -> dict[str, str]:
    """`README.md` (Hub model card: metadata, usage, objective, recipe, data) and the recipe as JSON; the usage
    loads the export with its own classes (`model_class`, `processor_class`)."""
    family = model_class.removesuffix("Model")  # CLIP, Siglip, Siglip2
    tag = family.lower()
    rows = {**objective, **{name: _value(getattr(args, name)) for name in RECIPE_FIELDS}, **data_options,
            "global batch": args.per_device_train_batch_size * world_size * args.gradient_accumulation_steps,
            "processes": world_size}
    recipe = "\n".join(f"| `{k}` | {v} |" for k, v in rows.items())
    base_id, base_license, base_title = base_model_facts(base_model)
    dataset_id = train_dataset_id(train_source)
    metadata = ModelCardData(license=license or base_license or "unknown", library_name="transformers",
                             pipeline_tag="zero-shot-image-classification", base_model=base_id,
                             datasets=[dataset_id] if dataset_id else None,
                             tags=[tag, "degla", "compositionality"])
    licence_note = ("" if license or base_license else
                    "\nThe base model's licence is not known here: pass `--license` to state the export's.\n")
    card = f"""---
{metadata.to_yaml()}
---

# DeGLA fine-tune of {base_title}

A {family} model fine-tuned with DeGLA (Decoupled Global-Local Alignment): hard-negative global alignment with
EMA self-distillation, plus image- and text-grounded contrast on LLM/rule-written negative captions. It is a
plain `{model_class}` checkpoint:

```python
from transformers import {model_class}, {processor_class}
model = {model_class}.from_pretrained("<this repo or folder>")
processor = {processor_class}.from_pretrained("<this repo or folder>")
```
{licence_note}
## Training data

`{public_name(train_source)}`: {data_summary}

## Objective and recipe

| option | value |
|---|---|
{recipe}

Trained with the `degla` library (`accelerate launch scripts/train.py`); docs/recipe.md compares every value
with the paper and the authors' code.
"""
    return {CARD_FILE: card, RECIPE_FILE: json.dumps(rows, indent=2, default=str)}
