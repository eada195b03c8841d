"""The shapes-world study behind the README's miniature: table 7's ablation, figure 5's trade-off and the EMA time
constant, each point over several seeds, with the comparisons decided by a rule fixed in advance
(docs/world.md, "The study's design").

Every run fine-tunes the shipped base CLIP (`degla/world/base_model`) through `run_training` (the code behind
`scripts/train.py`) on the corrected recipe, then scores the export with `evaluate_model` (the code behind the
evaluation script) on the world's benchmarks in the real formats. Runs go to `<output_dir>/runs/<run>/result.json`
(written atomically: a finished run is never redone, an interrupted study resumes), one process per run with one
thread, so a run's numbers do not depend on how many run side by side (`--jobs`).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np

from ..atomic_io import write_file_atomic, write_json_atomic, write_text_atomic
from ..cli import Stage
from ..configuration_degla import objective_fields
from ..hub import public_name
from .pipeline import WORLD_RECIPE

WORLD_LR, WORLD_EMA_DECAY = WORLD_RECIPE["learning_rate"], WORLD_RECIPE["ema_decay"]
PAPER = {f.name: f.default for f in objective_fields() if f.name.startswith("lambda_")}  # the paper's λ1-3
OFF = {name: 0.0 for name in PAPER}

# -- the design (docs/world.md restates it; it was written before any run of this study) --------------------------
ABLATION = {  # table 7's rows on the world, at the world recipe's learning rate
    "negclip": {**OFF},  # + hard negatives (CN): the base loss with K negatives
    "cn+igc": {**OFF, "lambda_igc": 0.1},
    "cn+tgc": {**OFF, "lambda_tgc": 0.1},
    "cn+igc+tgc": {**PAPER, "lambda_distill": 0.0},
    "degla": {**PAPER},  # + self-distillation
}
NEGCLIP_LRS = (3e-4, 2e-4, 1e-4, 5e-5, 2.5e-5, 1e-5)  # NegCLIP's own trade-off: train less, forget less
DEGLA_LAMBDA3 = (0.005, 0.02, 0.1)  # × DEGLA_LRS: as many points as NegCLIP's curve (equal effort)
DEGLA_LRS = (3e-4, 1e-4)
EMA_DECAYS = (0.9, 0.97, 0.99, 1.0)  # time constants of 10, 33, 100 steps and a frozen teacher (the run: 62)
SEEDS = (0, 1, 2, 3, 4)
TASKS = ("sugarcrepe", "aro", "zeroshot", "retrieval")
METRICS = ("Replace", "Swap", "Add", "SugarCrepe", "VG-Rel.", "VG-Attr.", "Order", "ARO", "Compositional",
           "ZS seen", "ZS held-out", "Retrieval R@1")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def world_point(**overrides) -> dict:
    """A configuration: the world recipe's learning rate and EMA decay, changed by `overrides`."""
    return {"learning_rate": WORLD_LR, "ema_decay": WORLD_EMA_DECAY, **overrides}


def run_name(overrides: dict) -> str:
    """A stable name for a configuration (its overrides of the world recipe)."""
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(overrides.items()))


@dataclass(frozen=True)
class Point:
    """One configuration of the study, run over every seed."""

    label: str
    overrides: dict = field(hash=False)
    series: tuple[str, ...] = ()  # ablation / negclip_lr / degla_lr=... / ema

    @property
    def key(self) -> str:
        return run_name(self.overrides)


def design() -> list[Point]:
    """Every configuration of the study; configurations shared between series are run once."""
    points: dict[str, Point] = {}

    def add(label: str, overrides: dict, series: str):
        overrides = world_point(**overrides)
        key = run_name(overrides)
        old = points.get(key)
        points[key] = Point(old.label if old else label, overrides, (*(old.series if old else ()), series))

    for name, overrides in ABLATION.items():
        add(name, overrides, "ablation")
    for lr in NEGCLIP_LRS:
        add(f"negclip lr={lr:g}", {**OFF, "learning_rate": lr}, "negclip_lr")
    for lr in DEGLA_LRS:
        for value in DEGLA_LAMBDA3:
            add(f"degla lr={lr:g} λ3={value:g}", {**PAPER, "learning_rate": lr, "lambda_distill": value},
                f"degla_lr={lr:g}")
    for decay in EMA_DECAYS:
        add(f"degla α={decay:g}", {**PAPER, "ema_decay": decay}, "ema")
    return list(points.values())


