"""Convert OpenAI-CLIP / open_clip ViT state dicts (DeGLA, NegCLIP, CE-CLIP releases) into `CLIPModel`.

The released `.pt` files hold the OpenAI layout (`visual.conv1.weight`, `transformer.resblocks.N.attn.in_proj_weight`,
...), often under a `state_dict` key and with DDP's `module.` prefix. The config is inferred from tensor shapes;
heads default to width // 64 as in OpenAI's `build_model`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from .cli import Stage

# Keys some releases carry that are not weights (OpenAI's JIT metadata, open_clip's causal-mask buffer).
_NON_WEIGHT_KEYS = {"input_resolution", "context_length", "vocab_size", "attn_mask"}


def load_openclip_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Read a `.pt` checkpoint (weights only, no pickled code) and strip `state_dict`/`module.` wrappers."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: expected a state dict (or a dict with 'state_dict'), "
                         f"got {type(checkpoint).__name__}")
    return {re.sub(r"^module\.", "", k): v for k, v in checkpoint.items() if k not in _NON_WEIGHT_KEYS}


class _RecordingDict(dict):
    """A dict that remembers which keys were read, to report source weights a conversion ignored."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _num_layers(state_dict: dict, prefix: str) -> int:
    layers = {int(m.group(1)) for k in state_dict if (m := re.match(rf"{re.escape(prefix)}(\d+)\.", k))}
    return len(layers)


def infer_clip_config(state_dict: dict[str, torch.Tensor], hidden_act: str = "quick_gelu",
                      text_heads: int | None = None, vision_heads: int | None = None) -> CLIPConfig:
    """A `CLIPConfig` matching an OpenAI-layout ViT CLIP state dict."""
    if "visual.conv1.weight" not in state_dict:
        raise ValueError("not an OpenAI/open_clip ViT CLIP state dict: no 'visual.conv1.weight' "
                         "(ResNet CLIPs have no transformers CLIPModel equivalent)")
    vision_width, _, patch, _ = state_dict["visual.conv1.weight"].shape
    grid = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = state_dict["ln_final.weight"].shape[0]
    vocab_size = state_dict["token_embedding.weight"].shape[0]
    projection_dim = state_dict["text_projection"].shape[1]
    text = dict(vocab_size=vocab_size, hidden_size=text_width, intermediate_size=4 * text_width,
                num_hidden_layers=_num_layers(state_dict, "transformer.resblocks."),
                num_attention_heads=text_heads or text_width // 64,
                max_position_embeddings=state_dict["positional_embedding"].shape[0], hidden_act=hidden_act,
                projection_dim=projection_dim, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
                pad_token_id=vocab_size - 1)
    vision = dict(hidden_size=vision_width, intermediate_size=4 * vision_width,
                  num_hidden_layers=_num_layers(state_dict, "visual.transformer.resblocks."),
                  num_attention_heads=vision_heads or vision_width // 64, image_size=patch * grid, patch_size=patch,
                  hidden_act=hidden_act, projection_dim=projection_dim)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)


def _convert_blocks(sd: dict, src: str, dst: str, num_layers: int) -> dict[str, torch.Tensor]:
    out = {}
    for i in range(num_layers):
        s, d = f"{src}{i}.", f"{dst}{i}."
        for name, (w, b) in zip("qkv", zip(sd[s + "attn.in_proj_weight"].chunk(3),
                                           sd[s + "attn.in_proj_bias"].chunk(3))):
            out[f"{d}self_attn.{name}_proj.weight"], out[f"{d}self_attn.{name}_proj.bias"] = w, b
        renames = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
                   "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
        for old, new in renames.items():
            for p in ("weight", "bias"):
                out[f"{d}{new}.{p}"] = sd[f"{s}{old}.{p}"]
    return out


def convert_openclip_state_dict(state_dict: dict[str, torch.Tensor], config: CLIPConfig) -> dict[str, torch.Tensor]:
    """Map OpenAI-layout keys to `CLIPModel` keys (q/k/v split, projections transposed)."""
    sd = state_dict
    out = {
        "logit_scale": sd["logit_scale"].reshape(()),
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_model.final_layer_norm.weight": sd["ln_final.weight"],
        "text_model.final_layer_norm.bias": sd["ln_final.bias"],
        "text_projection.weight": sd["text_projection"].t().contiguous(),
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
        "visual_projection.weight": sd["visual.proj"].t().contiguous(),
    }
    out.update(_convert_blocks(sd, "transformer.resblocks.", "text_model.encoder.layers.",
                               config.text_config.num_hidden_layers))
    out.update(_convert_blocks(sd, "visual.transformer.resblocks.", "vision_model.encoder.layers.",
                               config.vision_config.num_hidden_layers))
    return out


