"""Caption readers, resumable sharded runs, the final dataset, the push path, and the LLM
loop (batching, retries, rejection counts) on a tiny random Llama through the real pipeline."""

import copy
import dataclasses
import fnmatch
import json
import os
import shutil

import pytest
from datasets import Dataset, DatasetDict, load_dataset

import degla.generation.runner as runner
from degla.generation import (DEFAULT_CAPTIONS, RULES, CaptionInputError, GenerationConfig, finalize, format_summary,
                              neg_column, push_to_hub, read_captions, run_generation, source_column, validate_negative)
from degla.generation.runner import collect_stats


# ---------------------------------------------------------------- inputs
def test_read_negclip_tsv_excerpt():
    ds = read_captions(DEFAULT_CAPTIONS)
    assert len(ds) == 48 and ds.column_names == ["caption", "image_path"]
    assert ds[0] == {"caption": "A child holding a flowered umbrella and petting a yak.",
                     "image_path": "coco/val2014/COCO_val2014_000000184613.jpg"}


def test_read_negclip_tsv_with_a_caption_spanning_two_lines():
    ds = read_captions(os.path.join(os.path.dirname(__file__), "fixtures", "negclip", "valid_neg_clip_excerpt.tsv"))
    assert len(ds) == 301  # 303 lines: the last record's quoted caption spans two lines
    assert ds[3]["caption"] == "A toilet sitting in a bathroom next to a sink."


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_coco_json(tmp_path):
    coco = {"images": [{"id": 7, "file_name": "COCO_train2014_000000000007.jpg"}],
            "annotations": [{"id": 1, "image_id": 7, "caption": "A dog on a couch. "},
                            {"id": 2, "image_id": 7, "caption": "A brown dog  sleeping."}]}
    ds = read_captions(_write(tmp_path / "captions.json", json.dumps(coco)))
    assert ds.to_dict() == {"caption": ["A dog on a couch.", "A brown dog sleeping."], "image_id": [7, 7],
                            "image_path": ["COCO_train2014_000000000007.jpg"] * 2}


def test_read_txt_and_saved_dataset(tmp_path):
    ds = read_captions(_write(tmp_path / "c.txt", "A dog on a couch.\nA cat on a mat.\n\n"))
    assert ds["caption"] == ["A dog on a couch.", "A cat on a mat."] and ds.column_names == ["caption"]
    Dataset.from_dict({"text": ["A red car."], "image_id": [3]}).save_to_disk(str(tmp_path / "flat"))
    assert read_captions(tmp_path / "flat").to_dict() == {"caption": ["A red car."], "image_id": [3]}
    DatasetDict({"validation": Dataset.from_dict({"caption": ["A cat."]})}).save_to_disk(str(tmp_path / "dd"))
    assert read_captions(tmp_path / "dd", split="validation")["caption"] == ["A cat."]
    with pytest.raises(CaptionInputError, match=r"splits \['validation'\]; pass --split"):
        read_captions(tmp_path / "dd")


@pytest.mark.parametrize("name,content,match", [
    ("bad.json", '{"annotations": [{"image_id": 1, "caption": "a dog"},]}', r"bad.json: malformed JSON at line 1"),
    ("list.json", '[{"caption": "a dog"}]', r"not a COCO captions file"),
    ("nocap.json", '{"annotations": [{"image_id": 1, "caption": "a"}, {"image_id": 2}]}',
     r"annotations\[1\]: needs 'image_id' and 'caption'"),
    ("empty.json", '{"annotations": [{"image_id": 1, "caption": "  "}]}',
     r"annotations\[0\] \(id None\): empty caption"),
    ("cols.tsv", "\tsentence_x\tfilepath\n0\ta dog\tx.jpg\n", r"no caption column .*'sentence_x'.*--caption_column"),
    ("ragged.tsv", "\ttitle\tfilepath\n0\ta dog\tx.jpg\n1\ta cat\n", r"ragged.tsv, line 3: 2 fields, the header has 3"),
    ("gap.txt", "a dog\n\na cat\n", r"gap.txt, line 2: empty caption"),
    ("long.txt", "a dog\n" + "word " * 80 + "\n",
     r"long.txt, line 2: caption of 80 words \(limit 64\).*--max_caption_words"),
    ("caps.parquet", "x", r"unknown caption format '.parquet'"),
])
def test_bad_inputs_name_file_row_and_fix(tmp_path, name, content, match):
    with pytest.raises(CaptionInputError, match=match):
        read_captions(_write(tmp_path / name, content))


