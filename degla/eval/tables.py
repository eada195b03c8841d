"""Paper-shaped markdown tables (each task's `Table`: DeGLA tables 2-6 and the retrieval figure) and the figure-5
trade-off plot."""

from __future__ import annotations

import math

from .tasks import TASKS

# Each benchmark of an average with the key of its own mean accuracy over its parts.
COMPOSITIONAL = (("valse", "avg"), ("sugarcrepe", "avg"), ("aro", "avg"))  # figure 5's x axis
# The wider average (not the paper's): the paper's three plus SugarCrepe++ (ITT) and VL-CheckList. Winoground is
# left out: it has no such mean (its text, image and group scores are all-or-nothing over 2x2 matchings, chance
# 25 / 25 / 16.7, and are reported apart).
COMPOSITIONAL_WIDER = (*COMPOSITIONAL, ("sugarcrepe_pp", "itt_avg"), ("vl_checklist", "avg"))
WIDER_ONLY = tuple(t for t, _ in COMPOSITIONAL_WIDER[len(COMPOSITIONAL):])


def field_suite_columns(runs: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(task, header, result key) of every compositional benchmark's headline (its `EvalTask.suite`) that some run
    has, in task order."""
    return [(name, header, key) for name, task in TASKS.items() for header, key in task.suite
            if any(key in r.get(name, {}) for r in runs.values())]


def render_field_suite(runs: dict[str, dict]) -> list[str]:
    """The field-suite table: one row per run, one column per compositional benchmark's headline score; written
    when some run has a compositional benchmark beyond the paper's three (whose averages figure 5 already shows)."""
    columns = field_suite_columns(runs)
    paper = {t for t, _ in COMPOSITIONAL}
    if not any(task not in paper for task, _, _ in columns):
        return []
    lines = ["## Field suite: compositional benchmarks (headline scores)\n",
             "| Model | " + " | ".join(h for _, h, _ in columns) + " |", "|---|" + "---:|" * len(columns)]
    for run, results in runs.items():
        lines.append(f"| {run} | " + " | ".join(_fmt(results.get(t, {}).get(k)) for t, _, k in columns) + " |")
    return [*lines, ""]


def _average_parts(results: dict, benchmarks) -> list[str]:
    return [t for t, key in benchmarks if key in results.get(t, {})]


def _average(results: dict, benchmarks) -> float | None:
    keys = dict(benchmarks)
    values = [results[t][keys[t]] for t in _average_parts(results, benchmarks)]
    return round(sum(values) / len(values), 2) if values else None


def _parts_note(results: dict, benchmarks) -> str:
    parts = _average_parts(results, benchmarks)
    return "" if len(parts) in (0, len(benchmarks)) else f" ({' + '.join(parts)} only)"


def compositional_parts(results: dict) -> list[str]:
    """The benchmarks among VALSE, SugarCrepe and ARO whose average is present in `results`."""
    return _average_parts(results, COMPOSITIONAL)


def compositional_average(results: dict) -> float | None:
    """Figure 5's x axis: mean of the VALSE, SugarCrepe and ARO averages (of those that ran)."""
    return _average(results, COMPOSITIONAL)


def wider_compositional_average(results: dict) -> float | None:
    """Not the paper's: the mean of the VALSE, SugarCrepe, ARO, SugarCrepe++ (ITT) and VL-CheckList averages (of
    those that ran). Reported beside figure 5's average, which stays the paper's."""
    return _average(results, COMPOSITIONAL_WIDER)


def zeroshot_average(results: dict) -> float | None:
    return results.get("zeroshot", {}).get("avg")


def _fmt(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def _columns(table, task: str, runs: dict[str, dict]) -> list[tuple[str, str]]:
    """The table's columns for these runs (see `Table.only_present` / `Table.extra_columns`)."""
    present = {k for r in runs.values() for k in r.get(task, {})}
    columns = [(h, k) for h, k in table.columns if not table.only_present or k in present or k == "avg"]
    if table.extra_columns:
        known = {k for _, k in table.columns}
        extra = [(k, k) for k in sorted(present - known)]
        at = len(columns) - (columns[-1][1] == "avg") if columns else 0
        columns[at:at] = extra
    return columns


def render_markdown(runs: dict[str, dict]) -> str:
    """One table per task present in any run (each task's `Table`, in task order); one row per run; `-` where a
    run lacks a number."""
    parts = []
    for name, task in TASKS.items():
        if not any(runs[r].get(name) for r in runs):
            continue
        columns = _columns(task.table, name, runs)
        parts.append(f"## {task.table.title}\n")
        parts.append("| Model | " + " | ".join(h for h, _ in columns) + " |")
        parts.append("|---|" + "---:|" * len(columns))
        for run, results in runs.items():
            row = results.get(name, {})
            parts.append(f"| {run} | " + " | ".join(_fmt(row.get(k)) for _, k in columns) + " |")
        parts.append("")
    summary = [(run, compositional_average(r), zeroshot_average(r)) for run, r in runs.items()]
    wider = any(runs[r].get(t) for r in runs for t in WIDER_ONLY)  # the wider column only when it says more
    if any(c is not None or z is not None for _, c, z in summary) or wider:
        parts.append("## Figure 5: compositional vs zero-shot average\n")
        header = "| Model | Compositional avg. (VALSE, SugarCrepe, ARO) | Zero-shot avg. |"
        if wider:
            header += " Wider compositional avg. (+ SugarCrepe++ ITT, VL-CheckList; not the paper's) |"
        parts.append(header)
        parts.append("|---|---:|---:|" + ("---:|" if wider else ""))
        for run, c, z in summary:
            row = f"| {run} | {_fmt(c)}{_parts_note(runs[run], COMPOSITIONAL)} | {_fmt(z)} |"
            if wider:
                row += f" {_fmt(wider_compositional_average(runs[run]))}{_parts_note(runs[run], COMPOSITIONAL_WIDER)} |"
            parts.append(row)
        parts.append("")
    parts += render_field_suite(runs)
    return "\n".join(parts)


def plot_tradeoff(runs: dict[str, dict], path: str) -> list[str]:
    """Scatter of compositional average (x) vs zero-shot average (y), one labelled point per run (figure 5).
    Returns the runs left out because they lack one of the two numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, left_out = [], []
    for run, results in runs.items():
        x, y = compositional_average(results), zeroshot_average(results)
        (points.append((run, x, y)) if x is not None and y is not None else left_out.append(run))
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=150)
    seen: dict[tuple, int] = {}
    for run, x, y in points:
        ax.scatter(x, y, s=60)
        stacked = seen.setdefault((x, y), 0)  # runs on the same point get their labels stacked
        seen[(x, y)] += 1
        ax.annotate(run + _parts_note(runs[run], COMPOSITIONAL), (x, y), textcoords="offset points",
                    xytext=(6, 4 + 11 * stacked), fontsize=9)
    ax.margins(x=0.25, y=0.15)  # room for the labels
    ax.set_xlabel("Compositional reasoning (avg. of VALSE, SugarCrepe, ARO), %")
    ax.set_ylabel("Zero-shot classification (avg.), %")
    ax.set_title("Compositional reasoning vs zero-shot classification")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return left_out
