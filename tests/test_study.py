"""The shapes-world study: its statistics against hand computations, its design, and its driver (resume)."""

import json
import math
import os
import re

import pytest

from degla.world.study import (ABLATION, Claim, bootstrap_gap, comparison, curve_gap, design, front, mean_ci, paired,
                               run_name, runs_by_key, world_point)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mean_and_95_percent_t_interval_by_hand():
    mean, half = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    # sd = sqrt(2.5); t(0.975, 4) = 2.776; half-width = 2.776 · sqrt(2.5) / sqrt(5)
    assert mean == 3.0 and half == pytest.approx(2.776 * math.sqrt(2.5) / math.sqrt(5))
    assert mean_ci([4.2]) == (4.2, 0.0)


def test_paired_difference_uses_matching_seeds_only():
    a = {0: {"m": 1.0}, 1: {"m": 2.0}, 2: {"m": 3.0}, 7: {"m": 100.0}}
    b = {0: {"m": 2.0}, 1: {"m": 4.0}, 2: {"m": 6.0}}
    mean, half, n = paired(a, b, "m")
    assert (mean, n) == (2.0, 3)  # differences 1, 2, 3
    assert half == pytest.approx(4.303 * 1.0 / math.sqrt(3))


@pytest.mark.parametrize("direction,low,mean,high,expected", [
    (+1, 0.2, 1.0, 1.8, "holds"), (+1, -0.2, 1.0, 2.2, "direction only"), (+1, -2.0, -1.0, 0.1, "does not hold here"),
    (-1, -3.0, -2.0, -1.0, "holds"), (-1, -3.0, -1.0, 0.5, "direction only"),
    (-1, -0.5, 0.5, 1.5, "does not hold here"),
])
def test_verdict_rule(direction, low, mean, high, expected):
    assert Claim("c", "t", "m", direction, mean, low, high, 5, "t").verdict == expected


def test_pareto_front_and_the_gap_above_a_curve():
    assert front([(1, 5), (2, 4), (1.5, 3), (3, 1), (2, 2)]) == [(1, 5), (2, 4), (3, 1)]
    curve = [(0.0, 10.0), (10.0, 0.0)]
    assert curve_gap(5.0, 7.0, curve) == pytest.approx(2.0)
    assert curve_gap(2.0, 5.0, curve) == pytest.approx(-3.0)
    assert curve_gap(11.0, 5.0, curve) is None


def test_bootstrap_gap_collapses_to_the_observed_gap_without_seed_noise():
    point = {s: {"Compositional": 5.0, "ZS seen": 7.0} for s in range(5)}
    curve = [{s: {"Compositional": 0.0, "ZS seen": 10.0} for s in range(5)},
             {s: {"Compositional": 10.0, "ZS seen": 0.0} for s in range(5)}]
    gap, low, high = bootstrap_gap(point, curve, "ZS seen", n=50)
    assert gap == pytest.approx(2.0) and low == pytest.approx(2.0) and high == pytest.approx(2.0)
    noisy = {s: {"Compositional": 5.0, "ZS seen": 7.0 + (s - 2)} for s in range(5)}
    gap, low, high = bootstrap_gap(noisy, curve, "ZS seen", n=400)
    assert gap == pytest.approx(2.0) and low < 2.0 < high and low >= 0.0 and high <= 4.0


def test_design_runs_each_configuration_once_and_keeps_equal_effort():
    points = design()
    assert len({p.key for p in points}) == len(points)
    series = [s for p in points for s in p.series]
    assert series.count("ablation") == 5 and series.count("negclip_lr") == 6 and series.count("ema") == 4
    assert series.count("degla_lr=0.0003") + series.count("degla_lr=0.0001") == 6  # as many as NegCLIP's curve
    shared = next(p for p in points if p.label == "degla")
    assert set(shared.series) == {"ablation", "degla_lr=0.0003", "ema"}
    assert shared.key == run_name({"learning_rate": 3e-4, "ema_decay": 0.97, "lambda_igc": 0.1, "lambda_tgc": 0.1,
                                   "lambda_distill": 0.005})