def test_bad_inputs_missing_things(tmp_path):
    with pytest.raises(CaptionInputError, match="no such file"):
        read_captions(tmp_path / "nope.txt")
    Dataset.from_dict({"text": ["A red car."]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(CaptionInputError, match=r"no column 'caption_text'; the columns are \['text'\]"):
        read_captions(tmp_path / "ds", caption_column="caption_text")


# ---------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def records():
    return read_captions(DEFAULT_CAPTIONS)


RB = dict(backend="rule_based", shard_size=10)


def _rows(output_dir):
    # a private cache: load_dataset caches local folders by name and would return another folder's rows
    return load_dataset(str(output_dir), split="train", cache_dir=str(output_dir) + "-cache").to_list()


def test_rule_based_run_schema_card_and_stats(tmp_path, records):
    config = GenerationConfig(**RB)
    assert run_generation(records, tmp_path, config, show_progress=False) == [0, 1, 2, 3, 4]
    ds = finalize(tmp_path, config, len(records))
    assert ds.column_names == (["caption", "image_path", "caption_index"] + [neg_column(r) for r in RULES]
                               + [source_column(r) for r in RULES])
    assert ds["caption_index"] == list(range(48)) and ds["caption"] == records["caption"]
    for rule in RULES:
        for row in ds:
            neg = row[neg_column(rule)]
            assert (neg is None) == (row[source_column(rule)] is None)
            if neg is not None:
                assert validate_negative(row["caption"], neg, rule) is None
    stats = json.loads((tmp_path / "generation_stats.json").read_text())
    for rule in RULES:
        s = stats["rules"][rule]
        missing = sum(x is None for x in ds[neg_column(rule)])
        assert s["missing"] == missing and s["accepted"].get("rule_based", 0) == 48 - missing
        assert s["rejected"].get("rule_not_applicable", 0) == missing  # nothing silently dropped
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "path: data/train-*.parquet" in card
    assert "| `neg_swap_nouns` | Swap the nouns in the sentence |" in card and "Input text: <{caption}>" in card
    assert _rows(tmp_path) == ds.to_list()
    summary = format_summary(collect_stats(tmp_path, RULES), 48)
    assert summary.splitlines()[0].split()[:5] == ["rule", "accepted_llm", "llm_share", "accepted_rule_based",
                                                   "missing"]


def test_resume_after_crash_between_shards(tmp_path, records, monkeypatch):
    config = GenerationConfig(**RB)
    real = runner._generate_shard
    calls = []

    def crash_on_fourth_shard(captions, offset, *args):
        calls.append(offset)
        if offset == 30:
            raise KeyboardInterrupt("simulated kill")
        return real(captions, offset, *args)

    monkeypatch.setattr(runner, "_generate_shard", crash_on_fourth_shard)
    with pytest.raises(KeyboardInterrupt):
        run_generation(records, tmp_path / "run", config, show_progress=False)
    assert sorted(p.name for p in (tmp_path / "run" / "shards").glob("*.parquet")) == [
        "shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet"]
    with pytest.raises(RuntimeError, match="2 shards not generated yet"):
        finalize(tmp_path / "run", config, len(records))
    monkeypatch.setattr(runner, "_generate_shard", real)
    assert run_generation(records, tmp_path / "run", config, show_progress=False) == [3, 4]  # only what is missing
    resumed = finalize(tmp_path / "run", config, len(records)).to_list()
    run_generation(records, tmp_path / "once", config, show_progress=False)
    assert resumed == finalize(tmp_path / "once", config, len(records)).to_list()  # no loss, no duplicate
    assert [r["caption_index"] for r in resumed] == list(range(48))
    assert json.loads((tmp_path / "run" / "generation_stats.json").read_text()) == \
        json.loads((tmp_path / "once" / "generation_stats.json").read_text())


def test_resume_refuses_other_arguments(tmp_path, records):
    run_generation(records, tmp_path, GenerationConfig(**RB), show_progress=False)
    with pytest.raises(ValueError, match=r"differs in: seed.*--output_dir"):
        run_generation(records, tmp_path, GenerationConfig(seed=1, **RB), show_progress=False)
    with pytest.raises(ValueError, match=r"differs in: captions"):
        run_generation(records.select(range(20)), tmp_path, GenerationConfig(**RB), show_progress=False)


def test_data_parallel_shards_are_disjoint(tmp_path, records):
    config = GenerationConfig(**RB)
    assert run_generation(records, tmp_path, config, process_index=0, num_processes=2, show_progress=False) == [0, 2, 4]
    assert run_generation(records, tmp_path, config, process_index=1, num_processes=2, show_progress=False) == [1, 3]
    run_generation(records, tmp_path / "single", config, show_progress=False)
    assert finalize(tmp_path, config, 48).to_list() == finalize(tmp_path / "single", config, 48).to_list()


class LocalHub:
    """Stands in for huggingface_hub.HfApi (the Hub is unreachable in tests): a dataset repo is a
    local folder; uploads copy the files the allow patterns select."""

    def __init__(self, root):
        self.root, self.calls = root, []

    def create_repo(self, repo_id, repo_type, private, exist_ok):
        self.calls.append(("create_repo", repo_id, repo_type, private))
        os.makedirs(self.root / repo_id, exist_ok=exist_ok)

    def upload_folder(self, repo_id, repo_type, folder_path, allow_patterns, commit_message):
        self.calls.append(("upload_folder", repo_id, repo_type))
        for dirpath, _, files in os.walk(folder_path):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), folder_path)
                if any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                    os.makedirs(os.path.dirname(self.root / repo_id / rel), exist_ok=True)
                    shutil.copy(os.path.join(dirpath, name), self.root / repo_id / rel)
        return f"local://{repo_id}"