# -- one run -----------------------------------------------------------------------------------------------------
def summarise(results: dict) -> dict[str, float]:
    """The table's numbers for one run. The world has no Flickr30k, so ARO's mean is over the three others."""
    sugarcrepe, aro, zeroshot, retrieval = (results[t] for t in TASKS)
    out = {"Replace": sugarcrepe["replace"], "Swap": sugarcrepe["swap"], "Add": sugarcrepe["add"],
           "SugarCrepe": sugarcrepe["avg"], "VG-Rel.": aro["vg_relation"], "VG-Attr.": aro["vg_attribution"],
           "Order": aro["coco_order"]}
    out["ARO"] = statistics.mean([out["VG-Rel."], out["VG-Attr."], out["Order"]])
    out["Compositional"] = (out["SugarCrepe"] + out["ARO"]) / 2
    out.update({"ZS seen": zeroshot["colour_shape"], "ZS held-out": zeroshot["heldout"],
                "Retrieval R@1": (retrieval["coco_i2t_r1"] + retrieval["coco_t2i_r1"]) / 2})
    return {k: round(v, 4) for k, v in out.items()}


def score(model_dir: str, cache_dir: str) -> dict:
    from ..eval import evaluate_model
    from .pipeline import build_benchmarks

    return evaluate_model(model_dir, list(TASKS), build_benchmarks(cache_dir=cache_dir), batch_size=256,
                          num_workers=0, show_progress=False, verbose=False, cache_dir=None)


def run_one(overrides: dict, seed: int, run_dir: str, cache_dir: str, max_steps: int | None,
            keep_models: bool, base_model: str | None = None) -> dict:
    """Fine-tune and score one (configuration, seed) in this process with one thread; write its result.json.
    `base_model`: the checkpoint to fine-tune (default: the shipped base CLIP)."""
    import torch

    from ..cli import options_argv, run
    from ..training import TRAINING
    from .pipeline import world_train_options

    torch.set_num_threads(1)
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "log.txt"), "w") as log:  # the run's own output goes to its folder
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    start = time.perf_counter()
    extra = {"seed": seed, **overrides, **({"max_steps": max_steps} if max_steps else {}),
             **({"model_name_or_path": base_model} if base_model else {})}
    work = os.path.join(run_dir, "train")
    if os.path.exists(work):  # an interrupted run: start it again from scratch
        shutil.rmtree(work)
    argv = options_argv(world_train_options(output_dir=work, cache_dir=cache_dir, **extra)) + ["--disable_tqdm", "true"]
    export = run(TRAINING, argv)
    results = score(export, cache_dir)
    entry = {"overrides": overrides, "seed": seed, "max_steps": max_steps,
             "base_model": public_name(base_model) if base_model else None, "results": results,
             "summary": summarise(results), "seconds": round(time.perf_counter() - start, 1)}
    if not keep_models:
        shutil.rmtree(work)
    write_json_atomic(os.path.join(run_dir, "result.json"), entry)
    return entry


def base_result(cache_dir: str, base_model: str | None = None) -> dict:
    from .clip import BASE_MODEL_DIR

    results = score(base_model or BASE_MODEL_DIR, cache_dir)
    return {"overrides": {}, "seed": None, "results": results, "summary": summarise(results)}


