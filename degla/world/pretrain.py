"""Pretrain the shapes world's base CLIP (plain CLIP loss) or SigLIP (sigmoid loss, `--family siglip`) from scratch
and save it into the package.

The base model of the embedded demo: a small transformers `CLIPModel` trained on the BROAD world distribution
(`degla.world.shapes.pretraining_config()`: 1-3 objects, loose web-style captions), on CPU. Every step draws a
fresh batch from the generator, so the model never sees the same image twice. At the end it is scored with a
small self-contained check (zero-shot colour x shape on single objects, SugarCrepe-style pairs of the world)
and saved (safetensors, fp32) with its processor.

Usage (`scripts/pretrain_world_clip.py`; the shipped checkpoint: 600 steps of 128 pairs, ~8 min on one core of a
shared 2-core machine):

    python scripts/pretrain_world_clip.py                                   # into runs/world_clip
    python scripts/pretrain_world_clip.py --output_dir degla/world/base_model --overwrite_output_dir  # the shipped one
    python scripts/pretrain_world_clip.py --max_steps 2000 --batch_size 256  # a bigger run
    python scripts/pretrain_world_clip.py --family siglip --output_dir degla/world/base_siglip --overwrite_output_dir

The SigLIP has the CLIP's tower sizes and sees the same batches (same seed); it starts from SigLIP's t' = log 10
(Zhai et al. 2023, §3.3) and b = −log(batch size). The paper's b = −10 is for runs of ~10^5 steps: in 600 steps of
AdamW at lr 1e-3 b moves by at most 0.6, and a first base trained from b = −10 never moved it and learnt colours
only, since every negative's gradient σ(10·cos − 10) is ~0 (`--logit_bias_init -10` reproduces it). It is trained
with `SiglipModel`'s sigmoid loss and, as in big_vision, its log temperature is not clamped. Texts go in as the
SigLIP family prepares them (`degla.families`: padded to the text tower's 32 tokens, no attention mask), pixels
with SigLIP's normalisation.

Single-process by design (the model is tiny); for more processes the usual
`accelerate launch scripts/pretrain_world_clip.py ...` would only replicate the work.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, get_cosine_schedule_with_warmup, set_seed
from transformers.image_utils import IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD

from degla.atomic_io import atomic_directory
from degla.cli import Stage
from degla.errors import OutputExistsError, check_ranges
from degla.families import family_of
from degla.world.benchmarks import (SUGARCREPE_TASKS, ZEROSHOT_TEMPLATES, seen_combinations, single_object_classes,
                                    sugarcrepe_items)
from degla.world.clip import (BASE_MODEL_DIR, pixel_values, world_clip_config, world_processor, world_siglip_config,
                              world_siglip_processor)
from degla.world.shapes import HELD_OUT, pretraining_config, render, sample_scenes, scene_captions

logger = logging.getLogger(__name__)


@dataclass
class PretrainArguments:
    output_dir: str = field(default=os.path.join("runs", "world_clip"), metadata={
        "help": f"Where to save the model and processor (the shipped base model is {BASE_MODEL_DIR})."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Replace a model already in --output_dir (e.g. to regenerate the shipped base model)."})
    family: str = field(default="clip", metadata={
        "help": "'clip' (CLIPModel, softmax contrast, the shipped degla/world/base_model) or 'siglip' (SiglipModel, "
                "sigmoid loss, degla/world/base_siglip).", "choices": ["clip", "siglip"]})
    logit_bias_init: float | None = field(default=None, metadata={
        "help": "SigLIP only: the initial logit bias b (default: -log(batch_size), even odds for one positive among "
                "--batch_size candidates). SigLIP's paper starts at b = -10 for runs of ~10^5 steps; here AdamW "
                "moves b by at most --learning_rate per step, and at b = -10 every negative's gradient "
                "sigma(10 cos - 10) is ~0."})
    seed: int = field(default=0, metadata={"help": "Seed of the model init and of the data stream."})
    max_steps: int = field(default=600, metadata={"help": "Optimizer steps (one fresh batch each)."})
    batch_size: int = field(default=128, metadata={"help": "Image-caption pairs per step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak AdamW learning rate."})
    weight_decay: float = field(default=0.1, metadata={
        "help": "AdamW weight decay (not on biases, norms, embeddings, logit scale)."})
    warmup_steps: int = field(default=50, metadata={"help": "Linear warm-up before the cosine decay."})
    width: int = field(default=128, metadata={"help": "Hidden size of both towers."})
    layers: int = field(default=4, metadata={"help": "Transformer layers of each tower."})
    patch_size: int = field(default=8, metadata={"help": "ViT patch size (images are 64x64)."})
    num_threads: int = field(default=1, metadata={
        "help": "torch CPU threads (1 is fastest on a shared machine; try 2 on an idle one)."})
    eval_scenes: int = field(default=300, metadata={"help": "Scenes of the final SugarCrepe-style check."})
    eval_per_class: int = field(default=16, metadata={"help": "Images per class of the final zero-shot check."})
    eval_every: int = field(default=0, metadata={"help": "Also run the check every N steps (0: only at the end)."})

    def __post_init__(self):
        check_ranges(self, max_steps=">= 1", batch_size=">= 1", learning_rate="> 0", weight_decay=">= 0",
                     warmup_steps=">= 0", width=">= 1", layers=">= 1", patch_size=">= 1", num_threads=">= 1",
                     eval_scenes=">= 1", eval_per_class=">= 1", eval_every=">= 0")


def _param_groups(model: torch.nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "logit_scale" in name or "embedding" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def text_inputs(model, tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    """Texts as the model's family prepares them (CLIP: padded to the longest, with the attention mask; SigLIP: to
    the text tower's length, without one)."""
    family = family_of(model)
    return family.tokenize(tokenizer, [family.prepare_text(t) for t in texts],
                           family.text_max_length(model.config, tokenizer))


