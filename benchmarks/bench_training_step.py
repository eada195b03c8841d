"""One training step of ours (NegCLIP-style and DeGLA) against the reference stack's NegCLIP-style step, in one run.

    python benchmarks/bench_training_step.py --device cpu --dtype fp32 --batch_size 32 --steps 3 --warmup 1
    python benchmarks/bench_training_step.py --device cuda --dtype bf16 --batch_size 128 --steps 20 \\
        --output_json bench.json

Rows (ViT-B/32 at real size, random initialisation, no weights needed; `--model_size tiny` for tests):
- `negclip`: our `DeGLAForContrastive` with every λ = 0 (the hard-negative CLIP loss only) and no teacher held, as
  a NegCLIP run has none;
- `degla`: the same with the recipe's objective (λ from `DeGLAConfig`: IGC, TGC, distillation) and its frozen EMA
  teacher (forward under no_grad), plus the EMA update after the optimizer step, as the trainer's callback does;
- `reference`: the reference stack's NegCLIP-style step on the same architecture: open_clip's
  `create_model("ViT-B-32-quickgelu")` where open_clip imports (it needs torchvision), otherwise OpenAI's own
  `clip/model.py` (clip-anytorch, loaded by path, without the package's torchvision transforms); loss = open_clip's
  `ClipLoss` logits over [captions; negatives] (image→all B·(1+K) texts, caption→images), as NegCLIP and the
  authors' fork compute it.

Every row sees the same B images (224 px), B captions + B·K negatives (K = 4) of 77 tokens (captions of 10-25
real tokens, eot, then padding: the reference pads to 77 by construction), the same optimizer (fused AdamW, the
trainer's default, with the recipe's lr 1e-6, β = (0.9, 0.98), ε = 1e-6, weight decay 0.1 on the authors'
parameter groups), the logit-scale clamp after each step, fp32 weights and, with `--dtype bf16`, autocast (as
Trainer's `--bf16`). Each row runs in its own process (so its peak memory is its own: CUDA
`max_memory_allocated`, or on the CPU the peak RSS above the process's RSS before the model was built); the parent
drives the rows step by step in rotating order, so machine-load drift hits them alike (on the CPU, each process
returns its freed heap to the OS between steps, untimed, so that waiting rows hold only their persistent state).
Warm-up steps are excluded; each figure is the median of `--steps`.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = ("negclip", "degla", "reference")
EOT, SOT, VOCAB = 49407, 49406, 49408
# The recipe's optimizer (DeGLATrainingArguments: paper values) and the trainer's default implementation.
ADAMW = dict(lr=1e-6, betas=(0.9, 0.98), eps=1e-6)
WEIGHT_DECAY = 0.1
# One architecture, in OpenAI's `CLIP(...)` argument names; the HF config is derived from the same numbers.
ARCHITECTURES = {
    "vit-b-32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                     context_length=77, vocab_size=VOCAB, transformer_width=512, transformer_heads=8,
                     transformer_layers=12),
    "tiny": dict(embed_dim=32, image_resolution=32, vision_layers=2, vision_width=128, vision_patch_size=8,
                 context_length=77, vocab_size=VOCAB, transformer_width=128, transformer_heads=2,
                 transformer_layers=2),
}


# -- the models ---------------------------------------------------------------------------------------------------
def hf_clip_config(arch: dict):
    """transformers' `CLIPConfig` for an OpenAI-style architecture (QuickGELU, heads = width // 64 in vision)."""
    from transformers import CLIPConfig

    text = dict(vocab_size=arch["vocab_size"], hidden_size=arch["transformer_width"],
                intermediate_size=4 * arch["transformer_width"], num_hidden_layers=arch["transformer_layers"],
                num_attention_heads=arch["transformer_heads"], max_position_embeddings=arch["context_length"],
                hidden_act="quick_gelu", projection_dim=arch["embed_dim"], bos_token_id=SOT, eos_token_id=EOT,
                pad_token_id=EOT)
    vision = dict(hidden_size=arch["vision_width"], intermediate_size=4 * arch["vision_width"],
                  num_hidden_layers=arch["vision_layers"], num_attention_heads=arch["vision_width"] // 64,
                  image_size=arch["image_resolution"], patch_size=arch["vision_patch_size"], hidden_act="quick_gelu",
                  projection_dim=arch["embed_dim"])
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=arch["embed_dim"])


