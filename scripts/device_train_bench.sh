#!/usr/bin/env bash
# Training throughput on a GPU machine, in one go: the `--features gpu` binary (built
# elsewhere and carried as target/release/spikeword) runs `train-bench --device gpu` at
# several batch sizes (the LIF kernel; the per-frame graph once, for the ratio), then a
# short real training.
#
# Before carrying: `cargo build --release --features gpu`, and the Vulkan loader as .deb
# files in .gl/ (see the device notes), with target/release/spikeword and .gl carried.
# Prints clips/s per batch size and the training log; writes them under $OUT if set.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp}"
if ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if ! ldconfig -p | grep -q libvulkan; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
bin=target/release/spikeword
for b in 64 256 1024 4096; do
  timeout 120 "$bin" train-bench --device gpu --batch "$b" --steps 10 2>&1 | tee -a "$out/train_bench_gpu.jsonl"
done
echo "GPU, per-frame LIF graph, batch 1024:"
timeout 120 "$bin" train-bench --device gpu --layer-ops graph --batch 1024 --steps 10 2>&1 | tee -a "$out/train_bench_gpu.jsonl"
echo "CPU, batch 64:"
"$bin" train-bench --batch 64 --steps 10 | tee -a "$out/train_bench_gpu.jsonl"
# A short real training: 3 epochs on the bundled demo clips is too little data, so the
# run uses SPIKEWORD_DATA if it was carried (e.g. a copy of Speech Commands in shared/).
if [ -n "${SPIKEWORD_DATA:-}" ] && [ -d "$SPIKEWORD_DATA" ]; then
  timeout 300 "$bin" train --device gpu --split-rule salted --epochs 3 --batch 256 \
    --run-dir /tmp/gpu-run --out /tmp/gpu-run/model.safetensors 2>&1 | grep -v '\r' | tee "$out/train_gpu.log"
else
  echo "SPIKEWORD_DATA not set: no real training run"
fi