# -- statistics ------------------------------------------------------------------------------------------------
BOOTSTRAP_RESAMPLES = 2000


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t interval (0 for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, T_975[len(values) - 1] * statistics.stdev(values) / math.sqrt(len(values))


def paired(a: dict[int, dict], b: dict[int, dict], metric: str) -> tuple[float, float, int]:
    """Mean and 95 % CI half-width of b − a over the seeds both have (same seed: same data order, crops, negatives)."""
    seeds = sorted(set(a) & set(b))
    mean, half = mean_ci([b[s][metric] - a[s][metric] for s in seeds])
    return mean, half, len(seeds)


def against_constant(values: dict[int, dict], constant: float, metric: str) -> tuple[float, float, int]:
    mean, half = mean_ci([v[metric] - constant for v in values.values()])
    return mean, half, len(values)


def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The Pareto front (higher is better on both axes), sorted by the first."""
    kept = [p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(kept)


def curve_gap(x: float, y: float, curve: list[tuple[float, float]]) -> float | None:
    """y minus the piecewise-linear curve through `curve`'s points at x (None outside its x range)."""
    curve = sorted(curve)
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if x0 <= x <= x1:
            return y - (y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else max(y0, y1))
    return None


def bootstrap_gap(point: dict[int, dict], curve: list[dict[int, dict]], metric: str, n: int = BOOTSTRAP_RESAMPLES,
                  seed: int = 0) -> tuple[float | None, float | None, float | None]:
    """Gap of a DeGLA point above NegCLIP's learning-rate curve at the same compositional accuracy, with a 95 %
    percentile interval from resampling the seeds of every configuration independently."""

    def gap(samples: list[list[dict]]) -> float | None:
        xy = [(statistics.fmean(s["Compositional"] for s in runs), statistics.fmean(s[metric] for s in runs))
              for runs in samples]
        return curve_gap(*xy[0], xy[1:])

    observed = gap([list(point.values())] + [list(c.values()) for c in curve])
    if observed is None:
        return None, None, None
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n):
        samples = [[runs[i] for i in rng.integers(len(runs), size=len(runs))]
                   for runs in [list(point.values())] + [list(c.values()) for c in curve]]
        value = gap(samples)
        if value is not None:
            draws.append(value)
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (None, None)
    return observed, float(low), float(high)


# -- the claims, decided by the rule ---------------------------------------------------------------------------------
@dataclass
class Claim:
    """A comparison the README states: its statistic (a difference and its 95 % interval) and the rule's verdict."""

    id: str
    text: str
    metric: str
    direction: int  # +1: the claim says the difference is positive, −1: negative
    mean: float
    low: float
    high: float
    n: int
    test: str

    @property
    def verdict(self) -> str:
        """The design's rule: "holds" if the 95 % interval lies on the claimed side of 0, "direction only" if
        only the estimate does, "does not hold here" otherwise."""
        if min(self.direction * self.low, self.direction * self.high) > 0:
            return "holds"
        return "direction only" if self.direction * self.mean > 0 else "does not hold here"

    def as_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "metric": self.metric, "direction": self.direction,
                "mean": round(self.mean, 2), "ci_low": round(self.low, 2), "ci_high": round(self.high, 2),
                "n": self.n, "test": self.test, "verdict": self.verdict}


def _t_claim(id_: str, text: str, metric: str, direction: int, stat: tuple[float, float, int], test: str) -> Claim:
    mean, half, n = stat
    return Claim(id_, text, metric, direction, mean, mean - half, mean + half, n, test)


def degla_point(lr: float, lambda_distill: float = PAPER["lambda_distill"], ema_decay: float = WORLD_EMA_DECAY) -> dict:
    return world_point(**{**PAPER, "lambda_distill": lambda_distill}, learning_rate=lr, ema_decay=ema_decay)


def negclip_point(lr: float) -> dict:
    return world_point(**OFF, learning_rate=lr)


