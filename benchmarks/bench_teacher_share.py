"""What the EMA teacher costs, in one process: a NegCLIP-style step, the teacher's no-grad forward alone, and a DeGLA
step, on one `DeGLAForContrastive` (the λ switched in its config), in user and system CPU seconds.

    python benchmarks/bench_teacher_share.py [--batch_size 32] [--repeats 1] [--threads 1]

A second code path beside `bench_training_step.py`, whose rows run in separate processes that hand their freed
heap back to the OS between steps (so that three real-size rows fit in memory on a small machine) and so re-fault
their activations every step. Here nothing is released: DeGLA / NegCLIP is the teacher's forward over a
forward+backward, the floor of DeGLA's extra cost. Inputs are `bench_training_step`'s (ViT-B/32, K = 4, 77 tokens);
one warm-up step of each, then `--repeats` rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_seconds(fn) -> tuple[float, float]:
    """(user, system) CPU seconds of this process over `fn`."""
    start = os.times()
    fn()
    end = os.times()
    return end.user - start.user, end.system - start.system


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_negatives", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model_size", default="vit-b-32")
    args = parser.parse_args(argv)
    import bench_training_step as bench
    import torch

    from degla.modeling_degla import _encode

    torch.set_num_threads(args.threads)
    arch = bench.ARCHITECTURES[args.model_size]
    b, k = args.batch_size, args.num_negatives
    model = bench.build_ours(arch, "degla").train()
    recipe = (model.config.lambda_igc, model.config.lambda_tgc, model.config.lambda_distill)
    pixel_values, texts, mask = bench.make_inputs(arch, b, k)
    inputs = bench.ours_inputs(pixel_values, texts, mask, b, k)

    def step(lambdas):
        model.config.lambda_igc, model.config.lambda_tgc, model.config.lambda_distill = lambdas
        model.zero_grad(set_to_none=True)
        model(**inputs, return_loss=True).loss.backward()

    def teacher_forward():
        with torch.no_grad():
            _encode(model.teacher, pixel_values, texts, mask)

    parts = {"negclip": lambda: step((0, 0, 0)), "teacher_forward": teacher_forward, "degla": lambda: step(recipe)}
    parts["negclip"](), parts["degla"]()  # warm-up
    times = {name: [] for name in parts}
    for _ in range(args.repeats):
        for name, fn in parts.items():
            times[name].append(cpu_seconds(fn))
    result = {name: {"user_s": statistics.median(u for u, _ in t), "system_s": statistics.median(s for _, s in t)}
              for name, t in times.items()}
    total = {name: r["user_s"] + r["system_s"] for name, r in result.items()}
    print(f"{args.model_size}, b={b}, K={k}, {args.threads} thread(s), median of {args.repeats}")
    print("| part | user s | system s |\n|---|---|---|")
    for name, r in result.items():
        print(f"| {name} | {r['user_s']:.1f} | {r['system_s']:.1f} |")
    result["ratio_degla_over_negclip_cpu_time"] = total["degla"] / total["negclip"]
    result["teacher_forward_over_negclip_step"] = total["teacher_forward"] / total["negclip"]
    print(f"DeGLA / NegCLIP-style: {result['ratio_degla_over_negclip_cpu_time']:.2f}; teacher forward / NegCLIP-style "
          f"step: {result['teacher_forward_over_negclip_step']:.2f}")
    return result


if __name__ == "__main__":
    sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]
    main()