def openai_clip_module():
    """OpenAI's reference `clip/model.py` (clip-anytorch), imported by path: `clip/__init__` needs torchvision."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("OpenAI's reference CLIP code is missing: pip install --no-deps clip-anytorch")
    file_spec = importlib.util.spec_from_file_location("openai_clip_model",
                                                       os.path.join(spec.submodule_search_locations[0], "model.py"))
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    return module


def open_clip_available() -> bool:
    try:
        import open_clip  # noqa: F401
    except Exception:  # ImportError, or torchvision failing to load beside this torch
        return False
    return True


def resolve_reference(choice: str) -> str:
    if choice == "auto":
        return "open_clip" if open_clip_available() else "openai_clip"
    return choice


def build_reference(name: str, arch: dict):
    """The reference stack's CLIP (fp32 weights, as `create_model` / `CLIP(...)` give them)."""
    if name == "open_clip":
        import open_clip

        if arch == ARCHITECTURES["vit-b-32"]:
            return open_clip.create_model("ViT-B-32-quickgelu")
        vision = dict(layers=arch["vision_layers"], width=arch["vision_width"], patch_size=arch["vision_patch_size"],
                      image_size=arch["image_resolution"])
        text = dict(context_length=arch["context_length"], vocab_size=arch["vocab_size"],
                    width=arch["transformer_width"], heads=arch["transformer_heads"],
                    layers=arch["transformer_layers"])
        return open_clip.model.CLIP(arch["embed_dim"], vision, text, quick_gelu=True)
    return openai_clip_module().CLIP(**arch)


def reference_negclip_loss(model, pixel_values, texts, batch_size: int):
    """The reference's NegCLIP-style loss, as open_clip's `ClipLoss` computes its logits: normalised features,
    image→[captions; negatives] and caption→images, labels 0..B-1, the mean of both cross-entropies."""
    import torch
    import torch.nn.functional as F

    image = F.normalize(model.encode_image(pixel_values), dim=-1)
    text = F.normalize(model.encode_text(texts), dim=-1)
    scale = model.logit_scale.exp()
    logits_per_image = scale * image @ text.T  # (B, B + B·K)
    logits_per_text = scale * text[:batch_size] @ image.T  # (B, B)
    labels = torch.arange(batch_size, device=image.device)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


def build_ours(arch: dict, row: str):
    """Our `DeGLAForContrastive`: `degla` with the recipe's objective; `negclip` with every λ = 0 and no teacher."""
    import torch
    from transformers import CLIPModel

    from degla import DeGLAForContrastive

    if row == "degla":
        return DeGLAForContrastive.from_clip(CLIPModel(hf_clip_config(arch)))
    model = DeGLAForContrastive.from_clip(CLIPModel(hf_clip_config(arch)), lambda_igc=0, lambda_tgc=0,
                                          lambda_distill=0)
    assert not model.objective.needs_teacher()
    model.teacher = torch.nn.Module()  # a NegCLIP run holds no teacher; the forward never reads it at λ = 0
    return model


def make_optimizer(model, device: str):
    """Fused AdamW with the recipe's settings on the authors' two groups (`decays`: open_clip's main.py rule,
    applied to each row's own parameter names)."""
    import torch

    from degla.training.trainer import decays

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if decays(n, p)], "weight_decay": WEIGHT_DECAY},
              {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, fused=True, **ADAMW)


