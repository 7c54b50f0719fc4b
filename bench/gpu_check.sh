#!/usr/bin/env bash
# GPU check: on a machine with NVIDIA GPUs, install CNN Studio (CUDA wheels of the pinned torch from PyPI) into
# .venv-gpu, train the CIFAR-10 recipe with mixed precision and channels_last (chosen automatically on CUDA),
# run a 2-GPU torchrun smoke test when there are two GPUs, and print a table. About 10 minutes.
# Data: CIFAR-10 from $CNN_STUDIO_DATA, else downloaded from the official mirror. Without a GPU it stops at once.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "bench/gpu_check.sh: no NVIDIA GPU here (nvidia-smi finds none); run it on a machine with one." >&2
  exit 2
fi
GPUS=$(nvidia-smi -L | wc -l)
echo "==> $GPUS GPU(s): $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
[ -x .venv-gpu/bin/python ] || python3 -m venv .venv-gpu
echo "==> installing CNN Studio with CUDA PyTorch into .venv-gpu"
.venv-gpu/bin/python -m pip install -q --upgrade pip
.venv-gpu/bin/python -m pip install -q -e .
PY=.venv-gpu/bin/python
$PY -c "import torch; assert torch.cuda.is_available(), 'this torch has no CUDA'; print('==> torch', torch.__version__, 'CUDA', torch.version.cuda)"
OUT=$(mktemp -d)
echo "==> CIFAR-10: resnet_small, one-cycle SGD, 8 epochs (bf16/fp16 autocast, channels_last, pinned memory)"
START=$(date +%s)
$PY -m core train --dataset cifar10 --model resnet_small --epochs 8 --batch-size 256 --optimizer sgd --lr 0.2 \
  --schedule onecycle --weight-decay 5e-4 --translate 2 --hflip --out "$OUT/cifar" | tail -1 | tee "$OUT/cifar.txt"
CIFAR_S=$(( $(date +%s) - START ))
DDP="skipped (one GPU)"
if [ "$GPUS" -ge 2 ]; then
  echo "==> torchrun smoke test: 2 GPUs, NCCL"
  if $PY -m torch.distributed.run --standalone --nproc_per_node=2 -m core train --dataset digits --model fast_cnn \
       --epochs 3 --lr 0.003 --out "$OUT/ddp" | tail -1 | tee "$OUT/ddp.txt"; then DDP="ok: $(cat "$OUT/ddp.txt")"; else DDP="FAILED"; fi
fi
printf '\n| check | result |\n|---|---|\n'
printf '| GPU | %s x %s |\n' "$GPUS" "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
printf '| CIFAR-10 resnet_small, 8 epochs (%s s wall) | %s |\n' "$CIFAR_S" "$(cat "$OUT/cifar.txt")"
printf '| torchrun, 2 GPUs | %s |\n' "$DDP"
[ "$DDP" != "FAILED" ]
