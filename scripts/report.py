"""Side-by-side tables for several evaluation runs (any mix of model families) and the figure-5 trade-off plot.

Usage:

```
python scripts/report.py --runs eval/clip eval/negclip eval/degla-vitb32 eval/siglip-b16 eval/align --output_dir report/
```

Each of `--runs` is an `--output_dir` of scripts/evaluate_clip.py (or its results.json); the run is named after
its model and family (from its run_info.json, e.g. `siglip-base-patch16-224 (SigLIP)`), or its folder, unless
`--names` is given. Writes `report.md` (an overview with one row per run and one column per benchmark, the
preprocessing each family got, then tables shaped like the paper's tables 2-6 and the retrieval figure, one row
per run) and `tradeoff.png` (compositional average vs zero-shot average).
"""

from degla.cli import main
from degla.eval.report import REPORT

if __name__ == "__main__":
    main(REPORT)