# -- the inputs -------------------------------------------------------------------------------------------------
def make_inputs(arch: dict, batch_size: int, num_negatives: int, seed: int = 0):
    """Images and B·(1+K) texts of 77 tokens: [sot, 10-25 random tokens, eot, 0-padding], captions first.

    Returns (pixel_values, texts (B·(1+K), L), attention_mask (B·(1+K), L)); OpenAI pads with 0 and pools at the
    eot (the highest id); ours reads the attention mask and pools at the first eot, so both see the same texts.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    n, length = batch_size * (1 + num_negatives), arch["context_length"]
    texts = torch.zeros(n, length, dtype=torch.long)
    mask = torch.zeros(n, length, dtype=torch.long)
    lengths = torch.randint(10, 26, (n,), generator=generator)
    for i, k in enumerate(lengths.tolist()):
        texts[i, 0], texts[i, 1:k + 1], texts[i, k + 1] = SOT, torch.randint(1, SOT, (k,), generator=generator), EOT
        mask[i, :k + 2] = 1
    size = arch["image_resolution"]
    pixel_values = torch.randn(batch_size, 3, size, size, generator=generator)
    return pixel_values, texts, mask


def ours_inputs(pixel_values, texts, mask, batch_size: int, num_negatives: int) -> dict:
    b, k = batch_size, num_negatives
    return dict(pixel_values=pixel_values, input_ids=texts[:b], attention_mask=mask[:b],
                negative_input_ids=texts[b:].view(b, k, -1), negative_attention_mask=mask[b:].view(b, k, -1))


# -- a row's process ----------------------------------------------------------------------------------------------
def current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def import_every_stack(reference: str) -> None:
    """Import transformers, degla and the reference stack (whatever the row), before the memory baseline."""
    import transformers  # noqa: F401

    import degla  # noqa: F401

    if resolve_reference(reference) == "open_clip":
        import open_clip  # noqa: F401
    else:
        openai_clip_module()


class RowRunner:
    """One row's model, optimizer and inputs; `step()` runs and times one training step."""

    def __init__(self, row: str, args):
        import torch

        self.torch, self.row, self.args = torch, row, args
        self.device = torch.device(args.device)
        import_every_stack(args.reference)  # the same imports in every row, so the baselines are alike
        self.rss_before_model = current_rss_bytes()
        torch.manual_seed(args.seed)
        arch = ARCHITECTURES[args.model_size]
        b, k = args.batch_size, args.num_negatives
        pixel_values, texts, mask = make_inputs(arch, b, k, args.seed)
        self.reference = resolve_reference(args.reference) if row == "reference" else None
        if row == "reference":
            self.model = build_reference(self.reference, arch).to(self.device).train()
            self.inputs = (pixel_values.to(self.device), texts.to(self.device))
            self.attn_implementation = "torch.nn.MultiheadAttention"
        else:
            self.model = build_ours(arch, row).to(self.device).train()
            self.inputs = {name: t.to(self.device) for name, t in ours_inputs(pixel_values, texts, mask, b, k).items()}
            self.attn_implementation = self.model.student.config._attn_implementation
        self.optimizer = make_optimizer(self.model, args.device)
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
        trained = self.model.student if row != "reference" else self.model
        self.parameters = sum(p.numel() for p in trained.parameters())

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def timed(self, fn) -> tuple[float, float]:
        """(wall-clock seconds, this process's CPU seconds over all its threads) of `fn`."""
        self.sync()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        self.sync()
        return time.perf_counter() - start, time.process_time() - start_cpu

    def loss(self):
        with self.autocast:
            if self.row == "reference":
                return reference_negclip_loss(self.model, *self.inputs, self.args.batch_size)
            return self.model(**self.inputs, return_loss=True).loss

    def forward_backward(self):
        self.optimizer.zero_grad(set_to_none=True)
        self.loss().backward()

    def optimizer_step(self):
        self.optimizer.step()
        with self.torch.no_grad():  # CLIP's / open_clip's clamp after every step (our trainer's callback)
            logit_scale = self.model.logit_scale
            logit_scale.clamp_(0, 4.605170185988092)

    def step(self) -> dict:
        parts = {"forward_backward": self.forward_backward, "optimizer": self.optimizer_step,
                 "ema": self.model.update_teacher if self.row == "degla" else None}
        times = {}
        for name, fn in parts.items():
            times[f"{name}_s"], times[f"{name}_cpu_s"] = self.timed(fn) if fn else (0.0, 0.0)
        return times

    def memory(self) -> dict:
        if self.device.type == "cuda":
            return {"peak_memory_bytes": self.torch.cuda.max_memory_allocated(self.device),
                    "memory_measure": "torch.cuda.max_memory_allocated"}
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        return {"peak_memory_bytes": peak - self.rss_before_model, "peak_rss_bytes": peak,
                "rss_before_model_bytes": self.rss_before_model,
                "memory_measure": "peak RSS of the row's process minus its RSS before the model was built"}


