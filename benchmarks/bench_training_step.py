"""Cost of DeGLA over a NegCLIP-style step at ViT-B/32 size on the CPU, measured in one run.

    python benchmarks/bench_training_step.py [--batch_size 8] [--num_negatives 4] [--repeats 5]

Both steps see the same B images and B·(1+K) texts. NegCLIP-style = student forward + backward of the
hard-negative CLIP loss (all λ = 0: no teacher, no extra terms). DeGLA = the full objective (teacher forward
under no_grad, IGC, TGC, distillation). The AdamW step (identical for both) and the EMA update are timed on their
own. Timings are interleaved medians; the printed ratios are what to compare (targets: DeGLA/NegCLIP ≤ 1.40,
EMA ≤ 2 % of a DeGLA training step = forward + backward + optimizer step).
"""

import argparse
import statistics
import time

import torch
from transformers import CLIPConfig, CLIPModel

from degla import DeGLAForContrastive


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_negatives", type=int, default=4)
    parser.add_argument("--text_length", type=int, default=20, help="Tokens per caption (COCO captions: ~15-20).")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    b, k, length = args.batch_size, args.num_negatives, args.text_length
    model = DeGLAForContrastive.from_clip(CLIPModel(CLIPConfig()))  # ViT-B/32 sizes, random weights
    model.train()
    config = model.config
    ids = torch.randint(1, 49000, (b, length))
    neg = torch.randint(1, 49000, (b, k, length))
    ids[:, -1] = neg[..., -1] = 49407
    inputs = dict(input_ids=ids, negative_input_ids=neg, pixel_values=torch.randn(b, 3, 224, 224), return_loss=True)

    def step(lambdas):
        config.lambda_igc, config.lambda_tgc, config.lambda_distill = lambdas
        model.zero_grad(set_to_none=True)
        model(**inputs).loss.backward()

    degla = (0.1, 0.1, 0.005)
    negclip = (0.0, 0.0, 0.0)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    step(degla), step(negclip), optimizer.step()  # warm-up (and AdamW state allocation)
    times = {"negclip": [], "degla": [], "optimizer": [], "ema": []}
    for _ in range(args.repeats):
        times["negclip"].append(timed(lambda: step(negclip)))
        times["degla"].append(timed(lambda: step(degla)))
        times["optimizer"].append(timed(optimizer.step))
        times["ema"].append(timed(model.update_teacher))
    med = {name: statistics.median(values) for name, values in times.items()}
    params = sum(p.numel() for p in model.student.parameters()) / 1e6
    print(f"ViT-B/32 ({params:.0f}M params), b={b}, K={k}, L={length}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    print(f"| step | seconds |\n|---|---|\n| NegCLIP-style forward+backward | {med['negclip']:.3f} |\n"
          f"| DeGLA forward+backward | {med['degla']:.3f} |\n| AdamW step | {med['optimizer']:.3f} |\n"
          f"| EMA teacher update | {med['ema']:.4f} |")
    full_step = med["degla"] + med["optimizer"]
    print(f"DeGLA / NegCLIP-style (forward+backward): {med['degla'] / med['negclip']:.2f}  (target <= 1.40)")
    print(f"DeGLA / NegCLIP-style (with the AdamW step): {full_step / (med['negclip'] + med['optimizer']):.2f}")
    print(f"EMA update / DeGLA training step: {100 * med['ema'] / full_step:.2f} %  (target <= 2 %); "
          f"/ forward+backward alone: {100 * med['ema'] / med['degla']:.2f} %")


if __name__ == "__main__":
    main()
