"""The training data path on one CPU core: JPEG decode + the authors' RandomResizedCrop + tokenisation, per sample,
and the data-loader workers a GPU needs to stay fed.

    python benchmarks/bench_data_path.py [--seconds 10] [--gpu_images_per_s 1200] [--output_json FILE]

Real photos (scikit-image's astronaut, coffee, chelsea, rocket, motorcycle, Hubble field) are re-encoded as COCO-like
JPEGs (640×480, quality 90) and read back from disk as `DeGLACollator` reads them (`open_image`: open + full decode),
then go through the training transform (`TrainImageTransform`: `RandomResizedCrop(224, scale=(0.9, 1.0))`,
bicubic, CLIP normalisation) and, for the whole collator, the tokenisation of each caption and its K = 4 negatives
(CLIP BPE, `clean_text`). torch and the process are held to one thread, so each rate is per core: a data-loader
worker is one process on one core.

Workers needed = ceil(GPU images/s ÷ collator samples/s per core). The GPU rate is `--gpu_images_per_s` (e.g.
the `images_per_s` of the DeGLA row of `bench_training_step.py --device cuda`, or of `device_check.sh`); without
it the script prints the formula and the workers that 1 000 / 2 000 / 4 000 images/s would need.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "hubble_deep_field")  # skimage.data
COCO_SIZE = (640, 480)


def write_photos(folder: str) -> list[str]:
    """The real photos as 640×480 JPEGs (quality 90, COCO's typical size and compression); returns their paths."""
    import numpy as np
    from PIL import Image
    from skimage import data

    paths = []
    for name in PHOTOS:
        array = getattr(data, name)()
        array = array[0] if isinstance(array, tuple) else array
        image = Image.fromarray(np.asarray(array)).convert("RGB").resize(COCO_SIZE, Image.Resampling.BICUBIC)
        path = os.path.join(folder, f"{name}.jpg")
        image.save(path, quality=90)
        paths.append(path)
    return paths


def rate(fn, seconds: float) -> tuple[float, float, int]:
    """Calls of `fn` per CPU second of this process and per wall-clock second, over at least `seconds` of CPU
    time (after one warm-up call). On a shared machine the CPU-time rate is what one core of one's own gives."""
    fn()
    calls, start, start_cpu = 0, time.perf_counter(), time.process_time()
    while (cpu := time.process_time() - start_cpu) < seconds:
        fn()
        calls += 1
    return calls / cpu, calls / (time.perf_counter() - start), calls


def processor_224():
    from transformers import CLIPImageProcessorPil, CLIPProcessor
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    from degla.testing_utils import clip_bpe_tokenizer

    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                            image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD)
    return CLIPProcessor(image_processor=image_processor, tokenizer=clip_bpe_tokenizer())


CAPTION_TEXT = "a man in a red jacket rides a black motorcycle down a dusty road"
NEGATIVE_TEXTS = ["a black man in a red jacket rides a motorcycle down a dusty road",
             "a motorcycle in a red jacket rides a black man down a dusty road",
             "a man in a blue jacket rides a black motorcycle down a dusty road",
             "a man in a red jacket rides a black bicycle down a dusty road"]


def measure(seconds: float, batch_size: int) -> dict:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread, as in a data-loader worker (forked)
    import torch

    from degla.training.data import INDEX, NEGATIVES, DeGLACollator, open_image
    from degla.training.transforms import TrainImageTransform

    torch.set_num_threads(1)
    processor = processor_224()
    transform = TrainImageTransform(processor.image_processor, "random_resized_crop", (0.9, 1.0), seed=0)
    collator = DeGLACollator(processor, num_negatives=4, image_transform=transform)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_photos(folder)
        rows = [{"image_path": paths[i % len(paths)], "caption": CAPTION_TEXT, NEGATIVES: NEGATIVE_TEXTS, INDEX: i}
                for i in range(batch_size)]
        decoded = [open_image(row, None) for row in rows]
        counter = iter(range(10 ** 9))

        def decode():
            for row in rows:
                open_image(row, None)

        def augment():  # the crops differ per call (new sample indices), as over an epoch
            start = next(counter) * batch_size
            transform(decoded, list(range(start, start + batch_size)))

        def collate():
            collator(rows)

        def tokenize():
            collator.processor.tokenizer([CAPTION_TEXT, *NEGATIVE_TEXTS] * batch_size, padding=True, truncation=True,
                                         max_length=77, return_tensors="pt")

        jpeg_bytes = sum(os.path.getsize(p) for p in paths) / len(paths)
        results = {}
        for name, fn in (("decode", decode), ("augment", augment), ("tokenize", tokenize), ("collate", collate)):
            per_cpu_s, per_wall_s, calls = rate(fn, seconds)
            results[name] = {"samples_per_s_per_core": per_cpu_s * batch_size,
                             "samples_per_wall_s": per_wall_s * batch_size, "batches_timed": calls}
    decoded_size = decoded[0].size
    return {"photos": list(PHOTOS), "jpeg_size": list(decoded_size), "mean_jpeg_bytes": jpeg_bytes,
            "batch_size": batch_size, "num_negatives": 4, "threads": torch.get_num_threads(), "rates": results}


def workers_needed(gpu_images_per_s: float, per_core: float) -> int:
    return math.ceil(gpu_images_per_s / per_core)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="Timing window per stage.")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--gpu_images_per_s", type=float, help="The GPU's training rate, to size the workers.")
    parser.add_argument("--output_json")
    args = parser.parse_args(argv)
    result = measure(args.seconds, args.batch_size)
    rates = result["rates"]
    per_core = rates["collate"]["samples_per_s_per_core"]
    print(f"{len(PHOTOS)} real photos as {result['jpeg_size'][0]}x{result['jpeg_size'][1]} JPEG "
          f"(~{result['mean_jpeg_bytes'] / 1024:.0f} KiB), batch {args.batch_size}, 1 thread")
    print("| stage | samples/s per core (per CPU second) | samples/s wall-clock |\n|---|---|---|")
    labels = {"decode": "JPEG decode (open_image)", "augment": "RandomResizedCrop(0.9-1) + bicubic + normalise",
              "tokenize": "tokenise caption + 4 negatives", "collate": "whole DeGLACollator (all of the above)"}
    for name, row in rates.items():
        print(f"| {labels[name]} | {row['samples_per_s_per_core']:.1f} | {row['samples_per_wall_s']:.1f} |")
    gpu_rates = [args.gpu_images_per_s] if args.gpu_images_per_s else [1000.0, 2000.0, 4000.0]
    result["workers_needed"] = {str(r): workers_needed(r, per_core) for r in gpu_rates}
    result["gpu_images_per_s_measured"] = args.gpu_images_per_s is not None
    print(f"workers = ceil(GPU images/s / {per_core:.1f})"
          + ("" if args.gpu_images_per_s else " (GPU rate not measured here: examples)") + ": "
          + ", ".join(f"{float(r):g} images/s -> {n}" for r, n in result["workers_needed"].items()))
    if args.output_json:
        from degla.atomic_io import write_json_atomic

        write_json_atomic(args.output_json, result)
    return result


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