def test_push_to_hub_uploads_a_loadable_dataset(tmp_path, records):
    config = GenerationConfig(**RB)
    run_generation(records, tmp_path / "out", config, show_progress=False)
    rows = finalize(tmp_path / "out", config, len(records)).to_list()
    hub = LocalHub(tmp_path / "hub")
    assert push_to_hub(tmp_path / "out", "org/negatives", private=True, api=hub) == "local://org/negatives"
    assert hub.calls == [("create_repo", "org/negatives", "dataset", True),
                         ("upload_folder", "org/negatives", "dataset")]
    repo = tmp_path / "hub" / "org" / "negatives"
    assert sorted(os.listdir(repo)) == ["README.md", "data", "generation_stats.json"]  # work shards stay local
    assert _rows(repo) == rows


# ---------------------------------------------------------------- LLM loop, tiny random model
@pytest.fixture(scope="module")
def tiny_rewriter():
    from degla.testing_utils import clip_bpe_tokenizer, tiny_llm_rewriter

    tokenizer = clip_bpe_tokenizer()
    tokenizer.model_max_length = 4096
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    return tiny_llm_rewriter(tokenizer, batch_size=8, max_new_tokens=6)


def test_batched_generation_equals_one_at_a_time(tiny_rewriter, records):
    from degla.generation import ExemplarSampler, build_messages

    sampler = ExemplarSampler()
    convs = [build_messages(c, "swap_nouns", sampler.sample("swap_nouns", i))
             for i, c in enumerate(records["caption"][:6])]
    batched = tiny_rewriter.generate(convs)
    tiny_rewriter.batch_size = 1
    try:
        single = tiny_rewriter.generate(convs)
    finally:
        tiny_rewriter.batch_size = 8
    assert batched == single and len(set(batched)) > 1  # left padding leaves replies unchanged


