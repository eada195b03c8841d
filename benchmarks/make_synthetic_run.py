"""A random-initialised CLIP checkpoint and a synthetic negatives dataset, for timing `scripts/train.py` with no
download (benchmarks/device_check.sh).

    python benchmarks/make_synthetic_run.py --output_dir /tmp/synthetic [--model_size vit-b-32] [--num_rows 2048]

Writes `<output_dir>/model` (a `CLIPModel` of the benchmark's architecture, random weights, with OpenAI's
preprocessing and the real CLIP BPE tokenizer) and `<output_dir>/data` (a `save_to_disk` negatives dataset in
`degla.schema`'s columns: `caption`, `image_path`, one `neg_<rule>` per rule), its images as JPEG files under
`<output_dir>/images` (640×480 for ViT-B/32, COCO's size; noise plus smooth shapes, so the decoder works as on
photos), to train with `--train_file <output_dir>/data --image_root <output_dir>/images`. Quality means nothing
here: this is for speed and memory.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ["red", "blue", "green", "small", "large", "wooden", "dog", "cat", "car", "table", "tree", "man", "woman",
         "bench", "horse", "street", "kitchen", "bowl"]


def _caption(rng) -> str:
    a, b, c, d, e = rng.choice(WORDS, 5, replace=False)
    return f"a {a} {b} standing next to a {c} {d} near the {e}"


def write_images(folder: str, count: int, size: tuple[int, int], rng) -> list[str]:
    """`count` distinct JPEGs (a few templates with noise and an offset, so no two files are equal)."""
    import numpy as np
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    names = []
    for i in range(count):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(h // 8, h // 2)
        base = np.stack([(x + i * 7) % 256, (y + i * 13) % 256, ((x + y) // 2) % 256], axis=-1).astype(np.float32)
        base[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        name = f"{i:06d}.jpg"
        Image.fromarray(pixels).save(os.path.join(folder, name), quality=90)
        names.append(name)
    return names


def make(output_dir: str, model_size: str = "vit-b-32", num_rows: int = 2048, num_images: int = 256,
         seed: int = 0) -> dict[str, str]:
    import numpy as np
    import torch
    from bench_training_step import ARCHITECTURES, hf_clip_config
    from datasets import Dataset
    from transformers import CLIPModel

    from degla.conversion import openai_clip_processor
    from degla.schema import RULES, neg_column

    if os.path.exists(output_dir) and os.listdir(output_dir):
        raise SystemExit(f"error: {output_dir} is not empty; choose a new --output_dir")
    arch = ARCHITECTURES[model_size]
    torch.manual_seed(seed)
    model_dir, data_dir, image_dir = (os.path.join(output_dir, name) for name in ("model", "data", "images"))
    CLIPModel(hf_clip_config(arch)).save_pretrained(model_dir)
    openai_clip_processor(arch["image_resolution"]).save_pretrained(model_dir)
    rng = np.random.default_rng(seed)
    size = (640, 480) if arch["image_resolution"] >= 224 else (arch["image_resolution"] * 2,) * 2
    images = write_images(image_dir, min(num_images, num_rows), size, rng)
    rows = {"caption": [_caption(rng) for _ in range(num_rows)],
            "image_path": [images[i % len(images)] for i in range(num_rows)]}
    rows.update({neg_column(rule): [_caption(rng) for _ in range(num_rows)] for rule in RULES})
    Dataset.from_dict(rows).save_to_disk(data_dir)
    return {"model": model_dir, "data": data_dir, "images": image_dir}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--model_size", choices=["vit-b-32", "tiny"], default="vit-b-32")
    parser.add_argument("--num_rows", type=int, default=2048, help="Captions (each with 5 rule negatives).")
    parser.add_argument("--num_images", type=int, default=256, help="Distinct JPEG files (rows cycle over them).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = make(args.output_dir, args.model_size, args.num_rows, args.num_images, args.seed)
    print(" ".join(f"{name}={path}" for name, path in paths.items()))


if __name__ == "__main__":
    sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]
    main()
