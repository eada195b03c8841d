"""The shapes world: a procedural compositional world where DeGLA's claim can be checked on a CPU.

- `shapes`: scenes, the broad (pretraining) and narrow (fine-tuning) distributions, rendering, captions.
- `tokenizer`: a small CLIP BPE tokenizer learnt on the world's vocabulary.
- `clip`: the world's CLIP and SigLIP configs/processors and the shipped base checkpoints (`BASE_MODEL_DIR`,
  `BASE_SIGLIP_DIR`).
- `benchmarks`: SugarCrepe / ARO / Karpathy / zero-shot ImageFolder files in the real formats.
- `data`: the fine-tuning captions as a `datasets.Dataset`.
"""

from degla.world.benchmarks import SUGARCREPE_TASKS, write_benchmarks
from degla.world.clip import (BASE_MODEL_DIR, BASE_SIGLIP_DIR, world_clip_config, world_processor, world_siglip_config,
                              world_siglip_processor)
from degla.world.data import finetuning_dataset
from degla.world.shapes import (HELD_OUT, Scene, WorldConfig, WorldObject, caption_is_true, finetuning_config, generate,
                                pretraining_config)
from degla.world.tokenizer import world_tokenizer

__all__ = [
    "BASE_MODEL_DIR", "BASE_SIGLIP_DIR", "HELD_OUT", "SUGARCREPE_TASKS", "Scene", "WorldConfig", "WorldObject",
    "caption_is_true",
    "finetuning_config", "finetuning_dataset", "generate", "pretraining_config", "world_clip_config",
    "world_processor", "world_siglip_config", "world_siglip_processor", "world_tokenizer", "write_benchmarks",
]