def image_inputs(model, images: np.ndarray) -> torch.Tensor:
    """Pixels normalised as the model's processor does (CLIP's mean and std, or SigLIP's 0.5)."""
    if family_of(model).name == "CLIP":
        return pixel_values(images)
    return pixel_values(images, mean=IMAGENET_STANDARD_MEAN, std=IMAGENET_STANDARD_STD)  # SigLIP's processor


@torch.no_grad()
def _embed_texts(model, tokenizer, texts: list[str], batch: int = 1024) -> torch.Tensor:
    out = [model.get_text_features(**text_inputs(model, tokenizer, texts[i : i + batch])).pooler_output
           for i in range(0, len(texts), batch)]
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


@torch.no_grad()
def _embed_images(model, images: np.ndarray, batch: int = 512) -> torch.Tensor:
    out = [model.get_image_features(pixel_values=image_inputs(model, images[i : i + batch])).pooler_output
           for i in range(0, len(images), batch)]
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


@torch.no_grad()
def quick_eval(model, tokenizer, n_scenes: int = 300, n_per_class: int = 16, seed: int = 1000) -> dict[str, float]:
    """Self-contained scores used to tune the world (the project's harness gives the reported numbers):
    zero-shot accuracy (%) on single objects, seen and held-out colour x shape combinations, and accuracy (%)
    on SugarCrepe-style pairs (caption scored above its negative; ties count half)."""
    model.eval()
    results = {}
    for name, combos in (("zeroshot_seen", seen_combinations()), ("zeroshot_heldout", list(HELD_OUT))):
        images, labels = single_object_classes(combos, n_per_class, seed + 20)
        prompts = [t.format(f"{c} {s}") for c, s in combos for t in ZEROSHOT_TEMPLATES]
        text = _embed_texts(model, tokenizer, prompts).view(len(combos), len(ZEROSHOT_TEMPLATES), -1).mean(1)
        text = torch.nn.functional.normalize(text, dim=-1)
        pred = (_embed_images(model, images) @ text.T).argmax(-1).numpy()
        results[name] = 100.0 * float((pred == labels).mean())
    scenes, images, pairs = sugarcrepe_items(n_scenes, seed)
    image_emb = _embed_images(model, images)
    for task in SUGARCREPE_TASKS:
        idx = torch.tensor([p[0] for p in pairs[task]])
        pos = _embed_texts(model, tokenizer, [p[1] for p in pairs[task]])
        neg = _embed_texts(model, tokenizer, [p[2] for p in pairs[task]])
        margin = ((pos - neg) * image_emb[idx]).sum(-1)
        results[task] = 100.0 * float(((margin > 0).float() + 0.5 * (margin == 0).float()).mean())
    model.train()
    return results