def claims(runs: dict[str, dict[int, dict]], base: dict) -> list[Claim]:
    """The pre-registered comparisons (docs/world.md). `runs[configuration key][seed]` is a run's summary."""

    def of(overrides: dict) -> dict[int, dict]:
        return runs[run_name(world_point(**overrides))]

    negclip, degla = of(ABLATION["negclip"]), of(ABLATION["degla"])
    out = []
    for metric, direction in (("Compositional", +1), ("ZS seen", -1), ("ZS held-out", -1)):
        out.append(_t_claim(f"cn_vs_base:{metric}", f"NegCLIP-style − base, {metric}", metric, direction,
                            against_constant(negclip, base[metric], metric), "one-sample t over seeds, 95 %"))
    for label in ("cn+igc", "cn+tgc", "cn+igc+tgc"):
        out.append(_t_claim(f"{label}_vs_cn:Compositional", f"{label} − NegCLIP-style, Compositional",
                            "Compositional", +1, paired(negclip, of(ABLATION[label]), "Compositional"),
                            "paired t over seeds, 95 %"))
    for metric, direction in (("ZS seen", +1), ("ZS held-out", +1), ("Compositional", -1)):
        out.append(_t_claim(f"sd:{metric}", f"DeGLA − (CN+IGC+TGC), {metric}", metric, direction,
                            paired(of(ABLATION["cn+igc+tgc"]), degla, metric), "paired t over seeds, 95 %"))
    for metric, direction in (("ZS seen", +1), ("ZS held-out", +1), ("Compositional", +1)):
        out.append(_t_claim(f"degla_vs_cn:{metric}", f"DeGLA − NegCLIP-style (same lr), {metric}", metric,
                            direction, paired(negclip, degla, metric), "paired t over seeds, 95 %"))
    negclip_curve = [runs[run_name(negclip_point(lr))] for lr in NEGCLIP_LRS]
    for lr in DEGLA_LRS:
        for value in DEGLA_LAMBDA3:
            point = runs[run_name(degla_point(lr, value))]
            for metric in ("ZS seen", "ZS held-out"):
                gap, low, high = bootstrap_gap(point, negclip_curve, metric)
                if gap is not None:
                    out.append(Claim(f"front:lr={lr:g},λ3={value:g}:{metric}", f"DeGLA lr={lr:g} λ3={value:g} "
                                     f"above NegCLIP's learning-rate curve, {metric}", metric, +1, gap, low, high,
                                     len(point), "seed bootstrap, 95 % percentile"))
    return out


# -- the report ----------------------------------------------------------------------------------------------------
def _cell(values: list[float]) -> str:
    mean, half = mean_ci(values)
    return f"{mean:.1f} ± {half:.1f}" if len(values) > 1 else f"{mean:.1f}"


def table(rows: list[tuple[str, list[dict]]], metrics=METRICS) -> str:
    lines = ["| run | seeds | " + " | ".join(metrics) + " |", "|---|---:|" + "---:|" * len(metrics)]
    for label, summaries in rows:
        lines.append(f"| {label} | {len(summaries)} | " + " | ".join(_cell([s[m] for s in summaries]) for m in metrics)
                     + " |")
    return "\n".join(lines)


def report(points: list[Point], runs: dict[str, dict[int, dict]], base: dict, found: list[Claim], title: str) -> str:
    """results.md: every table (means ± 95 % CI half-widths over seeds) and every claim with its verdict."""
    series = {"ablation": "Table 7 on the world (lr 3e-4, α = 0.97)",
              "negclip_lr": "NegCLIP-style over the learning rate",
              **{f"degla_lr={lr:g}": f"DeGLA over λ3 at lr {lr:g}" for lr in DEGLA_LRS},
              "ema": "DeGLA over the EMA decay α (λ3 = 0.005, lr 3e-4; the run has 62 steps)"}
    parts = [f"# {title}", "", "Means ± half-widths of 95 % t intervals over the seeds; compositional = mean of the "
             "SugarCrepe and ARO averages; ZS seen = the 56 colour×shape classes of the fine-tuning distribution's "
             "vocabulary, ZS held-out = the 8 combinations no training set contains.", ""]
    for name, heading in series.items():
        rows = [("base", [base])] if name == "ablation" else []
        rows += [(p.label, list(runs[p.key].values())) for p in points if name in p.series and p.key in runs]
        parts += [f"## {heading}", "", table(rows), ""]
    parts += ["## Claims (rule: docs/world.md)", "", "| claim | difference | 95 % interval | n | test | verdict |",
              "|---|---:|---|---:|---|---|"]
    for c in found:
        parts.append(f"| {c.text} | {c.mean:+.2f} | [{c.low:+.2f}, {c.high:+.2f}] | {c.n} | {c.test} | {c.verdict} |")
    return "\n".join(parts) + "\n"


