"""Side-by-side tables for several evaluation runs and the figure-5 trade-off plot.

Usage:

```
python scripts/report.py eval/clip eval/negclip eval/degla-vitb32 --output_dir report/
```

Each positional argument is an `--output_dir` of scripts/evaluate_clip.py (or its results.json); the run is named
after its folder unless `--names` is given. Writes `report.md` (tables shaped like the paper's tables 2-6 and the
retrieval figure, one row per run) and `tradeoff.png` (compositional average vs zero-shot average).
"""

from __future__ import annotations

import argparse
import json
import os

from degla.eval import plot_tradeoff, render_markdown


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="evaluation output folders (or results.json files)")
    parser.add_argument("--names", nargs="+", help="display name of each run (default: folder names)")
    parser.add_argument("--output_dir", default="report", help="where report.md and tradeoff.png are written")
    return parser


def load_runs(paths: list[str], names: list[str] | None) -> dict[str, dict]:
    if names is not None and len(names) != len(paths):
        raise SystemExit(f"--names has {len(names)} names for {len(paths)} runs")
    runs = {}
    for i, path in enumerate(paths):
        file = path if path.endswith(".json") else os.path.join(path, "results.json")
        if not os.path.isfile(file):
            raise SystemExit(f"no results.json at {file} (run scripts/evaluate_clip.py --output_dir {path} first)")
        try:
            with open(file, encoding="utf-8") as f:
                results = json.load(f)
        except json.JSONDecodeError as err:
            raise SystemExit(f"malformed results file {file}: {err}") from err
        name = names[i] if names else os.path.basename(os.path.normpath(os.path.dirname(file) if path.endswith(".json") else path))
        if name in runs:
            name = f"{name} ({i})"
        runs[name] = results
    return runs


def main(args: argparse.Namespace) -> dict[str, str]:
    runs = load_runs(args.runs, args.names)
    os.makedirs(args.output_dir, exist_ok=True)
    md_path = os.path.join(args.output_dir, "report.md")
    png_path = os.path.join(args.output_dir, "tradeoff.png")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("# Evaluation report\n\n" + render_markdown(runs) + "\n![trade-off](tradeoff.png)\n")
    left_out = plot_tradeoff(runs, png_path)
    if left_out:
        print(f"not in the trade-off plot (no compositional or zero-shot average): {', '.join(left_out)}")
    print(f"wrote {md_path} and {png_path}")
    return {"markdown": md_path, "plot": png_path}


if __name__ == "__main__":
    main(make_parser().parse_args())
