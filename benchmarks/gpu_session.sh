#!/usr/bin/env bash
# The GPU measurements (benchmarks/bench_gpu.py, and bench_overhead.py's null
# network on the GPU), as one command for a lent GPU machine (the workplace's
# `device` tool: 15 minutes in all, its own Python and torch, no registry).
#
# Prepare here, once, in the repository's root (wheels for what the machine's
# image lacks, Fashion-MNIST's files):
#
#   echo /.gpu/ >> .git/info/exclude
#   mkdir -p .gpu/whl .gpu/fashion
#   cp /usr/share/datasets/fashion-mnist/*.gz .gpu/fashion/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .gpu/whl skorch==1.4.0 iterative-stratification==0.1.9 scikit-learn==1.9.1
#
# Then run, with the device tool: carry [".gpu"], timeout_s=600, command
#
#   bash benchmarks/gpu_session.sh
#
# and copy the files it leaves under $OUT to benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
mkdir -p /usr/share/datasets/fashion-mnist
cp .gpu/fashion/*.gz /usr/share/datasets/fashion-mnist/
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
python3 benchmarks/bench_gpu.py --out "$out/gpu.md"
python3 benchmarks/bench_overhead.py --parts null --out "$out/overhead_gpu.md"