def release_freed_memory() -> None:
    """Hand the heap memory freed after a step back to the OS (glibc keeps it otherwise), so the row processes
    that wait their turn do not hold their last step's activations; the peak RSS is kept by the kernel."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def worker(args) -> None:
    """A row's process: reads `step` / `done` lines on stdin, answers one JSON line each on stdout."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = sys.stdout
    sys.stdout = sys.stderr  # anything a library prints stays off the protocol channel
    runner = RowRunner(args.worker, args)
    print(json.dumps({"ready": True}), file=out, flush=True)
    trim = release_freed_memory if args.device == "cpu" else (lambda: None)
    for line in sys.stdin:
        if line.strip() == "step":
            times = runner.step()
            trim()  # between steps, untimed: an idle row's process holds only its persistent state
            print(json.dumps(times), file=out, flush=True)
        elif line.strip() == "done":
            info = {"parameters": runner.parameters, "attn_implementation": runner.attn_implementation,
                    "reference": runner.reference, **runner.memory()}
            print(json.dumps(info), file=out, flush=True)
            return


# -- the parent ---------------------------------------------------------------------------------------------------
WORKER_OPTIONS = ("device", "dtype", "batch_size", "num_negatives", "model_size", "reference", "seed", "threads")


class Row:
    def __init__(self, name: str, args):
        command = [sys.executable, os.path.abspath(__file__), "--worker", name]
        for option in WORKER_OPTIONS:
            command += [f"--{option}", str(getattr(args, option))]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        self.name = name
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.times: list[dict] = []

    def ask(self, command: str) -> dict:
        if command:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} row's process exited (code {self.process.wait()}); see its stderr")
        return json.loads(line)


def median_of(times: list[dict], key: str) -> float:
    return statistics.median(t[key] for t in times)


def summarise(rows: dict[str, Row], info: dict[str, dict], args) -> dict:
    result = {"device": args.device, "dtype": args.dtype, "batch_size": args.batch_size,
              "num_negatives": args.num_negatives, "text_length": ARCHITECTURES[args.model_size]["context_length"],
              "image_size": ARCHITECTURES[args.model_size]["image_resolution"], "model_size": args.model_size,
              "steps": args.steps, "warmup": args.warmup, "threads": args.threads or None,
              "host": platform.node(), "optimizer": {"class": "torch.optim.AdamW(fused=True)", **ADAMW,
                                                      "weight_decay": WEIGHT_DECAY},
              "rows": {}}
    parts = ("forward_backward", "optimizer", "ema")
    for name, row in rows.items():
        med = {f"{part}{unit}": median_of(row.times, f"{part}{unit}") for part in parts for unit in ("_s", "_cpu_s")}
        step = sum(med[f"{part}_s"] for part in parts)
        result["rows"][name] = {**med, "step_s": step, "step_cpu_s": sum(med[f"{part}_cpu_s"] for part in parts),
                                "images_per_s": args.batch_size / step, **info[name], "all_steps": row.times}
    r = result["rows"]
    result["reference"] = r["reference"]["reference"] if "reference" in r else None
    # Wall-clock ratios (`_time`); on the CPU also of the processes' CPU time (`_cpu_time`), the steadier figure
    # on a shared machine. A step = forward+backward + optimizer (+ the EMA update for DeGLA).
    units = {"time": ("step_s", "forward_backward_s"), "cpu_time": ("step_cpu_s", "forward_backward_cpu_s")}
    for unit, (step_key, fb_key) in units.items():
        if unit == "cpu_time" and args.device != "cpu":
            continue
        for a, b in (("degla", "negclip"), ("negclip", "reference")):
            if a in r and b in r:
                result[f"ratio_{a}_over_{b}_{unit}"] = r[a][step_key] / r[b][step_key]
                result[f"ratio_{a}_over_{b}_forward_backward_{unit}"] = r[a][fb_key] / r[b][fb_key]
        if "degla" in r:
            ema_key = step_key.replace("step", "ema")
            result[f"ema_share_of_degla_step_{unit}"] = r["degla"][ema_key] / r["degla"][step_key]
    for a, b in (("degla", "negclip"), ("negclip", "reference")):
        if a in r and b in r:
            result[f"ratio_{a}_over_{b}_peak_memory"] = r[a]["peak_memory_bytes"] / r[b]["peak_memory_bytes"]
    return result


