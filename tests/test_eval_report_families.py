"""scripts/report.py over real evaluation outputs of two model families (tiny random SigLIP and ALIGN checkpoints
scored by the harness on the shipped SugarCrepe sample and a small classification folder): one overview row per
run labelled by model name and family, one column per benchmark, numbers equal to each run's results.json."""

import json
import os

import pytest

from degla.cli import run
from degla.errors import InputError
from degla.eval import evaluate_model
from degla.eval.report import REPORT, read_runs

from dual_encoder_helpers import save_tiny_align, save_tiny_siglip
from eval_helpers import placeholder_image


@pytest.fixture(scope="module")
def two_family_runs(tmp_path_factory, sugarcrepe_dir):
    root = tmp_path_factory.mktemp("report_families")
    for name in os.listdir(sugarcrepe_dir):
        if name.endswith(".json"):
            for r in json.load(open(os.path.join(sugarcrepe_dir, name))).values():
                placeholder_image(str(root / "coco" / r["filename"]), seed=len(r["filename"]))
    for c in ("circle", "square"):
        for i in range(3):
            placeholder_image(str(root / "shapes" / c / f"{i}.png"), seed=10 * i + len(c))
    data = {"sugarcrepe_dir": sugarcrepe_dir, "coco_val2017_dir": str(root / "coco"),
            "zeroshot_sources": [f"shapes={root / 'shapes'}"]}
    runs = {}
    for family, save in (("siglip", save_tiny_siglip), ("align", save_tiny_align)):
        model = save(str(root / f"tiny-{family}"))
        out = root / f"eval-{family}"
        evaluate_model(model, "sugarcrepe,zeroshot", data, output_dir=str(out), cache_dir=None, batch_size=32,
                       show_progress=False, verbose=False)
        runs[family] = str(out)
    return root, runs


def _table(markdown: str, title: str) -> list[list[str]]:
    block = markdown.split(f"## {title}\n", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block.strip().splitlines()]
    return [rows[0]] + rows[2:]  # header, then the data rows


def test_report_compares_two_families_in_one_table(two_family_runs):
    root, runs = two_family_runs
    run(REPORT, ["--runs", runs["siglip"], runs["align"], "--output_dir", str(root / "report")])
    markdown = open(root / "report" / "report.md").read()
    overview = _table(markdown, "Overview: one row per run")
    assert overview[0] == ["Run", "Model", "Family", "sugarcrepe avg", "zeroshot avg"]
    assert [row[:3] for row in overview[1:]] == [["tiny-siglip (SigLIP)", "tiny-siglip", "SigLIP"],
                                                 ["tiny-align (ALIGN)", "tiny-align", "ALIGN"]]
    for row, family in zip(overview[1:], ("siglip", "align")):
        results = json.load(open(os.path.join(runs[family], "results.json")))
        assert row[3:] == [f"{results['sugarcrepe']['avg']:.1f}", f"{results['zeroshot']['avg']:.1f}"]
    # what each family got, and the full benchmark tables keep the same row labels
    prep = _table(markdown, "Preprocessing per run (docs/evaluation.md, Model families)")
    assert prep[1][:3] == ["tiny-siglip (SigLIP)", "SiglipModel", "SiglipImageProcessorPil"]
    assert prep[1][3] == "True / False / max_length / 64 / False"  # lower-cased, 64 tokens, no attention mask
    assert prep[2][:3] == ["tiny-align (ALIGN)", "AlignModel", "EfficientNetImageProcessorPil"]
    sugar = _table(markdown, "Table 3: SugarCrepe")
    assert [r[0] for r in sugar[1:]] == ["tiny-siglip (SigLIP)", "tiny-align (ALIGN)"]
    align = json.load(open(os.path.join(runs["align"], "results.json")))
    assert (f"| tiny-align (ALIGN) | {align['sugarcrepe']['avg']:.1f} (sugarcrepe only) | "
            f"{align['zeroshot']['avg']:.1f} |") in markdown.split("## Figure 5")[1]
    with open(root / "report" / "tradeoff.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_report_names_repeated_runs_apart_and_honours_names(two_family_runs, tmp_path):
    _, runs = two_family_runs
    names = [r.name for r in read_runs([runs["siglip"], runs["siglip"]], None)]
    assert names == ["tiny-siglip (SigLIP)", "tiny-siglip (SigLIP) [eval-siglip]"]
    assert [r.name for r in read_runs([runs["align"]], ["mine"])] == ["mine"]
    # a run folder from before run_info.json recorded the family: named by model, or by folder without run_info
    old = tmp_path / "old-run"
    old.mkdir()
    (old / "results.json").write_text(json.dumps({"sugarcrepe": {"avg": 50.0}}))
    assert read_runs([str(old)], None)[0].name == "old-run"
    with pytest.raises(InputError, match="--names has 1 names for 2 runs"):
        read_runs([runs["siglip"], runs["align"]], ["one"])
