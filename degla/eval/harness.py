"""`evaluate_model`: run the paper's benchmarks on any CLIP checkpoint and write results.json / results.md."""

from __future__ import annotations

import json
import os
import time

from .config import TASKS, EvalDataConfig
from .encoder import CLIPFeatureEncoder
from .tables import render_markdown
from .tasks import aro, classification, retrieval, sugarcrepe, valse

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "degla", "eval_features")


def parse_tasks(tasks) -> list[str]:
    """`"sugarcrepe,aro"` or a list -> validated list; `"all"` -> every task."""
    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
    if names == ["all"]:
        return list(TASKS)
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; valid tasks: {', '.join(TASKS)} (or 'all')")
    if not names:
        raise ValueError(f"no task given; valid tasks: {', '.join(TASKS)}")
    return names


def evaluate_model(
    model,
    tasks,
    data: EvalDataConfig | dict | None = None,
    output_dir: str | None = None,
    batch_size: int = 64,
    processor=None,
    device: str | None = None,
    cache_dir: str | None = DEFAULT_CACHE_DIR,
    seed: int = 0,
    num_workers: int = 4,
    show_progress: bool = True,
    verbose: bool = True,
) -> dict:
    """Score a CLIP model on the requested tasks.

    Args:
        model: a hub id or local folder of any `CLIPModel` checkpoint, a loaded `CLIPModel` (then pass its
            `processor`), or a ready `CLIPFeatureEncoder`.
        tasks: list or comma-separated string of `sugarcrepe, valse, aro, zeroshot, linear_probe, retrieval`
            (or `"all"`).
        data: `EvalDataConfig` or a dict of its fields (data locations).
        output_dir: where `results.json`, `results.md` and `run_info.json` go (nothing written if `None`).
        batch_size, device, num_workers, show_progress: encoding options.
        cache_dir: on-disk feature cache keyed by model and data (`None` disables it).
        seed: seeds the ARO order perturbations and the linear-probe validation split.
        verbose: print the scored/skipped counts and encoding ratios of each task.

    Returns:
        `{task: {subset: percent}}`, the content of results.json.
    """
    task_names = parse_tasks(tasks)
    data = EvalDataConfig.from_dict(data) if isinstance(data, dict) else (data or EvalDataConfig())
    enc_kwargs = dict(batch_size=batch_size, cache_dir=cache_dir, num_workers=num_workers, show_progress=show_progress)
    if isinstance(model, CLIPFeatureEncoder):
        encoder, model_name = model, getattr(model.model, "name_or_path", "model")
    elif isinstance(model, str):
        encoder, model_name = CLIPFeatureEncoder.from_pretrained(model, device=device, **enc_kwargs), model
    else:
        if processor is None:
            raise ValueError("pass the model's CLIPProcessor as `processor=` when `model` is a loaded CLIPModel")
        if device is not None:
            model = model.to(device)
        encoder = CLIPFeatureEncoder(model=model, processor=processor, **enc_kwargs)
        model_name = getattr(model, "name_or_path", "") or type(model).__name__

    runners = {
        "sugarcrepe": lambda: sugarcrepe.run(encoder, data),
        "valse": lambda: valse.run(encoder, data),
        "aro": lambda: aro.run(encoder, data, seed=seed),
        "zeroshot": lambda: classification.run_zeroshot(encoder, data),
        "linear_probe": lambda: classification.run_linear_probe(encoder, data, seed=seed),
        "retrieval": lambda: retrieval.run(encoder, data),
    }
    results, info = {}, {"model": model_name, "model_fingerprint": encoder.fingerprint, "tasks": {}, "seed": seed}
    for task in task_names:
        own = lambda key: key == task or key.startswith(f"{task}_")  # noqa: E731  stats keys of this task
        for key in [k for k in encoder.stats if own(k)]:  # a reused encoder: count this run only
            del encoder.stats[key]
        start = time.perf_counter()
        outcome = runners[task]()
        results[task] = outcome.scores
        encoding = {k: v.as_dict() for k, v in encoder.stats.items() if own(k)}
        info["tasks"][task] = {"counts": outcome.counts, "not_run": outcome.skipped, "details": outcome.details,
                               "encoding": encoding, "seconds": round(time.perf_counter() - start, 2)}
        if verbose:
            for line in outcome.summary_lines(task):
                print(line)
            for key, st in encoding.items():
                ratio = st["encoded_per_unique_image"]
                print(f"[{task}] {key}: {st['images_unique']} unique images ({st['images_requested']} references): "
                      f"{st['images_encoded']} encoded + {st['images_from_cache']} from cache"
                      + (f" (ratio {ratio:.2f})" if ratio is not None else "")
                      + f"; {st['texts_unique']} unique texts: {st['texts_encoded']} encoded + "
                      f"{st['texts_from_cache']} from cache")
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "results.json"), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(output_dir, "run_info.json"), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2, default=str)
        with open(os.path.join(output_dir, "results.md"), "w", encoding="utf-8") as f:
            f.write(f"# Evaluation of `{model_name}`\n\n" + render_markdown({os.path.basename(str(model_name)) or "model": results}))
    return results