def run_rows(args) -> dict:
    rows = {name: Row(name, args) for name in args.rows}
    try:
        for row in rows.values():
            row.ask("")  # ready (model built)
        names = list(rows)
        for index in range(args.warmup + args.steps):
            order = names[index % len(names):] + names[:index % len(names)]  # rotate the order every step
            for name in order:
                times = rows[name].ask("step")
                if index >= args.warmup:
                    rows[name].times.append(times)
        info = {name: row.ask("done") for name, row in rows.items()}
    finally:
        for row in rows.values():
            row.process.stdin.close()
            if row.process.wait(timeout=120) != 0:
                raise RuntimeError(f"the {row.name} row's process failed (code {row.process.returncode})")
    return summarise(rows, info, args)


def report(result: dict) -> str:
    gib = 1 / 2 ** 30
    lines = [f"{result['model_size']}, b={result['batch_size']}, K={result['num_negatives']}, "
             f"L={result['text_length']}, {result['image_size']} px, {result['device']} {result['dtype']}, median of "
             f"{result['steps']} steps after {result['warmup']} warm-up; reference = {result['reference']}",
             "| row | forward+backward s | optimizer s | EMA s | step s | step CPU s | images/s | peak memory GiB | "
             "attention |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in result["rows"].items():
        lines.append(f"| {name} | {row['forward_backward_s']:.3f} | {row['optimizer_s']:.3f} | {row['ema_s']:.4f} | "
                     f"{row['step_s']:.3f} | {row['step_cpu_s']:.3f} | {row['images_per_s']:.2f} | "
                     f"{row['peak_memory_bytes'] * gib:.2f} | {row['attn_implementation']} |")
    targets = {"ratio_negclip_over_reference": 1.05, "ratio_degla_over_negclip": 1.35,
               "ratio_degla_over_negclip_peak_memory": 1.25, "ema_share_of_degla_step": 0.01}
    for key, value in result.items():
        if key.startswith(("ratio_", "ema_share")):
            goal = next((v for k, v in targets.items() if key in (k, f"{k}_time", f"{k}_cpu_time")), None)
            target = f"  (target <= {goal})" if goal is not None else ""
            lines.append(f"{key}: {value:.3f}{target}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                        help="bf16 = autocast over fp32 weights (Trainer's --bf16).")
    parser.add_argument("--batch_size", type=int, default=32, help="Captions (= images) per device per step.")
    parser.add_argument("--num_negatives", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="Measured steps per row (the median is reported).")
    parser.add_argument("--warmup", type=int, default=1, help="Steps per row run first and not measured.")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"Comma-separated rows among {ROWS}.")
    parser.add_argument("--reference", choices=["auto", "open_clip", "openai_clip"], default="auto",
                        help="The reference stack: open_clip where it imports (auto), else OpenAI's clip/model.py.")
    parser.add_argument("--model_size", choices=list(ARCHITECTURES), default="vit-b-32")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per row process (0: torch's default).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_json", help="Write every row and the ratios to this file.")
    parser.add_argument("--worker", choices=ROWS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        parser.error(f"--rows: unknown {unknown}; choose among {ROWS}")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return None
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("error: --device cuda but torch.cuda.is_available() is False (a CPU build of torch, or "
                             "no visible GPU); install the CUDA build of torch or use --device cpu")
    result = run_rows(args)
    print(report(result))
    if args.output_json:
        from degla.atomic_io import write_json_atomic

        write_json_atomic(args.output_json, result, indent=2)
    return result


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
