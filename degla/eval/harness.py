"""`evaluate_model`: run the paper's benchmarks on any dual encoder and write results.json / results.md."""

from __future__ import annotations

import json
import os
import time

from ..atomic_io import degla_cache_dir, write_json_atomic, write_text_atomic
from ..families import trainable_families
from ..hub import public_name
from .config import EvalDataConfig
from .encoder import FeatureEncoder
from .tables import render_markdown
from .tasks import TASKS, EvalDataError, EvalTask

DEFAULT_CACHE_DIR = degla_cache_dir("eval_features")


SUITE = "compositional"  # `--tasks compositional`: every compositional benchmark (a task with `suite` columns)


def parse_tasks(tasks) -> list[str]:
    """`"sugarcrepe,aro"` or a list -> validated list of names; `"all"` -> `["all"]`; `"compositional"` may stand
    alone or beside task names (see `plan_tasks`)."""
    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
    if names == ["all"]:
        return names
    unknown = [t for t in names if t not in TASKS and t != SUITE]
    if unknown:
        raise EvalDataError(f"--tasks: unknown task(s) {unknown}; valid tasks: {', '.join(TASKS)} (or 'all', or "
                            f"'{SUITE}')")
    if not names:
        raise EvalDataError(f"--tasks: no task given; valid tasks: {', '.join(TASKS)}")
    return names


def plan_tasks(tasks, data: EvalDataConfig) -> list[EvalTask]:
    """The tasks to run, checked against the data before anything is loaded or encoded.

    Every task's `check` runs, so a data option that names a missing path is an error even for a task that was not
    asked for. A task asked for by name must have data (`EvalDataError` naming its options otherwise); `"all"`
    means every task whose data is given, and at least one must be; `"compositional"` every compositional
    benchmark (a task with `suite` columns) whose data is given, and at least one must be."""
    names = parse_tasks(tasks)
    has_data = {name: task.check(data) for name, task in TASKS.items()}
    if names == ["all"]:
        chosen = [task for name, task in TASKS.items() if has_data[name]]
        if not chosen:
            raise EvalDataError("no evaluation data given: pass the data options of at least one task "
                                "(scripts/evaluate_clip.py --help lists them)")
        return chosen
    suite = [n for n, task in TASKS.items() if task.suite and has_data[n]] if SUITE in names else []
    if SUITE in names and not suite:
        raise EvalDataError(f"--tasks {SUITE}: no compositional benchmark has data: pass the data options of at "
                            "least one of " + ", ".join(n for n, t in TASKS.items() if t.suite)
                            + " (scripts/evaluate_clip.py --help lists them)")
    missing = [n for n in names if n != SUITE and not has_data[n]]
    if missing:
        raise EvalDataError("; ".join(f"task {n!r} was asked for but has no data: pass "
                                      f"{' / '.join('--' + o for o in TASKS[n].data_options)}" for n in missing))
    return [TASKS[n] for n in TASKS if n in names or n in suite]


