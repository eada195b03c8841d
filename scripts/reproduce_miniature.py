"""The paper's central claim in miniature: table 7's ablation and figure 5's trade-off, on the shapes world.

    python scripts/reproduce_miniature.py                       # everything below, seeds 0 1 2 (~25 min, 2 cores)
    python scripts/reproduce_miniature.py --seeds 0 --variants base negclip degla --quick   # a smoke run

Every variant fine-tunes the shipped base CLIP (`degla/world/base_model`) on the world's fine-tuning data with
rule-based negatives, through `run_training` (the code behind `scripts/train.py`), then scores the export with
`evaluate_model` (the code behind `scripts/evaluate_clip.py`) on the world's benchmarks in the real formats.
Writes `<output_dir>/results.md` (means ± std over seeds), `results.json` (every run) and `tradeoff.png`.
Rows: the base model; NegCLIP-style (base loss with negatives) at the recipe's learning rate and at two lower
ones (its own compositional/general trade-off); DeGLA without self-distillation; DeGLA (paper's λ); and DeGLA
with the λ3 values of `--lambda_distill_sweep` (default 0.02 0.1; figure 6b).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

from transformers import HfArgumentParser

from degla.eval import evaluate_model
from degla.training import DeGLATrainingArguments
from degla.training.run import ScriptArguments, run_training
from degla.world.pipeline import BASE_MODEL_DIR, DEFAULT_CACHE_DIR, build_benchmarks, demo_train_args

# Table 7's rows (CN = compositional negatives, SD = self-distillation) plus a plain fine-tune control.
VARIANTS = {
    "finetune": {"num_negatives": 0, "lambda_igc": 0, "lambda_tgc": 0, "lambda_distill": 0},
    "negclip": {"lambda_igc": 0, "lambda_tgc": 0, "lambda_distill": 0},  # CN
    # NegCLIP forgets less when it trains less: its own trade-off curve, to compare DeGLA's against
    "negclip lr=1e-4": {"lambda_igc": 0, "lambda_tgc": 0, "lambda_distill": 0, "learning_rate": 1e-4},
    "negclip lr=5e-5": {"lambda_igc": 0, "lambda_tgc": 0, "lambda_distill": 0, "learning_rate": 5e-5},
    "cn+igc": {"lambda_tgc": 0, "lambda_distill": 0},
    "cn+tgc": {"lambda_igc": 0, "lambda_distill": 0},
    "cn+igc+tgc": {"lambda_distill": 0},  # DeGLA without self-distillation
    "degla": {},  # CN + IGC + TGC + SD
}
DEFAULT_VARIANTS = ["base", "negclip", "negclip lr=1e-4", "negclip lr=5e-5", "cn+igc+tgc", "degla"]
# The two curves of the plot: DeGLA as λ3 grows (figure 6b) and NegCLIP as its learning rate shrinks.
DEGLA_CURVE = {"cn+igc+tgc": 0.0, "degla": 0.005}
NEGCLIP_CURVE = {"negclip": 3e-4, "negclip lr=1e-4": 1e-4, "negclip lr=5e-5": 5e-5}
TASKS = ["sugarcrepe", "aro", "zeroshot", "retrieval"]
METRICS = ("Replace", "Swap", "Add", "SugarCrepe", "VG-Rel.", "VG-Attr.", "Order", "ARO", "Compositional",
           "ZS seen", "ZS held-out", "ZS avg", "Retrieval R@1")


def summarise(results: dict) -> dict[str, float]:
    """The table's numbers for one run. The world has no Flickr30k, so ARO's mean is over the three others."""
    sugarcrepe, aro, zeroshot, retrieval = (results[t] for t in TASKS)
    out = {"Replace": sugarcrepe["replace"], "Swap": sugarcrepe["swap"], "Add": sugarcrepe["add"],
           "SugarCrepe": sugarcrepe["avg"], "VG-Rel.": aro["vg_relation"], "VG-Attr.": aro["vg_attribution"],
           "Order": aro["coco_order"]}
    out["ARO"] = statistics.mean([out["VG-Rel."], out["VG-Attr."], out["Order"]])
    out["Compositional"] = (out["SugarCrepe"] + out["ARO"]) / 2
    out.update({"ZS seen": zeroshot["colour_shape"], "ZS held-out": zeroshot["heldout"], "ZS avg": zeroshot["avg"],
                "Retrieval R@1": (retrieval["coco_i2t_r1"] + retrieval["coco_t2i_r1"]) / 2})
    return out


def train_variant(name: str, overrides: dict, seed: int, output_dir: str, cache_dir: str, quick: bool) -> str:
    extra = {"seed": seed, **overrides}
    if quick:
        extra["max_steps"] = 5
    argv = demo_train_args(output_dir=os.path.join(output_dir, "runs", f"{name}-s{seed}"), cache_dir=cache_dir,
                           **extra)
    script_args, training_args = HfArgumentParser((ScriptArguments, DeGLATrainingArguments)) \
        .parse_args_into_dataclasses(argv + ["--disable_tqdm", "true"])
    return run_training(script_args, training_args)


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 \
        else f"{values[0]:.1f}"


def write_report(runs: dict[str, list[dict]], output_dir: str, title: str) -> str:
    lines = [f"## {title}\n", "| Variant | seeds | " + " | ".join(METRICS) + " |",
             "|---|---:|" + "---:|" * len(METRICS)]
    for name, summaries in runs.items():
        cells = [mean_std([s[c] for s in summaries]) for c in METRICS]
        lines.append(f"| {name} | {len(summaries)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, list[dict]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.8), dpi=150)
    degla = {**DEGLA_CURVE, **{n: float(n.split("=")[1]) for n in runs if n.startswith("degla λ3=")}}
    for curve, label in ((degla, "DeGLA, λ3 = {}"), (NEGCLIP_CURVE, "NegCLIP-style, lr = {}")):
        points = sorted((value, name) for name, value in curve.items() if name in runs)
        if len(points) > 1:
            ax.plot([statistics.mean(s["Compositional"] for s in runs[n]) for _, n in points],
                    [statistics.mean(s["ZS avg"] for s in runs[n]) for _, n in points], "--", lw=1,
                    label=label.format(", ".join(f"{v:g}" for v, _ in points)))
    for name, summaries in runs.items():
        xs, ys = [s["Compositional"] for s in summaries], [s["ZS avg"] for s in summaries]
        x, y = statistics.mean(xs), statistics.mean(ys)
        ex = statistics.stdev(xs) if len(xs) > 1 else 0
        ey = statistics.stdev(ys) if len(ys) > 1 else 0
        ax.errorbar(x, y, xerr=ex, yerr=ey, fmt="o", capsize=3, label=name)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 5), fontsize=8)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_xlabel("Compositional (mean of SugarCrepe and ARO averages), %")
    ax.set_ylabel("Zero-shot classification (mean of seen and held-out), %")
    ax.set_title("Shapes world: compositional gain vs general ability (mean ± std)")
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=["base", *VARIANTS],
                        help="Rows to run (table 7 also has cn+igc and cn+tgc; `finetune` is plain CLIP loss).")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--lambda_distill_sweep", nargs="*", type=float, default=[0.02, 0.1],
                        help="Extra full-DeGLA runs with these λ3 values (figure 6b).")
    parser.add_argument("--output_dir", default="results/miniature")
    parser.add_argument("--cache_dir", default=DEFAULT_CACHE_DIR)
    parser.add_argument("--quick", action="store_true", help="5 training steps per run (smoke test).")
    args = parser.parse_args()
    os.makedirs(args.output_dir, exist_ok=True)
    data = build_benchmarks(cache_dir=args.cache_dir)

    def score(model_dir: str) -> dict:
        return evaluate_model(model_dir, TASKS, data, batch_size=256, num_workers=0, show_progress=False,
                              verbose=False, cache_dir=None)

    plan = [(name, VARIANTS.get(name, {})) for name in args.variants]
    plan += [(f"degla λ3={value:g}", {"lambda_distill": value}) for value in args.lambda_distill_sweep]
    raw: dict[str, list[dict]] = {}
    for name, overrides in plan:
        for seed in ([args.seeds[0]] if name == "base" else args.seeds):
            model_dir = BASE_MODEL_DIR if name == "base" else train_variant(
                name.replace(" ", "_").replace("=", ""), overrides, seed, args.output_dir, args.cache_dir, args.quick)
            results = score(model_dir)
            raw.setdefault(name, []).append({"seed": seed, "results": results, "summary": summarise(results)})
            print(f"{name} seed {seed}: " + ", ".join(f"{k} {v:.1f}" for k, v in summarise(results).items()),
                  flush=True)
    runs = {name: [r["summary"] for r in entries] for name, entries in raw.items()}
    with open(os.path.join(args.output_dir, "results.json"), "w") as f:
        json.dump(raw, f, indent=1)
    report = write_report(runs, args.output_dir, f"Shapes world, seeds {args.seeds}")
    with open(os.path.join(args.output_dir, "results.md"), "w") as f:
        f.write(report)
    plot(runs, os.path.join(args.output_dir, "tradeoff.png"))
    print(report)


if __name__ == "__main__":
    main()
