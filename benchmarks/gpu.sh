#!/usr/bin/env bash
# Every GPU check in one command (benchmarks/gpu.py): the torch engine in float64 at 10^7×256
# (Newton and the default, time per iteration, the card named) and the trainer's InfoPrompt and
# WARP steps on the packaged encoder (examples/s at batch 8 and 64, bf16 autocast, fp32
# trainables). Writes gpu.md and gpu.json under $OUT (default ./gpu-out). Under 8 minutes on one
# H100; each part has its own time limit so that one stuck part cannot take the rest with it.
#
#   bash benchmarks/gpu.sh                      # on the GPU machine, from the repository root
#   GPU_SH_SMALL=1 OUT=/tmp/x bash benchmarks/gpu.sh   # toy sizes: the CPU test of this script
# (GPU_SH_MODEL: another encoder, as the test's tiny BERT; PYTHON: the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-out}"
PYTHON="${PYTHON:-python}"
mkdir -p "$OUT"
small=()
if [ -n "${GPU_SH_SMALL:-}" ]; then small=(--small); fi
model=()
if [ -n "${GPU_SH_MODEL:-}" ]; then model=(--model "$GPU_SH_MODEL"); fi  # default: packaged MiniLM
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda:", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' | tee "$OUT/device.txt"
if [ -z "${GPU_SH_SMALL:-}" ] && ! "$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
    echo "gpu.sh: no CUDA device visible to torch; set GPU_SH_SMALL=1 for the CPU test" >&2
    exit 2
fi
# theory: 10^7×256 float64 is 20 GB of A; drawing it dominates (about a minute)
timeout 300 "$PYTHON" -m benchmarks.gpu --out "$OUT/theory" --parts theory "${small[@]}"
# trainer: InfoPrompt and WARP, batch 8 and 64
timeout 150 "$PYTHON" -m benchmarks.gpu --out "$OUT/trainer" --parts trainer "${small[@]}" "${model[@]}"
cat "$OUT/theory/gpu.md" "$OUT/trainer/gpu.md" > "$OUT/gpu.md"
echo "wrote $OUT/gpu.md"
