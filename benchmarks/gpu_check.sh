#!/usr/bin/env bash
# The whole GPU check on one GPU in at most 8 minutes: ladder-1.3b, bf16, seq 2048, the largest
# micro batch that fits, for ours (flex, sdpa, flash if installed; compile off and on) and
# transformers' BloomForCausalLM, one table (benchmarks/model_speed.py --gpu).
# Needs only torch, triton and transformers: no deepspeed, no flash-attn, nothing downloaded.
#   bash benchmarks/gpu_check.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)"
# 470 s for the table, the rest of the 8 minutes for start-up; rows print as they finish.
timeout --signal=INT 470 python -u benchmarks/model_speed.py --gpu --preset ladder-1.3b --seq 2048 \
    --repeats 5 --max-batch 32 "$@"