def plot(points: list[Point], runs: dict[str, dict[int, dict]], base: dict, path: str) -> None:
    """Figure 5's trade-off (one panel per zero-shot split; mean ± 95 % CI, each method's Pareto front) and the
    EMA decay as an axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), dpi=130)
    curves = [("NegCLIP-style, lr " + ", ".join(f"{lr:g}" for lr in NEGCLIP_LRS), "C0", "o",
               [runs[run_name(negclip_point(lr))] for lr in NEGCLIP_LRS])]
    for i, lr in enumerate(DEGLA_LRS):
        curves.append((f"DeGLA lr {lr:g}, λ3 " + ", ".join(f"{v:g}" for v in DEGLA_LAMBDA3), f"C{i + 1}", "s^"[i],
                       [runs[run_name(degla_point(lr, v))] for v in DEGLA_LAMBDA3]))
    for ax, metric in zip(axes, ("ZS seen", "ZS held-out")):
        for label, colour, marker, configs in curves:
            xy = []
            for seeds in configs:
                x, ex = mean_ci([s["Compositional"] for s in seeds.values()])
                y, ey = mean_ci([s[metric] for s in seeds.values()])
                ax.errorbar(x, y, xerr=ex, yerr=ey, fmt=marker, color=colour, capsize=2, ms=5, alpha=0.9)
                xy.append((x, y))
            pareto = front(xy)
            ax.plot([p[0] for p in pareto], [p[1] for p in pareto], "-", color=colour, lw=1.2, label=label)
            ax.plot(*zip(*sorted(xy)), ":", color=colour, lw=0.8)
        ax.plot(base["Compositional"], base[metric], "k*", ms=11, label="base model")
        ax.set_xlabel("Compositional (mean of SugarCrepe and ARO averages), %")
        ax.set_ylabel(f"Zero-shot, {metric[3:]} classes, %")
        ax.set_title(f"Trade-off, {metric} (solid: Pareto front; bars: 95 % CI)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    ax = axes[2]
    decays = [d for d in EMA_DECAYS if run_name(degla_point(WORLD_LR, ema_decay=d)) in runs]
    for metric, colour in (("Compositional", "C3"), ("ZS seen", "C0"), ("ZS held-out", "C2")):
        stats = [mean_ci([s[metric] for s in runs[run_name(degla_point(WORLD_LR, ema_decay=d))].values()])
                 for d in decays]
        ticks = range(len(decays))
        ax.errorbar(ticks, [m for m, _ in stats], yerr=[h for _, h in stats], fmt="o-", color=colour, capsize=3,
                    label=metric)
        ax.axhline(base[metric], color=colour, ls=":", lw=0.8)
    ax.set_xticks(range(len(decays)), [f"{d:g}\n(τ={1 / (1 - d):.0f} steps)" if d < 1 else "1\n(frozen)"
                                       for d in decays])
    ax.set_xlabel("EMA decay α of the teacher (run: 62 steps; dotted: base model)")
    ax.set_ylabel("%")
    ax.set_title("DeGLA (λ3 = 0.005, lr 3e-4) over the EMA decay", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_file_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def runs_by_key(data: dict) -> dict[str, dict[int, dict]]:
    """A results.json's runs as `runs[configuration key][seed]` = the run's summary."""
    out: dict[str, dict[int, dict]] = {}
    for entry in data["runs"].values():
        out.setdefault(run_name(entry["overrides"]), {})[entry["seed"]] = entry["summary"]
    return out


def comparison(name: str, runs: dict[str, dict[int, dict]], base: dict, other_name: str, other: dict,
               labels=("negclip", "degla"), metrics=("Compositional", "ZS seen", "ZS held-out")) -> str:
    """results.md's section comparing this study's base model with another's (e.g. the world's SigLIP with its CLIP,
    `other` = that study's results.json): a table of both, and the differences with 95 % t intervals (against a
    base: one-sample; between configurations or models: paired by seed, which fixes the data order, crops and
    negatives)."""
    other_runs, other_base = runs_by_key(other), other["base"]["summary"]
    keys = {label: run_name(world_point(**ABLATION[label])) for label in labels}
    rows = [(f"{other_name} base", [other_base])]
    rows += [(f"{other_name} {label}", list(other_runs[keys[label]].values())) for label in labels
             if keys[label] in other_runs]
    rows += [(f"{name} base", [base])] + [(f"{name} {label}", list(runs[keys[label]].values())) for label in labels
                                         if keys[label] in runs]
    lines = [f"## {name} against {other_name}", "", table(rows), "", "| difference | " + " | ".join(metrics) + " |",
             "|---|" + "---:|" * len(metrics)]

    def row(text: str, stats: list[tuple[float, float, int]]) -> str:
        cells = [f"{m:+.1f} (no interval)" if n < 2 else f"{m:+.1f} [{m - h:+.1f}, {m + h:+.1f}]"  # n = 1: none
                 for m, h, n in stats]
        return f"| {text} (n = {stats[0][2]}) | " + " | ".join(cells) + " |"

    present = [label for label in labels if keys[label] in runs]
    for label in present:
        lines.append(row(f"{name} {label} − {name} base",
                         [against_constant(runs[keys[label]], base[m], m) for m in metrics]))
    if {"negclip", "degla"} <= set(present):
        lines.append(row(f"{name}: DeGLA − NegCLIP-style", [paired(runs[keys["negclip"]], runs[keys["degla"]], m)
                                                           for m in metrics]))
    for label in present:
        if keys[label] in other_runs:
            lines.append(row(f"{label}: {name} − {other_name}",
                             [paired(other_runs[keys[label]], runs[keys[label]], m) for m in metrics]))
    return "\n".join(lines) + "\n"


# -- the driver ----------------------------------------------------------------------------------------------------
def run_study(output_dir: str, seeds=SEEDS, jobs: int = 2, cache_dir: str | None = None, quick: bool = False,
              keep_models: bool = False, only: list[str] | None = None, base_model: str | None = None,
              compare_with: str | None = None) -> dict:
    """Run every missing (configuration, seed), then write results.json, results.md and tradeoff.png.
    `base_model`: the checkpoint every run fine-tunes (default: the shipped base CLIP; e.g. the world's SigLIP);
    `compare_with`: the results.json of the CLIP study, compared with in results.md (`comparison`)."""
    from datasets import load_from_disk

    from .pipeline import build_benchmarks, build_negatives_dataset, world_cache_dir

    cache_dir = cache_dir or world_cache_dir()
    max_steps = 4 if quick else None
    points = [p for p in design() if not only or p.label in only]
    build_benchmarks(cache_dir=cache_dir)  # once, before the workers start
    build_negatives_dataset(cache_dir=cache_dir)
    todo, done = [], {}
    for point in points:
        for seed in seeds:
            run_dir = os.path.join(output_dir, "runs", f"{point.key}-seed{seed}")
            result_file = os.path.join(run_dir, "result.json")
            if os.path.exists(result_file):
                with open(result_file) as f:
                    entry = json.load(f)
                if (entry["overrides"] == point.overrides and entry["max_steps"] == max_steps
                        and entry.get("base_model") == (public_name(base_model) if base_model else None)):
                    done[(point.key, seed)] = entry
                    continue
            todo.append((point, seed, run_dir))
    todo.sort(key=lambda item: item[1])  # seed by seed: an interrupted study has every configuration's first seeds
    print(f"{len(done)} runs already finished, {len(todo)} to run ({jobs} at a time)", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_one, p.overrides, seed, run_dir, cache_dir, max_steps, keep_models,
                               base_model): (p, seed)
                   for p, seed, run_dir in todo}
        for finished, future in enumerate(as_completed(futures), 1):
            point, seed = futures[future]
            entry = future.result()
            done[(point.key, seed)] = entry
            s = entry["summary"]
            print(f"[{finished}/{len(todo)}] {point.label} seed {seed}: compositional {s['Compositional']:.1f}, "
                  f"ZS seen {s['ZS seen']:.1f}, held-out {s['ZS held-out']:.1f} ({entry['seconds']:.0f} s; "
                  f"{time.perf_counter() - start:.0f} s elapsed)", flush=True)
    base = base_result(cache_dir, base_model)
    runs: dict[str, dict[int, dict]] = {}
    for (key, seed), entry in sorted(done.items(), key=lambda item: (item[0][0], item[0][1])):
        runs.setdefault(key, {})[seed] = entry["summary"]
    found = claims(runs, base["summary"]) if not only else []
    os.makedirs(output_dir, exist_ok=True)

    captions = len(load_from_disk(build_negatives_dataset(cache_dir=cache_dir)))
    steps = captions // WORLD_RECIPE["per_device_train_batch_size"] * WORLD_RECIPE["num_train_epochs"]
    data = {"design": {"seeds": list(seeds), "quick": quick, "recipe": WORLD_RECIPE, "captions": captions,
                       "base_model": public_name(base_model) if base_model else "degla/world/base_model",
                       "steps_per_run": max_steps or steps,
                       "ema_time_constants": {f"{d:g}": round(1 / (1 - d)) for d in EMA_DECAYS if d < 1},
                       "runs": len(done), "confidence_percent": 95, "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
                       "points": [
                {"label": p.label, "key": p.key, "overrides": p.overrides, "series": list(p.series)} for p in points]},
            "base": base, "runs": {f"{key}-seed{seed}": entry for (key, seed), entry in sorted(done.items())},
            "means": {p.label: {m: round(mean_ci([s[m] for s in runs[p.key].values()])[0], 2) for m in METRICS}
                      for p in points},
            "ci95": {p.label: {m: round(mean_ci([s[m] for s in runs[p.key].values()])[1], 2) for m in METRICS}
                     for p in points},
            "claims": [c.as_dict() for c in found]}
    write_json_atomic(os.path.join(output_dir, "results.json"), data)
    markdown = report(points, runs, base["summary"], found, f"Shapes world, seeds {list(seeds)}")
    if compare_with:
        with open(compare_with) as f:
            other = json.load(f)
        name = "SigLIP" if "siglip" in (base_model or "").lower() else public_name(base_model or "this base")
        markdown += "\n" + comparison(name, runs, base["summary"], "CLIP", other)
    write_text_atomic(os.path.join(output_dir, "results.md"), markdown)
    if not only:
        plot(points, runs, base["summary"], os.path.join(output_dir, "tradeoff.png"))
    return data


@dataclass
class StudyArguments:
    output_dir: str = field(default=os.path.join("runs", "miniature"), metadata={
        "help": "Where the runs and results.json / results.md / tradeoff.png go. The committed results are "
                "results/miniature: pass it to update them."})
    seeds: list[int] = field(default_factory=lambda: list(SEEDS), metadata={"help": "Seeds of every configuration."})
    jobs: int = field(default=2, metadata={"help": "Runs side by side (each one process with one thread)."})
    only: list[str] = field(default_factory=list, metadata={
        "help": "Run only these configurations (labels as in results.md); no claims or plot then."})
    quick: bool = field(default=False, metadata={"help": "4 training steps per run (a smoke test of the pipeline)."})
    keep_models: bool = field(default=False, metadata={"help": "Keep each run's checkpoint and export."})
    cache_dir: str | None = field(default=None, metadata={"help": "World data cache (default ~/.cache/degla/world)."})
    base_model: str | None = field(default=None, metadata={
        "help": "Checkpoint every run fine-tunes (default: the shipped base CLIP, degla/world/base_model); e.g. "
                "degla/world/base_siglip with --only negclip degla for the SigLIP comparison."})
    compare_with: str | None = field(default=None, metadata={
        "help": "results.json of the CLIP study (results/miniature/results.json) to compare this one's runs with "
                "in results.md, seed-paired."})


def run_study_from_arguments(args: StudyArguments) -> dict:
    return run_study(args.output_dir, tuple(args.seeds), args.jobs, args.cache_dir, args.quick, args.keep_models,
                     args.only or None, args.base_model, args.compare_with)


STUDY = Stage(name="reproduce_miniature", argument_types=(StudyArguments,), run=run_study_from_arguments,
              description="The shapes-world study: table 7's ablation, figure 5's trade-off and the EMA decay.")
