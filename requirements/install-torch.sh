#!/bin/sh
# Installs the PyTorch build that suits this machine: the CUDA build where an NVIDIA GPU
# answers, the CPU build everywhere else (so a laptop or CI runner never downloads
# gigabytes of CUDA libraries it cannot use).
#
#   sh requirements/install-torch.sh PYTHON          install
#   sh requirements/install-torch.sh PYTHON --which  print the choice, install nothing
#
# TORCH_BUILD=cpu or TORCH_BUILD=cuda overrides the choice. For the CPU build, a wheel
# that pip already finds locally (its find-links folder) is used without asking PyTorch's
# index; only when there is none is that index (TORCH_CPU_INDEX) added.
set -eu
PY=${1:?usage: install-torch.sh PYTHON [--which]}
HERE=$(dirname "$0")

build=${TORCH_BUILD:-auto}
if [ "$build" = auto ]; then
  if nvidia-smi -L >/dev/null 2>&1; then build=cuda; else build=cpu; fi
fi
case $build in
  cpu) requirements=$HERE/cpu.txt ;;
  cuda) requirements=$HERE/gpu.txt ;;
  *) echo "install-torch: TORCH_BUILD must be auto, cpu or cuda, not '$build'" >&2; exit 2 ;;
esac

if [ "${2:-}" = --which ]; then
  echo "$build $requirements"
  exit 0
fi
echo "installing the $build build of PyTorch ($requirements)"
if [ "$build" = cuda ]; then
  "$PY" -m pip install -q -r "$requirements"
else
  # pip's own indexes and find-links first (a local wheel, its dependencies from PyPI);
  # PyPI has no `+cpu` wheel, so without a local one this fails at once and the CPU index
  # is asked.
  "$PY" -m pip install -q -r "$requirements" 2>/dev/null \
    || "$PY" -m pip install -q --extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}" \
         -r "$requirements"
fi