@pytest.mark.slow
def test_a_quick_study_runs_resumes_and_reports(tmp_path):
    from degla.cli import run
    from degla.world.study import STUDY

    argv = ["--quick", "--seeds", "0", "--only", "degla", "--output_dir", str(tmp_path), "--jobs", "1",
            "--cache_dir", str(tmp_path / "cache")]
    first = run(STUDY, argv)
    assert sorted(first["runs"]) == [f"{p.key}-seed0" for p in design() if p.label == "degla"]
    result_files = [os.path.join(tmp_path, "runs", r, "result.json") for r in first["runs"]]
    mtimes = [os.path.getmtime(f) for f in result_files]
    second = run(STUDY, argv)  # nothing left to run: the finished runs are read back, not redone
    assert [os.path.getmtime(f) for f in result_files] == mtimes
    assert second["runs"] == first["runs"]
    table = (tmp_path / "results.md").read_text()
    assert "| base | 1 |" in table and "| degla | 1 |" in table
    assert "DeGLA − NegCLIP" not in table  # a partial study states no claims
    assert not os.path.exists(os.path.join(tmp_path, "runs", first and next(iter(first["runs"])), "train"))


def _numbers(value):
    """Every number in a JSON value (recursively)."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def test_every_number_in_the_readmes_miniature_section_comes_from_results_json():
    """The README's miniature section (prose and table) quotes only numbers found in results/miniature/results.json
    at their printed precision (a design constant such as 62 steps is in the file's `design` part)."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## The paper's claim, in miniature", 1)[1].split("\n## ", 1)[0]
    section = re.sub(r"```.*?```", "", section, flags=re.S)  # commands are not claims
    section = re.sub(r"\([^()]*\.(png|md|json|py)\)|\[[^\]]*\]\([^)]*\)", "", section)  # links and file names
    results = json.load(open(os.path.join(ROOT, "results", "miniature", "results.json"), encoding="utf-8"))
    values = list(_numbers(results))
    quoted = re.findall(r"(?<![\w.])[-+−]?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w])", section)
    assert len(quoted) > 30
    missing = []
    for text in quoted:
        number = float(text.replace("−", "-"))
        decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
        tolerance = 0.5 * 10 ** -decimals + 1e-9
        if not any(abs(abs(v) - abs(number)) <= tolerance for v in values):
            missing.append(text)
    assert not missing, f"numbers in the README's miniature section not in results.json: {missing}"


def test_comparison_of_two_base_models_pairs_by_seed_and_against_the_base_by_hand():
    def results(base_value, negclip, degla):
        runs = {}
        for label, values in (("negclip", negclip), ("degla", degla)):
            overrides = world_point(**ABLATION[label])
            for seed, value in enumerate(values):
                summary = {m: value for m in ("Compositional", "ZS seen", "ZS held-out")}
                summary.update({m: 0.0 for m in ("Replace", "Swap", "Add", "SugarCrepe", "VG-Rel.", "VG-Attr.",
                                                 "Order", "ARO", "Retrieval R@1")})
                runs[f"{run_name(overrides)}-seed{seed}"] = {"overrides": overrides, "seed": seed, "summary": summary}
        base = {m: base_value for m in ("Compositional", "ZS seen", "ZS held-out")}
        base.update({m: 0.0 for m in ("Replace", "Swap", "Add", "SugarCrepe", "VG-Rel.", "VG-Attr.", "Order", "ARO",
                                      "Retrieval R@1")})
        return {"runs": runs, "base": {"summary": base}}

    clip = results(50.0, [60.0, 61.0, 62.0], [70.0, 70.0, 70.0])
    siglip = results(40.0, [41.0, 43.0, 45.0], [71.0, 72.0, 73.0])
    text = comparison("SigLIP", runs_by_key(siglip), siglip["base"]["summary"], "CLIP", clip)
    half = 4.303 * 2.0 / math.sqrt(3)  # differences to the base 1, 3, 5: mean 3, sd 2
    assert f"| SigLIP negclip − SigLIP base (n = 3) | +3.0 [{3 - half:+.1f}, {3 + half:+.1f}]" in text
    assert "| SigLIP: DeGLA − NegCLIP-style (n = 3) | +29.0 [+26.5, +31.5]" in text  # 30, 29, 28: sd 1 → ±2.48
    assert "| degla: SigLIP − CLIP (n = 3) | +2.0 [-0.5, +4.5]" in text  # seed-paired differences 1, 2, 3