def format_results(results: dict[str, float]) -> str:
    return " | ".join(f"{k} {v:.1f}" for k, v in results.items())


def run_pretraining(args: PretrainArguments) -> dict[str, float]:
    if os.path.exists(os.path.join(args.output_dir, "model.safetensors")) and not args.overwrite_output_dir:
        raise OutputExistsError(f"{args.output_dir} already holds a model; pass --overwrite_output_dir to replace "
                                "it, or another --output_dir")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.num_threads)
    set_seed(args.seed)
    siglip = args.family == "siglip"
    processor = world_siglip_processor() if siglip else world_processor()
    tokenizer = processor.tokenizer
    build_config = world_siglip_config if siglip else world_clip_config
    model = AutoModel.from_config(build_config(tokenizer, width=args.width, layers=args.layers,
                                               patch_size=args.patch_size))
    if siglip:  # SigLIP's initial temperature t' = log 10; the bias: see --logit_bias_init
        with torch.no_grad():
            model.logit_scale.fill_(math.log(10.0))
            model.logit_bias.fill_(-math.log(args.batch_size) if args.logit_bias_init is None
                                   else args.logit_bias_init)
    logger.info("%s with %.2fM parameters", type(model).__name__, sum(p.numel() for p in model.parameters()) / 1e6)
    optimizer = torch.optim.AdamW(_param_groups(model, args.weight_decay), lr=args.learning_rate,
                                  betas=(0.9, 0.98), eps=1e-6)
    scheduler = get_cosine_schedule_with_warmup(optimizer, args.warmup_steps, args.max_steps)
    world = pretraining_config()
    start = time.time()
    model.train()
    progress = tqdm(range(args.max_steps), desc=f"pretraining world {family_of(model).name}")
    for step in progress:
        data_seed = args.seed * 1_000_003 + step
        scenes = sample_scenes(world, args.batch_size, data_seed)
        rng = np.random.default_rng([data_seed, 1])
        captions = [scene_captions(s, world, rng)[0] for s in scenes]
        text = text_inputs(model, tokenizer, captions)
        pixels = image_inputs(model, render(scenes, world, seed=data_seed))
        loss = model(**text, pixel_values=pixels, return_loss=True).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if family_of(model).logit_scale_max is not None:  # CLIP clamps, SigLIP (big_vision) does not
            with torch.no_grad():
                model.logit_scale.clamp_(0, family_of(model).logit_scale_max)
        progress.set_postfix(loss=f"{loss.item():.3f}", scale=f"{model.logit_scale.exp().item():.1f}")
        if args.eval_every and (step + 1) % args.eval_every == 0 and step + 1 < args.max_steps:
            results = quick_eval(model, tokenizer, args.eval_scenes, args.eval_per_class)
            logger.info("step %d: %s", step + 1, format_results(results))
    minutes = (time.time() - start) / 60
    results = quick_eval(model, tokenizer, args.eval_scenes, args.eval_per_class)
    logger.info("final (%.1f min): %s", minutes, format_results(results))
    model.eval()
    saved = {k: v for k, v in asdict(args).items() if k not in ("output_dir", "overwrite_output_dir")}
    with atomic_directory(args.output_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        with open(os.path.join(tmp, "pretraining.json"), "w") as f:
            json.dump({"arguments": saved, "train_minutes": round(minutes, 1),
                       "quick_eval": {k: round(v, 1) for k, v in results.items()}}, f, indent=1)
    logger.info("saved to %s", args.output_dir)
    return results


PRETRAINING = Stage(name="pretrain_world_clip", argument_types=(PretrainArguments,), run=run_pretraining,
                    description="Pretrain the shapes world's base CLIP (plain CLIP loss) or SigLIP (sigmoid loss) "
                                "from scratch.")
