"""Convert an OpenAI-CLIP / open_clip ViT checkpoint (DeGLA, NegCLIP, CE-CLIP releases) into a drop-in `CLIPModel`.

Usage:
    python scripts/convert_openclip_to_hf.py --checkpoint epoch_5.pt --output_dir degla-vitb32-hf
    python -c "from transformers import CLIPModel; CLIPModel.from_pretrained('degla-vitb32-hf')"

The processor saved beside the weights is OpenAI CLIP's (BPE tokenizer from `clip-anytorch`, OpenAI image
mean/std), or the one of `--processor_name_or_path` (e.g. `openai/clip-vit-base-patch32`).
"""

import argparse
import logging

from transformers import CLIPProcessor

from degla.conversion import convert_openclip_checkpoint, load_openclip_state_dict, openai_clip_processor

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="OpenAI/open_clip `.pt` state dict (weights only).")
    parser.add_argument("--output_dir", required=True, help="Folder for the CLIPModel checkpoint (safetensors).")
    parser.add_argument("--hidden_act", default="quick_gelu", choices=["quick_gelu", "gelu"],
                        help="quick_gelu for OpenAI weights and their fine-tunes; gelu for open_clip models trained "
                             "without QuickGELU (e.g. LAION `ViT-B-32`).")
    parser.add_argument("--text_heads", type=int, default=None, help="Text attention heads (default width // 64).")
    parser.add_argument("--vision_heads", type=int, default=None, help="Vision attention heads (default width // 64).")
    parser.add_argument("--processor_name_or_path", default=None,
                        help="Copy this CLIPProcessor (hub id or folder) instead of building OpenAI's offline.")
    parser.add_argument("--push_to_hub", default=None, metavar="REPO_ID", help="Also upload the folder to this repo.")
    return parser


def main(args: argparse.Namespace) -> None:
    state_dict = load_openclip_state_dict(args.checkpoint)
    model = convert_openclip_checkpoint(state_dict, args.hidden_act, args.text_heads, args.vision_heads)
    if args.processor_name_or_path:
        processor = CLIPProcessor.from_pretrained(args.processor_name_or_path)
    else:
        processor = openai_clip_processor(model.config.vision_config.image_size)
    model.save_pretrained(args.output_dir, safe_serialization=True)
    processor.save_pretrained(args.output_dir)
    if args.push_to_hub:
        model.push_to_hub(args.push_to_hub)
        processor.push_to_hub(args.push_to_hub)
    logger.warning("Converted %s -> %s (%.1fM parameters)", args.checkpoint, args.output_dir,
                   sum(p.numel() for p in model.parameters()) / 1e6)


if __name__ == "__main__":
    main(build_parser().parse_args())
