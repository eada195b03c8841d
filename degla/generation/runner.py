"""Generation runs: captions in fixed shards, every rule, validation and retries, resumable
shard files, and the final dataset (parquet + dataset card) in the schema of the training code.

Output folder layout::

    output_dir/
      README.md                 dataset card (rules, prompt, model, counts, acceptance rates)
      generation_stats.json     the same counts, machine-readable
      data/train-*.parquet      the dataset: one row per caption
      shards/                   work files of the run (resume state); not uploaded
        run.json                the arguments that shape the output (checked on resume)
        shard-00000.parquet     rows of captions [0, shard_size) once finished
        shard-00000.json        their counts
        shard-00000.rejected.jsonl  every rejected LLM reply with its reason (for auditing)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset
from datasets.table import InMemoryTable
from tqdm.auto import tqdm

from ..atomic_io import write_file_atomic, write_text_atomic
from ..errors import OutputExistsError
from ..hub import push_folder
from ..schema import CAPTION, IMAGE_ID, IMAGE_PATH, RULES, check_rule, neg_column, source_column
from .constrained import make_plan
from .exemplars import ExemplarSampler
from .rule_based import rewrite_rule_based
from .rules import build_messages
from .validation import parse_reply, validate_negative

logger = logging.getLogger(__name__)

@dataclass
class GenerationConfig:
    """What shapes the generated negatives (stored in ``shards/run.json``; a resumed run must match)."""

    rules: tuple = RULES
    backend: str = "llm"  # "llm" or "rule_based"
    exemplars_per_prompt: int = 5
    exemplar_group_size: int = 32  # consecutive captions sharing one exemplar draw per rule (1: a draw per caption)
    max_retries: int = 2
    retry_sampling: bool = True
    decoding: str = "free"  # "free" or "constrained" (degla.generation.constrained: the reply keeps the rule's shape)
    candidates_per_prompt: int = 1  # replies per prompt (sampled when > 1); the first valid one is kept
    fallback: str = "none"  # "none" or "rule_based": fill what the LLM did not get right
    seed: int = 0
    shard_size: int = 1000
    model: str | None = None
    engine: str = "transformers"  # what ran the LLM: "transformers" or "vllm" (degla.generation.vllm_backend)

    def __post_init__(self):
        self.rules = tuple(check_rule(r) for r in self.rules)
        if self.backend not in ("llm", "rule_based"):
            raise ValueError(f"backend must be 'llm' or 'rule_based', got {self.backend!r}")
        if self.fallback not in ("none", "rule_based"):
            raise ValueError(f"fallback must be 'none' or 'rule_based', got {self.fallback!r}")
        if self.decoding not in ("free", "constrained"):
            raise ValueError(f"decoding must be 'free' or 'constrained', got {self.decoding!r}")
        if self.engine not in ("transformers", "vllm"):
            raise ValueError(f"engine must be 'transformers' or 'vllm', got {self.engine!r}")
        if (self.shard_size < 1 or self.max_retries < 0 or self.exemplars_per_prompt < 1
                or self.candidates_per_prompt < 1 or self.exemplar_group_size < 1):
            raise ValueError("shard_size, exemplars_per_prompt, exemplar_group_size and candidates_per_prompt must "
                             "be >= 1 and max_retries >= 0")


@dataclass
class RuleStats:
    accepted: Counter = field(default_factory=Counter)  # by source
    rejected: Counter = field(default_factory=Counter)  # by reason, every rejected attempt
    attempts: int = 0
    missing: int = 0  # captions left without a negative

    def to_dict(self):
        return {"accepted": dict(self.accepted), "rejected": dict(self.rejected), "attempts": self.attempts,
                "missing": self.missing}

    @classmethod
    def from_dict(cls, d):
        return cls(Counter(d["accepted"]), Counter(d["rejected"]), d["attempts"], d["missing"])

    def add(self, other: RuleStats):
        self.accepted.update(other.accepted)
        self.rejected.update(other.rejected)
        self.attempts += other.attempts
        self.missing += other.missing


def _shard_dir(output_dir) -> Path:
    return Path(output_dir) / "shards"


def _check_run(output_dir, config: GenerationConfig, n_captions: int, fingerprint: str):
    run_file = _shard_dir(output_dir) / "run.json"
    run = {"config": asdict(config), "n_captions": n_captions, "input_fingerprint": fingerprint}
    run["config"]["rules"] = list(config.rules)
    if run_file.exists():
        with open(run_file) as f:
            previous = json.load(f)
        previous["config"].setdefault("exemplar_group_size", 1)  # runs written before exemplar groups drew per caption
        previous["config"].setdefault("engine", "transformers")  # and before --engine, ran transformers
        if previous != run:
            diff = [k for k in set(previous["config"]) | set(run["config"])
                    if previous["config"].get(k) != run["config"].get(k)]
            if previous["n_captions"] != n_captions or previous["input_fingerprint"] != fingerprint:
                diff.append("captions")
            raise OutputExistsError(
                f"{output_dir} holds a run with other arguments (differs in: {', '.join(sorted(diff))}); "
                "give the same arguments to resume it, or a new --output_dir (or --overwrite) to start over"
            )
    else:
        run_file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_file, json.dumps(run, indent=1))


def captions_fingerprint(records: Dataset) -> str:
    """A hash of the captions and their order (a resumed run must read the same input)."""
    digest = hashlib.sha256()
    for start in range(0, len(records), 10_000):
        digest.update("\n".join(records[start:start + 10_000][CAPTION]).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def shard_ranges(n_captions: int, shard_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + shard_size, n_captions)) for s in range(0, n_captions, shard_size)]


def _generate_shard(captions: list[str], offset: int, config: GenerationConfig, rewriter, sampler):
    """Negatives for one shard: {rule: [neg]}, {rule: [source]}, {rule: RuleStats}, [rejected replies]."""
    n = len(captions)
    rejected = []
    negatives = {r: [None] * n for r in config.rules}
    sources = {r: [None] * n for r in config.rules}
    stats = {r: RuleStats() for r in config.rules}
    if config.backend == "llm":
        pending = [(r, i) for r in config.rules for i in range(n)]
        for attempt in range(config.max_retries + 1):
            if not pending:
                break
            plans = {}
            if config.decoding == "constrained":
                plans = {(r, i): make_plan(captions[i], r) for r, i in pending}
                for r, i in [key for key, plan in plans.items() if not plan.applicable]:
                    if attempt == 0:  # no decoding fits (one noun only for a noun swap, ...): no LLM call
                        stats[r].attempts += 1
                        stats[r].rejected["rule_not_applicable"] += 1
                pending = [key for key in pending if plans[key].applicable]
            conversations = [
                build_messages(captions[i], r, sampler.sample(r, offset + i, attempt, caption=captions[i]))
                for r, i in pending
            ]
            sample, seed = attempt > 0 and config.retry_sampling, config.seed + 7919 * attempt + offset
            if config.decoding == "constrained":
                candidates = rewriter.generate_constrained(conversations, [plans[key] for key in pending],
                                                           config.candidates_per_prompt, sample=sample, seed=seed)
            else:
                candidates = rewriter.generate_candidates(conversations, config.candidates_per_prompt, sample=sample,
                                                          seed=seed)
            still = []
            for (r, i), replies in zip(pending, candidates):
                stats[r].attempts += 1
                parsed = [parse_reply(reply) for reply in replies]
                reasons = [validate_negative(captions[i], negative, r) for negative in parsed]
                if None in reasons:  # the first valid candidate
                    negatives[r][i], sources[r][i] = parsed[reasons.index(None)], "llm"
                    stats[r].accepted["llm"] += 1
                else:
                    stats[r].rejected[reasons[0]] += 1
                    rejected += [{"caption_index": offset + i, "rule": r, "attempt": attempt, "candidate": k,
                                  "reason": reason, "caption": captions[i], "reply": reply}
                                 for k, (reply, reason) in enumerate(zip(replies, reasons))]
                    still.append((r, i))
            pending = still
    if config.backend == "rule_based" or config.fallback == "rule_based":
        for r in config.rules:
            for i in range(n):
                if negatives[r][i] is None:
                    negative = rewrite_rule_based(captions[i], r, seed=config.seed)
                    if negative is not None:
                        negatives[r][i], sources[r][i] = negative, "rule_based"
                        stats[r].accepted["rule_based"] += 1
                    elif config.backend == "rule_based":
                        stats[r].rejected["rule_not_applicable"] += 1
    for r in config.rules:
        stats[r].missing = sum(x is None for x in negatives[r])
    return negatives, sources, stats, rejected


def _shard_table(batch: dict, start: int, end: int, negatives, sources, rules) -> pa.Table:
    columns = {CAPTION: batch[CAPTION]}
    for name in (IMAGE_ID, IMAGE_PATH):
        if name in batch:
            columns[name] = batch[name]
    columns["caption_index"] = list(range(start, end))
    for r in rules:
        columns[neg_column(r)] = negatives[r]
    for r in rules:
        columns[source_column(r)] = sources[r]
    table = pa.table(columns)
    string_cols = [neg_column(r) for r in rules] + [source_column(r) for r in rules]
    return table.cast(pa.schema([
        pa.field(f.name, pa.string()) if f.name in string_cols else f for f in table.schema
    ]))


def run_generation(
    records: Dataset,
    output_dir: str | os.PathLike,
    config: GenerationConfig,
    rewriter=None,
    process_index: int = 0,
    num_processes: int = 1,
    show_progress: bool = True,
) -> list[int]:
    """Generate the shards of this process (shard ``j`` belongs to process ``j % num_processes``),
    skipping shards already on disk. Returns the indices of the shards written now.

    Args:
        records: the captions (see :func:`~degla.generation.inputs.read_captions`).
        output_dir: the run's folder; running again with the same arguments resumes.
        config: the generation settings.
        rewriter: an :class:`~degla.generation.backend.LLMRewriter` (not needed for ``backend="rule_based"``).
        process_index, num_processes: this process's rank and the world size (data parallel).
    """
    if config.backend == "llm" and rewriter is None:
        raise ValueError("backend 'llm' needs a rewriter (an LLMRewriter over a text-generation pipeline)")
    _check_run(output_dir, config, len(records), captions_fingerprint(records))
    sampler = (ExemplarSampler(config.exemplars_per_prompt, config.seed, group_size=config.exemplar_group_size)
               if config.backend == "llm" else None)
    shards = shard_ranges(len(records), config.shard_size)
    mine = [j for j in range(len(shards)) if j % num_processes == process_index]
    todo = [j for j in mine if not (_shard_dir(output_dir) / f"shard-{j:05d}.parquet").exists()]
    if len(todo) < len(mine):
        logger.info("resuming: %d of this process's %d shards already done", len(mine) - len(todo), len(mine))
    written = []
    for j in tqdm(todo, desc=f"shards (process {process_index})", disable=not show_progress, unit="shard"):
        start, end = shards[j]
        batch = records[start:end]
        negatives, sources, stats, rejected = _generate_shard(batch[CAPTION], start, config, rewriter, sampler)
        base = _shard_dir(output_dir) / f"shard-{j:05d}"
        write_text_atomic(base.with_suffix(".rejected.jsonl"), "".join(json.dumps(x) + "\n" for x in rejected))
        write_text_atomic(base.with_suffix(".json"), json.dumps({r: s.to_dict() for r, s in stats.items()}))
        table = _shard_table(batch, start, end, negatives, sources, config.rules)
        write_file_atomic(base.with_suffix(".parquet"), lambda p: pq.write_table(table, p))  # marks the shard done
        written.append(j)
    return written


def collect_stats(output_dir, rules) -> dict[str, RuleStats]:
    total = {r: RuleStats() for r in rules}
    for path in sorted(_shard_dir(output_dir).glob("shard-*.json")):
        if path.with_suffix(".parquet").exists():
            for r, d in json.loads(path.read_text()).items():
                total[r].add(RuleStats.from_dict(d))
    return total


def finalize(output_dir, config: GenerationConfig, n_captions: int, rows_per_file: int = 100_000,
             input_description: str = "", license: str | None = None) -> Dataset:
    """Assemble the finished shards into ``data/train-*.parquet``, write ``generation_stats.json``
    and the dataset card, and return the dataset. Fails if a shard is missing."""
    output_dir = Path(output_dir)
    shards = shard_ranges(n_captions, config.shard_size)
    paths = [_shard_dir(output_dir) / f"shard-{j:05d}.parquet" for j in range(len(shards))]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise RuntimeError(f"{len(missing)} shards not generated yet ({', '.join(missing[:5])}...); "
                           "run again to resume")
    table = pa.concat_tables([pq.read_table(p) for p in paths])
    if table.num_rows != n_captions or table.column("caption_index").to_pylist() != list(range(n_captions)):
        raise RuntimeError(f"the shards of {output_dir} do not hold captions 0..{n_captions - 1} exactly once")
    data_dir = output_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("train-*.parquet"):
        old.unlink()
    n_files = max(1, -(-table.num_rows // rows_per_file))
    for k in range(n_files):
        part = table.slice(k * rows_per_file, rows_per_file)
        pq.write_table(part, data_dir / f"train-{k:05d}-of-{n_files:05d}.parquet")
    stats = collect_stats(output_dir, config.rules)
    summary = {"n_captions": n_captions, "config": {**asdict(config), "rules": list(config.rules)},
               "rules": {r: s.to_dict() for r, s in stats.items()}}
    (output_dir / "generation_stats.json").write_text(json.dumps(summary, indent=1))
    from .card import write_dataset_card

    write_dataset_card(output_dir, config, stats, n_captions, list(table.column_names), input_description, license)
    # straight from the table: load_dataset(folder) caches by folder name and can return stale rows
    return Dataset(InMemoryTable(table))


def format_summary(stats: dict[str, RuleStats], n_captions: int) -> str:
    """A per-rule table: accepted (by source; ``llm_share``: the share of captions whose negative the LLM
    wrote), rejected attempts by reason (a prompt's first candidate's reason), coverage."""
    reasons = sorted({k for s in stats.values() for k in s.rejected})
    header = ["rule", "accepted_llm", "llm_share", "accepted_rule_based", "missing", "coverage", "attempts",
              "llm_acceptance"] + reasons
    lines = [header]
    for r, s in stats.items():
        llm_rate = f"{s.accepted['llm'] / s.attempts:.1%}" if s.attempts else "n/a"
        lines.append([r, str(s.accepted["llm"]), f"{s.accepted['llm'] / max(n_captions, 1):.1%}",
                      str(s.accepted["rule_based"]), str(s.missing),
                      f"{(n_captions - s.missing) / max(n_captions, 1):.1%}", str(s.attempts), llm_rate]
                     + [str(s.rejected.get(k, 0)) for k in reasons])
    widths = [max(len(row[c]) for row in lines) for c in range(len(header))]
    return "\n".join("  ".join(v.rjust(w) if c else v.ljust(w) for c, (v, w) in enumerate(zip(row, widths)))
                     for row in lines)


def push_to_hub(output_dir, repo_id: str, private: bool = False, token: str | None = None, api=None) -> str:
    """Upload the dataset folder (card, stats, ``data/``; not the work shards) to a dataset repo; returns the
    commit URL. ``api``: a ``huggingface_hub.HfApi`` (default: a new one with ``token``)."""
    return push_folder(output_dir, repo_id, repo_type="dataset", token=token, private=private, api=api,
                       allow_patterns=["README.md", "generation_stats.json", "data/*.parquet"],
                       commit_message="Upload DeGLA negative captions")
