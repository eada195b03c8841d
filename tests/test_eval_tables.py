"""Paper-shaped markdown tables and the figure-5 trade-off plot from hand-made results."""

from degla.eval import plot_tradeoff, render_markdown
from degla.eval.tables import compositional_average

RUNS = {
    "clip": {"valse": {"avg": 65.3}, "sugarcrepe": {"replace_obj": 90.9, "avg": 72.3}, "aro": {"avg": 57.4},
             "zeroshot": {"cifar10": 86.5, "toys": 40.0, "avg": 63.25}},
    "degla": {"valse": {"avg": 74.1}, "sugarcrepe": {"avg": 89.1}, "aro": {"avg": 86.1},
              "zeroshot": {"cifar10": 86.5, "avg": 86.5}},
    "sugar-only": {"sugarcrepe": {"avg": 80.0}},
}


def test_markdown_tables_one_row_per_run():
    md = render_markdown(RUNS)
    assert "## Table 3: SugarCrepe" in md and "## Table 4: ARO" in md and "Table 6" not in md
    assert "| clip | 90.9 | - | - | - | - | - | - | - | - | - | 72.3 |" in md
    # zero-shot: the paper's columns that some run has, then extra datasets, then the average
    assert "| Model | CIFAR10 | toys | Avg. |" in md and "| degla | 86.5 | - | 86.5 |" in md
    assert "| clip | 65.0 | 63.2 |" in md or "| clip | 65.0 | 63.3 |" in md
    assert "| sugar-only | 80.0 (sugarcrepe only) | - |" in md


def test_compositional_average_uses_the_three_benchmark_averages():
    assert compositional_average(RUNS["degla"]) == round((74.1 + 89.1 + 86.1) / 3, 2)
    assert compositional_average({"zeroshot": {"avg": 1.0}}) is None


def test_tradeoff_png(tmp_path):
    left_out = plot_tradeoff(RUNS, str(tmp_path / "t.png"))
    assert left_out == ["sugar-only"]  # no zero-shot average
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