def test_llm_loop_counts_every_rejection_and_falls_back(tmp_path, records, tiny_rewriter):
    small = records.select(range(4))
    config = GenerationConfig(rules=("swap_nouns", "replace_nouns"), max_retries=1, shard_size=4, fallback="rule_based",
                              model="tiny-random-llama")
    run_generation(small, tmp_path, config, tiny_rewriter, show_progress=False)
    ds = finalize(tmp_path, config, 4)
    stats = collect_stats(tmp_path, config.rules)
    for rule in config.rules:
        s = stats[rule]
        # a random model never writes a valid negative: 4 greedy attempts + 4 sampled retries, all rejected
        assert s.attempts == 8 and s.accepted["llm"] == 0 and sum(s.rejected.values()) == 8
        assert s.accepted["rule_based"] + s.missing == 4
        assert set(ds[source_column(rule)]) <= {"rule_based", None}
    assert "tiny-random-llama" in (tmp_path / "README.md").read_text()
    rejected = [json.loads(line)
                for line in (tmp_path / "shards" / "shard-00000.rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == 16 and {r["attempt"] for r in rejected} == {0, 1}  # every rejected reply kept for audit
    assert all(r["reason"] == validate_negative(r["caption"], runner.parse_reply(r["reply"]), r["rule"])
               for r in rejected)


@pytest.mark.slow
def test_accelerate_launch_two_processes_matches_one(tmp_path):
    import subprocess
    import sys

    import pyarrow.parquet as pq

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "ACCELERATE_USE_CPU": "true",
           "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = ["--captions", str(DEFAULT_CAPTIONS), "--backend", "rule_based", "--shard_size", "10", "--max_captions",
            "48"]
    script = os.path.join(root, "scripts", "generate_negatives.py")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", script, *args,
              "--output_dir", str(tmp_path / "two")]
    result = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("saved 48 rows") == 1  # only the main process assembles and reports
    single = subprocess.run([sys.executable, script, *args, "--output_dir", str(tmp_path / "one")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    two = pq.read_table(tmp_path / "two" / "data" / "train-00000-of-00001.parquet")
    assert two.equals(pq.read_table(tmp_path / "one" / "data" / "train-00000-of-00001.parquet"))


class _RecordingRewriter:
    """Replies with the caption (always rejected) and records every prompt it is given."""

    def __init__(self):
        self.prompts = []

    def generate_candidates(self, conversations, num_candidates=1, sample=False, seed=None):
        self.prompts += [c[-1]["content"] for c in conversations]
        return [[c[-1]["content"].split("Input text: <")[1].split(">")[0]] * num_candidates for c in conversations]


def test_exemplar_groups_span_shards_and_a_resumed_run_draws_the_same(tmp_path, records):
    small = records.select(range(8))
    config = GenerationConfig(rules=("swap_nouns",), max_retries=0, shard_size=4, exemplar_group_size=3)
    full = _RecordingRewriter()
    run_generation(small, tmp_path / "full", config, full, show_progress=False)
    examples = [p.split("Here are the examples: ")[1].split(". ensuring")[0] for p in full.prompts]
    assert len(examples) == 8 and len(set(examples[0:3])) == len(set(examples[3:6])) == 1
    assert len({examples[0], examples[3], examples[6]}) == 3 and examples[6] == examples[7]
    run_generation(small, tmp_path / "killed", config, _RecordingRewriter(), show_progress=False)
    os.remove(tmp_path / "killed" / "shards" / "shard-00001.parquet")  # killed before its second shard finished
    resumed = _RecordingRewriter()
    assert run_generation(small, tmp_path / "killed", config, resumed, show_progress=False) == [1]
    assert resumed.prompts == full.prompts[4:]  # caption 4 and 5 still share caption 3's draw


def test_run_written_before_exemplar_groups_resumes_with_one_draw_per_caption(tmp_path, records):
    small = records.select(range(4))
    config = GenerationConfig(rules=("swap_nouns",), max_retries=0, shard_size=2, exemplar_group_size=1)
    run_generation(small, tmp_path, config, _RecordingRewriter(), show_progress=False)
    run_file = tmp_path / "shards" / "run.json"
    run = json.loads(run_file.read_text())
    del run["config"]["exemplar_group_size"], run["config"]["engine"]  # as written before these options existed
    run_file.write_text(json.dumps(run))
    os.remove(tmp_path / "shards" / "shard-00001.parquet")
    with pytest.raises(runner.OutputExistsError, match="exemplar_group_size"):  # the default is 32 now
        run_generation(small, tmp_path, GenerationConfig(rules=("swap_nouns",), max_retries=0, shard_size=2),
                       _RecordingRewriter())
    with pytest.raises(runner.OutputExistsError, match=r"differs in: engine\)"):  # it ran transformers
        run_generation(small, tmp_path, dataclasses.replace(config, engine="vllm"), _RecordingRewriter())
    assert run_generation(small, tmp_path, config, _RecordingRewriter(), show_progress=False) == [1]


def test_shared_prefix_cache_gives_the_uncached_greedy_tokens(tiny_rewriter, records):
    """Free and constrained greedy replies through the shared-prefix KV cache are the replies of the
    uncached paths (the pipeline; the per-prompt prefill) and of plain `generate` on each whole prompt."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from degla.generation import ExemplarSampler, build_messages
    from degla.generation.constrained import make_plan

    torch.manual_seed(0)  # large random weights: a token's logits depend strongly on its position and context
    config = LlamaConfig(**{**tiny_rewriter.pipe.model.config.to_dict(), "num_hidden_layers": 2,
                            "initializer_range": 1.0})
    tiny_rewriter = copy.copy(tiny_rewriter)
    tiny_rewriter.pipe = copy.copy(tiny_rewriter.pipe)
    tiny_rewriter.pipe.model = LlamaForCausalLM(config).eval()

    sampler = ExemplarSampler(k=3, group_size=3)
    captions = records["caption"][:6]
    convs = [build_messages(c, "swap_nouns", sampler.sample("swap_nouns", i)) for i, c in enumerate(captions)]
    plans = [make_plan(c, "swap_nouns") for c in captions]
    model, tokenizer = tiny_rewriter.pipe.model, tiny_rewriter.pipe.tokenizer
    assert model.dtype == torch.float32
    ids = [tokenizer(c[-1]["content"], add_special_tokens=False)["input_ids"] for c in convs]
    reference = []
    for prompt in ids:  # one prompt at a time, no padding, no cache given
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=6, pad_token_id=tokenizer.pad_token_id)
        reference.append(tokenizer.decode(out[0, len(prompt):], skip_special_tokens=True))
    results = {}
    for shared in (False, True):
        tiny_rewriter.shared_prefix, tiny_rewriter.prefill_tokens = shared, 0
        try:
            results[shared] = (tiny_rewriter.generate(convs), tiny_rewriter.generate_constrained(convs, plans),
                               tiny_rewriter.prefill_tokens)
        finally:
            tiny_rewriter.shared_prefix = True
    assert results[True][0] == results[False][0] == reference and len(set(reference)) > 1
    assert results[True][1] == results[False][1]
    assert results[False][2] == 2 * sum(map(len, ids))  # every prompt prefilled whole, once per call
    # each group of 3 shares its exemplars: its common tokens are prefilled once per call
    common = [next(t for t in range(len(ids[g])) if len({tuple(ids[i][:t + 1]) for i in range(g, g + 3)}) > 1)
              for g in (0, 3)]
    assert min(common) > 0.6 * min(map(len, ids))
    assert results[True][2] == 2 * (sum(map(len, ids)) - 2 * sum(common))
