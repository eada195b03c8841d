"""`run_report`: side-by-side tables for several evaluation runs and the figure-5 trade-off plot
(`scripts/report.py`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..atomic_io import write_text_atomic
from ..cli import Stage
from ..errors import InputError
from .tables import plot_tradeoff, render_markdown


@dataclass
class ReportArguments:
    runs: list[str] = field(metadata={"help": "Evaluation output folders of scripts/evaluate_clip.py (or their "
                                              "results.json files)."})
    names: list[str] = field(default_factory=list, metadata={"help": "Display name of each run (default: folder "
                                                                    "names)."})
    output_dir: str = field(default="report", metadata={"help": "Where report.md and tradeoff.png are written."})


def load_runs(paths: list[str], names: list[str] | None) -> dict[str, dict]:
    """{display name: results.json content} for each run folder (or results.json file)."""
    if names and len(names) != len(paths):
        raise InputError(f"--names has {len(names)} names for {len(paths)} runs")
    runs = {}
    for i, path in enumerate(paths):
        file = path if path.endswith(".json") else os.path.join(path, "results.json")
        if not os.path.isfile(file):
            raise InputError(f"no results.json at {file} (run scripts/evaluate_clip.py --output_dir {path} first)")
        try:
            with open(file, encoding="utf-8") as f:
                results = json.load(f)
        except json.JSONDecodeError as err:
            raise InputError(f"malformed results file {file}: {err}") from err
        folder = os.path.dirname(file) if path.endswith(".json") else path
        name = names[i] if names else os.path.basename(os.path.normpath(folder))
        if name in runs:
            name = f"{name} ({i})"
        runs[name] = results
    return runs


def run_report(args: ReportArguments) -> dict[str, str]:
    runs = load_runs(args.runs, args.names or None)
    md_path = os.path.join(args.output_dir, "report.md")
    png_path = os.path.join(args.output_dir, "tradeoff.png")
    write_text_atomic(md_path, "# Evaluation report\n\n" + render_markdown(runs) + "\n![trade-off](tradeoff.png)\n")
    left_out = plot_tradeoff(runs, png_path)
    if left_out:
        print(f"not in the trade-off plot (no compositional or zero-shot average): {', '.join(left_out)}")
    print(f"wrote {md_path} and {png_path}")
    return {"markdown": md_path, "plot": png_path}


REPORT = Stage(name="report", argument_types=(ReportArguments,), run=run_report,
               description="Side-by-side tables of several evaluation runs and the figure-5 trade-off plot.")