def convert_openclip_checkpoint(state_dict: dict[str, torch.Tensor], hidden_act: str = "quick_gelu",
                                text_heads: int | None = None, vision_heads: int | None = None) -> CLIPModel:
    """Build a `CLIPModel` from an OpenAI-layout state dict; every source and target key must be used."""
    config = infer_clip_config(state_dict, hidden_act, text_heads, vision_heads)
    source = _RecordingDict(state_dict)
    converted = convert_openclip_state_dict(source, config)
    model = CLIPModel(config)
    expected = set(model.state_dict())
    missing, unexpected = expected - set(converted), set(converted) - expected
    unused = set(state_dict) - source.read
    if missing or unexpected or unused:
        raise ValueError(f"conversion mismatch: missing={sorted(missing)} unexpected={sorted(unexpected)} "
                         f"unused source keys={sorted(unused)[:20]}")
    model.load_state_dict(converted, strict=True)
    return model


def openai_clip_processor(image_size: int) -> CLIPProcessor:
    """OpenAI CLIP's preprocessing (bicubic resize, centre crop, OpenAI mean/std) and BPE tokenizer, offline.

    Saved, it is a plain `CLIPImageProcessor` config (the PIL class is used here only because the default class
    needs torchvision, and asking for it without torchvision warns). transformers' centre crop is off by one pixel
    from torchvision's for some image sizes; `degla.eval.OpenCLIPImageProcessor` reads this same config with
    torchvision's crop and is what the evaluation harness uses (docs/evaluation.md, Parity).
    """
    from .testing_utils import clip_bpe_tokenizer

    image_processor = CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size},
                                         image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD)
    return CLIPProcessor(image_processor=image_processor, tokenizer=clip_bpe_tokenizer())


@dataclass
class ConversionArguments:
    checkpoint: str = field(metadata={"help": "OpenAI/open_clip `.pt` state dict (weights only)."})
    output_dir: str = field(metadata={"help": "Folder for the CLIPModel checkpoint (safetensors)."})
    hidden_act: str = field(default="quick_gelu", metadata={
        "help": "quick_gelu for OpenAI weights and their fine-tunes; gelu for open_clip models trained without "
                "QuickGELU (e.g. LAION `ViT-B-32`).", "choices": ["quick_gelu", "gelu"]})
    text_heads: int | None = field(default=None, metadata={"help": "Text attention heads (default width // 64)."})
    vision_heads: int | None = field(default=None, metadata={"help": "Vision attention heads (default width // 64)."})
    processor_name_or_path: str | None = field(default=None, metadata={
        "help": "Copy this CLIPProcessor (hub id or folder) instead of building OpenAI's offline."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Also upload the folder to this repo id."})


def run_conversion(args: ConversionArguments) -> str:
    """Convert `args.checkpoint` into a `CLIPModel` folder (written whole or not at all); returns its path."""
    from .atomic_io import atomic_directory
    from .errors import MissingPathError
    from .hub import model_loading, push_folder

    if not os.path.isfile(args.checkpoint):
        raise MissingPathError(f"--checkpoint {args.checkpoint!r}: no such file")
    processor = None
    if args.processor_name_or_path:  # a processor that cannot be loaded stops the run before the checkpoint is read
        with model_loading("--processor_name_or_path", args.processor_name_or_path):
            processor = CLIPProcessor.from_pretrained(args.processor_name_or_path)
    state_dict = load_openclip_state_dict(args.checkpoint)
    model = convert_openclip_checkpoint(state_dict, args.hidden_act, args.text_heads, args.vision_heads)
    if processor is None:
        processor = openai_clip_processor(model.config.vision_config.image_size)
    with atomic_directory(args.output_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
    if args.push_to_hub:
        push_folder(args.output_dir, args.push_to_hub, commit_message="Upload converted CLIP checkpoint")
    print(f"Converted {os.path.basename(args.checkpoint)} -> {args.output_dir} "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")
    return args.output_dir


CONVERSION = Stage(name="convert_openclip_to_hf", argument_types=(ConversionArguments,), run=run_conversion,
                   description="Convert an OpenAI-CLIP / open_clip ViT checkpoint into a drop-in CLIPModel.")
