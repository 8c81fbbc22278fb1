#!/bin/sh
# Installs the PyTorch build that suits this machine: the CUDA build where an NVIDIA GPU
# answers, the CPU build everywhere else (so a laptop or CI runner never downloads
# gigabytes of CUDA libraries it cannot use).
#
#   sh requirements/install-torch.sh PYTHON          install
#   sh requirements/install-torch.sh PYTHON --which  print the choice, install nothing
#
# TORCH_BUILD=cpu or TORCH_BUILD=cuda overrides the choice. A wheel that pip already
# finds locally (its find-links folder) is used without touching the network; only when
# there is none does pip ask the index named in the requirements file.
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
"$PY" -m pip install -q --no-index -r "$requirements" 2>/dev/null \
  || "$PY" -m pip install -q -r "$requirements"
