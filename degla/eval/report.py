"""`run_report`: side-by-side tables for several evaluation runs (any mix of model families) and the figure-5
trade-off plot (`scripts/report.py`).

The report opens with one overview table: one row per run, labelled by its model name and family (read from the
run's run_info.json), one column per benchmark (its `avg`, or its headline numbers when it has none); then the
preprocessing each run's family got; then every benchmark's full table and figure 5."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..atomic_io import write_text_atomic
from ..cli import Stage
from ..errors import InputError
from .tables import _fmt, plot_tradeoff, render_markdown
from .tasks import TASKS


@dataclass
class ReportArguments:
    runs: list[str] = field(metadata={"help": "Evaluation output folders of scripts/evaluate_clip.py (or their "
                                              "results.json files)."})
    names: list[str] = field(default_factory=list, metadata={"help": "Display name of each run (default: its "
        "model name and family from its run_info.json, e.g. `siglip-base-patch16-224 (SigLIP)`; the folder name "
        "for a run without run_info.json)."})
    output_dir: str = field(default="report", metadata={"help": "Where report.md and tradeoff.png are written."})


@dataclass
class Run:
    """One evaluation run: its display name, results.json, and what run_info.json says about its model."""

    name: str
    results: dict
    model_name: str | None = None
    family: str | None = None
    preprocessing: dict = field(default_factory=dict)


def _read_json(file: str) -> dict:
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise InputError(f"malformed results file {file}: {err}") from err


def read_runs(paths: list[str], names: list[str] | None) -> list[Run]:
    """Each run folder (or results.json file) with its run_info.json when present, named by `names`, else by its
    model name and family, else by its folder; a repeated name gets the folder (or its position) added."""
    if names and len(names) != len(paths):
        raise InputError(f"--names has {len(names)} names for {len(paths)} runs")
    runs, seen = [], set()
    for i, path in enumerate(paths):
        file = path if path.endswith(".json") else os.path.join(path, "results.json")
        if not os.path.isfile(file):
            raise InputError(f"no results.json at {file} (run scripts/evaluate_clip.py --output_dir {path} first)")
        results = _read_json(file)
        folder = os.path.dirname(file) if path.endswith(".json") else path
        folder_name = os.path.basename(os.path.normpath(folder))
        info_file = os.path.join(folder, "run_info.json")
        info = _read_json(info_file) if os.path.isfile(info_file) else {}
        preprocessing = info.get("preprocessing") or {}
        family, model_name = preprocessing.get("family"), info.get("model_name")
        if names:
            name = names[i]
        elif model_name:
            name = f"{model_name} ({family})" if family else model_name
        else:
            name = folder_name
        if name in seen:
            name = f"{name} [{folder_name}]" if f"{name} [{folder_name}]" not in seen else f"{name} ({i})"
        seen.add(name)
        runs.append(Run(name, results, model_name, family, preprocessing))
    return runs


def load_runs(paths: list[str], names: list[str] | None) -> dict[str, dict]:
    """{display name: results.json content} for each run folder (or results.json file); see `read_runs`."""
    return {run.name: run.results for run in read_runs(paths, names)}


def headline_keys(task: str, runs: list[Run]) -> list[str]:
    """A benchmark's overview columns: its `avg` when any run has one; else its `*_rsum` numbers (retrieval);
    else every number of a task with at most three (e.g. Winoground's text / image / group)."""
    present = {k for run in runs for k in run.results.get(task, {})}
    if "avg" in present:
        return ["avg"]
    rsums = sorted(k for k in present if k.endswith("_rsum"))
    if rsums:
        return rsums
    ordered = [k for _, k in TASKS[task].table.columns if k in present] if task in TASKS else []
    ordered += sorted(present - set(ordered))
    return ordered if len(ordered) <= 3 else []


def render_overview(runs: list[Run]) -> str:
    """One row per run (model name and family), one column per benchmark headline; then the families'
    preprocessing."""
    tasks = [t for t in [*TASKS, *sorted({t for r in runs for t in r.results} - set(TASKS))]
             if any(r.results.get(t) for r in runs)]
    columns = [(t, k) for t in tasks for k in headline_keys(t, runs)]
    header = [f"{t} {k}" for t, k in columns]
    lines = ["## Overview: one row per run\n", "| Run | Model | Family | " + " | ".join(header) + " |",
             "|---|---|---|" + "---:|" * len(columns)]
    for run in runs:
        cells = [_fmt(run.results.get(t, {}).get(k)) for t, k in columns]
        lines.append(f"| {run.name} | {run.model_name or '-'} | {run.family or '-'} | " + " | ".join(cells) + " |")
    lines.append("")
    described = [run for run in runs if run.preprocessing]
    if described:
        lines += ["## Preprocessing per run (docs/evaluation.md, Model families)\n",
                  "| Run | Model class | Image processor | Text: lower-case / clean / padding / max length / "
                  "attention mask |", "|---|---|---|---|"]
        for run in described:
            p, text = run.preprocessing, run.preprocessing.get("text", {})
            image = p.get("image_processor", "-") + (" (torchvision crop)" if p.get("image") == "openclip" else "")
            recipe = " / ".join(str(x) for x in (text.get("lowercase"), text.get("clean"), text.get("padding"),
                                                 p.get("text_max_length"), text.get("attention_mask")))
            lines.append(f"| {run.name} | {p.get('model_class', '-')} | {image} | {recipe} |")
        lines.append("")
    return "\n".join(lines)


def run_report(args: ReportArguments) -> dict[str, str]:
    runs = read_runs(args.runs, args.names or None)
    results = {run.name: run.results for run in runs}
    md_path = os.path.join(args.output_dir, "report.md")
    png_path = os.path.join(args.output_dir, "tradeoff.png")
    write_text_atomic(md_path, "# Evaluation report\n\n" + render_overview(runs) + "\n" + render_markdown(results)
                      + "\n![trade-off](tradeoff.png)\n")
    left_out = plot_tradeoff(results, png_path)
    if left_out:
        print(f"not in the trade-off plot (no compositional or zero-shot average): {', '.join(left_out)}")
    print(f"wrote {md_path} and {png_path}")
    return {"markdown": md_path, "plot": png_path}


REPORT = Stage(name="report", argument_types=(ReportArguments,), run=run_report,
               description="Side-by-side tables of several evaluation runs (any model families) and the figure-5 "
                           "trade-off plot.")
