#!/usr/bin/env bash
# Download, on a machine with a package registry, the wheels that benchmarks/device_check.sh installs on a GPU
# machine that has torch, transformers, accelerate, peft, torchvision and scikit-image but no registry (no
# `datasets`, `ftfy` or OpenAI's CLIP code). Python 3.12, x86-64, pure-Python wheels only; versions as tested here.
#
#   bash benchmarks/device_wheels.sh [WHEEL_DIR]      # default .whl (add "/.whl/" to .git/info/exclude)
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${1:-.whl}
PY=${PYTHON:-python3}
mkdir -p "$WHEELS"
# datasets and its own needs beyond that image; ftfy (caption cleaning); clip-anytorch (the BPE vocabulary and
# OpenAI's clip/model.py, the reference when open_clip is absent); open-clip-torch (the reference stack itself).
PACKAGES=(datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 ftfy==6.3.1 wcwidth==0.7.0 clip-anytorch==2.6.0
          open-clip-torch==3.3.0)
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$WHEELS" "${PACKAGES[@]}"
ls -l "$WHEELS"
