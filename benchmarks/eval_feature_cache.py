"""Measure, in one run, what the evaluation harness's de-duplication and feature cache buy on SugarCrepe.

Builds placeholder images (random pixels, 320x240) for the real SugarCrepe annotation files, then scores the
model twice with the same feature cache: a cold run (empty cache) and a warm run. Reports the
encoded/unique image ratio of the cold run (target 1.0), what a naive per-example encoder would have encoded,
and the warm/cold speed-up. The model is built from a config (random weights, offline) or loaded from a path.

    python benchmarks/eval_feature_cache.py --model vitb32-random
    python benchmarks/eval_feature_cache.py --model tiny --sugarcrepe_dir tests/fixtures/sugarcrepe-sample
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from degla.eval import CLIPFeatureEncoder, evaluate_model  # noqa: E402
from degla.eval.tasks.common import load_metric  # noqa: E402


def build_model(name: str):
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor

    from degla.testing_utils import CLIP_BPE_VOCAB_SIZE, clip_bpe_tokenizer, tiny_clip_config

    if name == "tiny":
        config, size = tiny_clip_config(vocab_size=CLIP_BPE_VOCAB_SIZE), 30
    elif name == "vitb32-random":  # the architecture of openai/clip-vit-base-patch32, random weights
        config, size = CLIPConfig(projection_dim=512), 224
    else:
        return CLIPModel.from_pretrained(name), CLIPProcessor.from_pretrained(name)
    processor = CLIPProcessor(CLIPImageProcessorPil(size={"shortest_edge": size},
                                                    crop_size={"height": size, "width": size}),
                              clip_bpe_tokenizer())
    return CLIPModel(config).eval(), processor


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vitb32-random", help="tiny, vitb32-random, or a CLIPModel path/hub id")
    parser.add_argument("--sugarcrepe_dir", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                                                                 "sugarcrepe-sample"))
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    model, processor = build_model(args.model)
    with tempfile.TemporaryDirectory() as work:
        filenames = {r["filename"] for f in os.listdir(args.sugarcrepe_dir) if f.endswith(".json")
                     for r in json.load(open(os.path.join(args.sugarcrepe_dir, f))).values()}
        rng = np.random.default_rng(0)
        os.makedirs(os.path.join(work, "images"))
        for name in filenames:
            Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(
                os.path.join(work, "images", name))
        data = {"sugarcrepe_dir": args.sugarcrepe_dir, "coco_val2017_dir": os.path.join(work, "images")}
        encoder = CLIPFeatureEncoder(model, processor, batch_size=args.batch_size,
                                     cache_dir=os.path.join(work, "cache"), show_progress=False)
        _ = encoder.fingerprint  # hash the weights once, outside the timings
        load_metric("multiple_choice_accuracy")  # load the metric module once, outside the timings
        timings, infos = [], []
        for run in ("cold", "warm"):
            start = time.perf_counter()
            results = evaluate_model(encoder, ["sugarcrepe"], data, output_dir=os.path.join(work, run), verbose=False,
                                     show_progress=False)
            timings.append(time.perf_counter() - start)
            infos.append(json.load(open(os.path.join(work, run, "run_info.json")))
                         ["tasks"]["sugarcrepe"]["encoding"]["sugarcrepe"])
        cold, warm = infos
        assert json.load(open(os.path.join(work, "warm", "results.json"))) == {"sugarcrepe": results["sugarcrepe"]}
    print(f"model: {args.model}; SugarCrepe annotations: {args.sugarcrepe_dir}")
    print(f"pairs (naive per-example image encodes): {cold['images_requested']}")
    print(f"unique images: {cold['images_unique']}, encoded in the cold run: {cold['images_encoded']} "
          f"-> encoded/unique = {cold['images_encoded'] / cold['images_unique']:.2f} (target 1.0); "
          f"naive/unique = {cold['images_requested'] / cold['images_unique']:.2f}")
    print(f"texts: {cold['texts_requested']} requested, {cold['texts_unique']} unique, {cold['texts_encoded']} encoded")
    print(f"warm run: {warm['images_encoded']} images and {warm['texts_encoded']} texts encoded, "
          f"{warm['cache_hits']} cache hits")
    print(f"time: cold {timings[0]:.2f} s, warm {timings[1]:.2f} s -> cache speed-up x{timings[0] / timings[1]:.1f}")


if __name__ == "__main__":
    main()
