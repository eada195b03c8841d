"""Model card and Hub upload of the drop-in CLIP export (`<output_dir>/clip`)."""

from __future__ import annotations

import json
import os

from huggingface_hub import HfApi

from .arguments import OBJECTIVE_FIELDS, DeGLATrainingArguments

RECIPE_FIELDS = ("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "lr_scheduler_type",
                 "warmup_steps", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
                 "seed", "negative_slots", "missing_negative_policy", "use_lora")


def write_model_card(path: str, base_model: str, args: DeGLATrainingArguments, train_source: str,
                     data_summary: str, world_size: int) -> None:
    """Write `README.md` (Hub model card: metadata, usage, recipe, data) into the export folder."""
    rows = [(name, getattr(args, name)) for name in (*OBJECTIVE_FIELDS, *RECIPE_FIELDS)]
    rows.append(("global batch", args.per_device_train_batch_size * world_size * args.gradient_accumulation_steps))
    recipe = "\n".join(f"| `{k}` | {v} |" for k, v in rows)
    base_line = f"base_model: {base_model}\n" if not os.path.isdir(base_model) else ""
    card = f"""---
library_name: transformers
pipeline_tag: zero-shot-image-classification
{base_line}tags:
- clip
- degla
- compositionality
---

# DeGLA fine-tune of `{base_model}`

A CLIP model fine-tuned with DeGLA (Decoupled Global-Local Alignment): hard-negative global alignment with
EMA self-distillation, plus image- and text-grounded contrast on LLM/rule-written negative captions. It is a
plain `CLIPModel` checkpoint:

```python
from transformers import CLIPModel, CLIPProcessor
model = CLIPModel.from_pretrained("<this repo or folder>")
processor = CLIPProcessor.from_pretrained("<this repo or folder>")
```

## Training data

`{train_source}`: {data_summary}

## Recipe

| option | value |
|---|---|
{recipe}

Trained with the `degla` library (`accelerate launch scripts/train.py`).
"""
    with open(os.path.join(path, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)
    with open(os.path.join(path, "degla_training_args.json"), "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in rows}, f, indent=2, default=str)


def push_export(path: str, repo_id: str, token: str | None = None, private: bool | None = None,
                api: HfApi | None = None) -> str:
    """Create `repo_id` if needed and upload the export folder (not the training wrapper); returns the URL."""
    api = api or HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    return str(api.upload_folder(folder_path=path, repo_id=repo_id, repo_type="model",
                                 commit_message="Upload DeGLA fine-tuned CLIP"))
