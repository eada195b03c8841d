"""The model card of the drop-in export (`<output_dir>/<family>`): what was trained, on what, and how.

The objective's values come from the trained model's `DeGLAConfig` (never from the arguments that built it);
the recipe from the training arguments. No local absolute path is written: a local model or data folder is
named by its last component.
"""

from __future__ import annotations

import json

from ..hub import public_name
from .arguments import DeGLATrainingArguments

RECIPE_FIELDS = ("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "lr_scheduler_type",
                 "warmup_steps", "open_clip_warmup", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                 "gradient_accumulation_steps", "max_grad_norm", "dataloader_drop_last", "bf16", "fp16", "seed")
CARD_FILE, RECIPE_FILE = "README.md", "degla_training_args.json"


def model_card_files(base_model: str, objective: dict, args: DeGLATrainingArguments, data_options: dict,
                     train_source: str, data_summary: str, world_size: int, model_class: str = "CLIPModel",
                     processor_class: str = "CLIPProcessor") -> dict[str, str]:
    """`README.md` (Hub model card: metadata, usage, objective, recipe, data) and the recipe as JSON; the usage
    loads the export with its own classes (`model_class`, `processor_class`)."""
    family = model_class.removesuffix("Model")  # CLIP, Siglip, Siglip2
    tag = family.lower()
    rows = {**objective, **{name: getattr(args, name) for name in RECIPE_FIELDS}, **data_options,
            "global batch": args.per_device_train_batch_size * world_size * args.gradient_accumulation_steps,
            "processes": world_size}
    recipe = "\n".join(f"| `{k}` | {v} |" for k, v in rows.items())
    base = public_name(base_model)
    base_line = f"base_model: {base}\n" if base == base_model else ""
    card = f"""---
library_name: transformers
pipeline_tag: zero-shot-image-classification
{base_line}tags:
- {tag}
- degla
- compositionality
---

# DeGLA fine-tune of `{base}`

A {family} model fine-tuned with DeGLA (Decoupled Global-Local Alignment): hard-negative global alignment with
EMA self-distillation, plus image- and text-grounded contrast on LLM/rule-written negative captions. It is a
plain `{model_class}` checkpoint:

```python
from transformers import {model_class}, {processor_class}
model = {model_class}.from_pretrained("<this repo or folder>")
processor = {processor_class}.from_pretrained("<this repo or folder>")
```

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
