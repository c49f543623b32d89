#!/usr/bin/env bash
# Device check of the LLM module (issue #17 item 5): the tiny smoke run, then the reduced IMDb
# run (simulator/llm/gpu_run.py) on the GPU, each under a timeout; tables, timings, logs -> $OUT.
# From the repository root:  OUT=DIR bash simulator/llm/gpu_check.sh   (about 5 min; <= 9 min)
# DEVICE=cpu and REDUCED_LIMIT=S (seconds) exercise the script itself on a machine without a GPU.
set -u
OUT=${OUT:-gpu-check-out}; mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false PLURALRLHF_CACHE=${PLURALRLHF_CACHE:-/tmp/plural-cache}
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/plural-numba}
W=/tmp/gpu-check; rm -rf "$W"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import torch, transformers as t; print(torch.__version__, torch.cuda.is_available(), t.__version__)"
} > "$OUT/gpu.txt" 2>&1
run() {  # run NAME SECONDS ARGS...: one gpu_run under a timeout, its rc appended to rc.txt
  local name=$1 limit=$2; shift 2
  timeout "$limit" "$PY" -m simulator.llm.gpu_run --device "${DEVICE:-cuda}" --output-dir "$W/$name" "$@" \
    > "$OUT/$name.log" 2>&1
  echo "$name rc=$? (timeout $limit s)" >> "$OUT/rc.txt"
  cp "$W/$name/table.md" "$OUT/$name-table.md" 2>/dev/null
  cp "$W/$name/timings.json" "$OUT/$name-timings.json" 2>/dev/null
}
run tiny 90 --size tiny --build-models tiny
run reduced "${REDUCED_LIMIT:-450}" --size reduced --build-models gpt2
cat "$OUT/rc.txt" "$OUT/gpu.txt"; cat "$OUT/reduced-table.md" 2>/dev/null || tail -20 "$OUT/reduced.log"
