"""Convert an OpenAI-CLIP / open_clip ViT checkpoint (DeGLA, NegCLIP, CE-CLIP releases) into a drop-in `CLIPModel`.

Usage:
    python scripts/convert_openclip_to_hf.py --checkpoint epoch_5.pt --output_dir degla-vitb32-hf
    python -c "from transformers import CLIPModel; CLIPModel.from_pretrained('degla-vitb32-hf')"

The processor saved beside the weights is OpenAI CLIP's (BPE tokenizer from `clip-anytorch`, OpenAI image
mean/std), or the one of `--processor_name_or_path` (e.g. `openai/clip-vit-base-patch32`).
"""

from degla.cli import main
from degla.conversion import CONVERSION

if __name__ == "__main__":
    main(CONVERSION)
