"""The dataset card (README.md) of a generated negatives dataset."""

from __future__ import annotations

from pathlib import Path

from .rules import PROMPT_TEMPLATE, RULE_FAMILIES, RULE_INSTRUCTIONS, neg_column


def write_dataset_card(output_dir, config, stats: dict, n_captions: int, columns: list[str],
                       input_description: str = "", license: str | None = None):
    """Write ``output_dir/README.md``: YAML metadata (so that ``load_dataset(output_dir)`` and the
    Hub read ``data/*.parquet`` as the train split; the licence, ``unknown`` unless given, the task, the
    language, the size and the captions' source), rules, prompt, model, counts, acceptance rates."""
    model = config.model if config.backend == "llm" else "none (rule-based generator)"
    engine = f", engine `{config.engine}`" if config.backend == "llm" else ""
    rows = []
    for rule, s in stats.items():
        llm_rate = f"{s.accepted['llm'] / s.attempts:.1%}" if s.attempts else "n/a"
        coverage = (n_captions - s.missing) / max(n_captions, 1)
        rejected = ", ".join(f"{k}: {v}" for k, v in sorted(s.rejected.items(), key=lambda kv: -kv[1])) or "none"
        rows.append(f"| `{neg_column(rule)}` | {RULE_INSTRUCTIONS[rule]} | {s.accepted['llm']} | "
                    f"{s.accepted['rule_based']} | {s.missing} | {coverage:.1%} | {llm_rate} | {rejected} |")
    size = next((label for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                                            (1_000_000, "100K<n<1M")) if n_captions < limit), "n>1M")
    card = f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
license: {license or "unknown"}
task_categories:
- zero-shot-image-classification
language:
- en
size_categories:
- {size}
source_datasets:
- {f"extended|{input_description}" if input_description else "extended"}
tags:
- degla
- hard-negatives
- compositionality
- clip
---

# DeGLA hard-negative captions

Hard-negative captions for compositional fine-tuning of CLIP with DeGLA (Decoupled
Global-Local Alignment, section 3.2 and appendix A.4 of the paper), one row per caption,
generated with `scripts/generate_negatives.py` of the `degla` package.

- **Captions**: {n_captions}{f" from {input_description}" if input_description else ""}
- **Generator**: {model}; backend `{config.backend}`{engine}, greedy first attempt, up to {config.max_retries} retries
  ({"sampling, " if config.retry_sampling else ""}new exemplars), fallback `{config.fallback}`, seed {config.seed}
- **Exemplars per prompt**: {config.exemplars_per_prompt}, drawn from degla's exemplar bank (>= 50 pairs per rule),
  one draw per rule per {config.exemplar_group_size} consecutive caption(s)
- **Licence**: {license or "unknown (the captions' licence applies; `--license` states it)"}

## Columns

`{"`, `".join(columns)}`

- `caption`: the original caption; `image_id` / `image_path`: the image reference of the input.
- `caption_index`: the caption's position in the input.
- `neg_<rule>`: the negative of that rule, or null where no valid rewrite was obtained.
- `source_<rule>`: `llm` or `rule_based` (the generator that produced the negative), null where none.

## Rules and counts

Every negative passed `degla.generation.validate_negative` (it obeys its rule and changes the
meaning: never identical, never a pure addition or deletion, no synonym-only replacement, no
exchange across "and"/"next to"). "LLM acceptance" is accepted LLM rewrites over LLM attempts
(retries included); "rejected" counts every rejected attempt by reason.

| column | rule | LLM | rule-based | missing | coverage | LLM acceptance | rejected attempts |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Rule families: {", ".join(f"{r}: {f}" for r, f in RULE_FAMILIES.items())}.

## Prompt

The paper's prompt (figure 8), chat-templated as one user turn, plus one line asking for the
caption only:

```
{PROMPT_TEMPLATE}
Answer with the rewritten caption only.
```

## Use

```python
from datasets import load_dataset
ds = load_dataset("path/or/repo_id", split="train")
```

`datasets` caches a local folder by its name: to load a regenerated folder (or another folder
of the same name), pass a fresh `cache_dir=`, or it returns the old rows.
"""
    Path(output_dir, "README.md").write_text(card, encoding="utf-8")
