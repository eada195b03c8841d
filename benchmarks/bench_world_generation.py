"""How fast the shapes world is, and how much of a pretraining step its data costs.

    python benchmarks/bench_world_generation.py [--n 20000]

Reports images/s of `generate` for both distributions, the time to write every benchmark, and, measured in
the same run, the ratio of one batch's data (sample + caption + render + tokenise) to one training step of the
base CLIP on it.
"""

import argparse
import tempfile
import time

import numpy as np
import torch
from transformers import CLIPModel

from degla.world.benchmarks import write_benchmarks
from degla.world.clip import pixel_values, world_clip_config, world_processor
from degla.world.shapes import finetuning_config, generate, pretraining_config


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--batch_size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, config in (("pretraining", pretraining_config()), ("finetuning", finetuning_config())):
        start = time.perf_counter()
        generate(config, args.n, seed=0)
        seconds = time.perf_counter() - start
        rows.append((f"generate {args.n} ({name})", seconds, f"{args.n / seconds:,.0f} images/s"))
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        counts = write_benchmarks(root)
        rows.append(("write_benchmarks (defaults)", time.perf_counter() - start, f"{sum(counts.values()):,} items"))

    processor = world_processor()
    model = CLIPModel(world_clip_config(processor.tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data_s, step_s = [], []
    for step in range(4):
        start = time.perf_counter()
        sample = generate(pretraining_config(), args.batch_size, seed=step)
        text = processor.tokenizer([c[0] for c in sample.captions], padding=True, return_tensors="pt")
        pixels = pixel_values(sample.images)
        data_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        model(**text, pixel_values=pixels, return_loss=True).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        step_s.append(time.perf_counter() - start)
    data, train = np.median(data_s[1:]), np.median(step_s[1:])
    rows.append((f"one batch of {args.batch_size}: data / training step", data,
                 f"ratio {data / train:.2f} ({train:.2f} s step)"))
    print(f"| {'measure':<52} | {'seconds':>8} | note |\n|{'-' * 54}|{'-' * 10}|------|")
    for name, seconds, note in rows:
        print(f"| {name:<52} | {seconds:8.2f} | {note} |")


if __name__ == "__main__":
    main()