def model_label(name_or_path: str) -> str:
    """How a model is named in tables: a hub id as is; a local folder by its name, or by its run's name for the
    `<output_dir>/<family>` export of `scripts/train.py` (`clip`, `siglip`, `siglip2`)."""
    path = os.path.normpath(str(name_or_path))
    if not os.path.isdir(path):
        return str(name_or_path)
    name = os.path.basename(os.path.abspath(path))
    if name in trainable_families():  # the drop-in export of a training run is named after the run
        name = os.path.basename(os.path.dirname(os.path.abspath(path))) or name
    return name


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
    model_name: str | None = None,
    trust_remote_code: bool = False,
) -> dict:
    """Score a dual encoder (CLIP, SigLIP, SigLIP 2, ALIGN, ...) on the requested tasks.

    Args:
        model: a hub id or local folder of any checkpoint whose `AutoModel` has `get_image_features` and
            `get_text_features`, such a model loaded (then pass its `processor`), or a ready `FeatureEncoder`.
        tasks: list or comma-separated string of task names (`degla.eval.TASKS`), or `"all"` (every task whose
            data is given). A task asked for by name without its data raises `EvalDataError`.
        data: `EvalDataConfig` or a dict of its fields (data locations). Checked before the model is loaded.
        output_dir: where `results.json`, `results.md` and `run_info.json` go (nothing written if `None`).
        batch_size, device, num_workers, show_progress: encoding options.
        cache_dir: on-disk feature cache keyed by model and data (`None` disables it).
        seed: seeds the ARO order perturbations and the linear-probe validation split.
        verbose: print the scored/skipped counts and encoding ratios of each task, then the results tables.
        model_name: the model's name in the tables (default: from its hub id or folder, see `model_label`).
        trust_remote_code: let `AutoModel` / `AutoProcessor` run a checkpoint's own code (off by default).

    Returns:
        `{task: {subset: percent}}`, the content of results.json.
    """
    data = EvalDataConfig.from_dict(data) if isinstance(data, dict) else (data or EvalDataConfig())
    plan = plan_tasks(tasks, data)
    enc_kwargs = dict(batch_size=batch_size, cache_dir=cache_dir, num_workers=num_workers, show_progress=show_progress)
    if isinstance(model, FeatureEncoder):
        encoder, source = model, getattr(model.model, "name_or_path", "") or "model"
    elif isinstance(model, str):
        encoder = FeatureEncoder.from_pretrained(model, device=device, trust_remote_code=trust_remote_code,
                                                 **enc_kwargs)
        source = model
    else:
        if processor is None:
            raise ValueError("pass the model's processor (AutoProcessor) as `processor=` when `model` is a loaded "
                             "model")
        if device is not None:
            model = model.to(device)
        encoder = FeatureEncoder(model=model, processor=processor, **enc_kwargs)
        source = getattr(model, "name_or_path", "") or type(model).__name__
    label = model_name or model_label(source)

    results, info = {}, {"model": public_name(str(source)), "model_name": label,
                         "model_fingerprint": encoder.fingerprint, "preprocessing": encoder.describe(),
                         "tasks": {}, "seed": seed}
    for task in plan:
        own = lambda key: key == task.name or key.startswith(f"{task.name}_")  # noqa: E731  stats keys of this task
        for key in [k for k in encoder.stats if own(k)]:  # a reused encoder: count this run only
            del encoder.stats[key]
        start = time.perf_counter()
        outcome = task.run(encoder, data, seed=seed)
        results[task.name] = outcome.scores
        encoding = {k: v.as_dict() for k, v in encoder.stats.items() if own(k)}
        info["tasks"][task.name] = {"counts": outcome.counts, "not_run": outcome.skipped, "details": outcome.details,
                                    "encoding": encoding, "seconds": round(time.perf_counter() - start, 2)}
        if verbose:
            for line in outcome.summary_lines(task.name):
                print(line)
            for key, st in encoding.items():
                ratio = st["encoded_per_unique_image"]
                print(f"[{task.name}] {key}: {st['images_unique']} unique images ({st['images_requested']} "
                      f"references): {st['images_encoded']} encoded + {st['images_from_cache']} from cache"
                      + (f" + {st['images_shared']} from earlier tasks" if st["images_shared"] else "")
                      + (f" (ratio {ratio:.2f})" if ratio is not None else "")
                      + f"; {st['texts_unique']} unique texts: {st['texts_encoded']} encoded + "
                      f"{st['texts_from_cache']} from cache"
                      + (f" + {st['texts_shared']} from earlier tasks" if st["texts_shared"] else ""))
    tables = render_markdown({label: results})
    if verbose:
        print("\n" + tables)
    if output_dir:  # each file whole or not at all
        write_json_atomic(os.path.join(output_dir, "results.json"), results)
        write_text_atomic(os.path.join(output_dir, "run_info.json"), json.dumps(info, indent=2, default=str))
        write_text_atomic(os.path.join(output_dir, "results.md"), f"# Evaluation of `{label}`\n\n" + tables)
    return results
