#!/usr/bin/env bash
# native/bench_gpu.sh: the Go CUDA trainer's speed beside the PyTorch reference,
# on the same card, in one run. Build first (CUDA_HOME=... ./build.sh native), then
#   native/bench_gpu.sh path/to/nli_torch.py
# Prints the card, PyTorch's training steps/s and gradient-search start-steps/s
# (200 tasks × 64 starts × 200 steps), the same for bin/native, the ratios, the
# settings of both searches, the peak GPU memory seen during the Go run, and
# the Go per-op time breakdown. bin/native searches with its defaults (TF32
# Gemm, hard check every 10 steps, folded first layer; training float32), and
# once more with a single hard check at the last step, the work PyTorch's
# search does (one selection at the end);
# GO_FLAGS adds flags to both Go runs, e.g. GO_FLAGS="--tf32=false --fold=false".
set -euo pipefail
REF=${1:?usage: native/bench_gpu.sh path/to/nli_torch.py}
N=${NATIVE:-bin/native}
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 PYTHONUNBUFFERED=1
tmp=$(mktemp -d)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 "$REF" --split shift-l --steps 600 --ntest 200 > "$tmp/torch.txt"
( while sleep 0.2; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; done > "$tmp/mem.txt" ) &
sampler=$!
# shellcheck disable=SC2086
"$N" bench --device cuda --train-steps 300 --search-steps 200 --tasks 200 --starts 64 ${GO_FLAGS:-} --json > "$tmp/go.json"
kill "$sampler" 2>/dev/null || true
# The same search with one hard check, at the last step: the work the PyTorch search does.
# shellcheck disable=SC2086
"$N" bench --device cuda --train-steps 0 --search-steps 200 --tasks 200 --starts 64 --check-every 200 ${GO_FLAGS:-} --json > "$tmp/go_end.json"
# 18 timed steps after 2 warm-up ones: hard checks at steps 10 and 20, about the 1 in 10 of a real search.
# shellcheck disable=SC2086
"$N" bench --device cuda --train-steps 20 --search-steps 18 --tasks 200 --starts 64 ${GO_FLAGS:-} --profile > "$tmp/profile.txt"
python3 - "$tmp" <<'PY'
import json, sys, os
d = sys.argv[1]
torch_train = torch_search = None
for line in open(os.path.join(d, "torch.txt")):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "train_steps_per_s" in r:
        torch_train = r["train_steps_per_s"]
    if r.get("part") == "test":
        torch_search = 200 * 64 * 200 / r["search_s"]
g = json.load(open(os.path.join(d, "go.json")))
mem = [int(x) for x in open(os.path.join(d, "mem.txt")).read().split() if x.isdigit()]
print(f"training: torch {torch_train:.1f} steps/s, go {g['train_steps_per_s']:.1f} steps/s, ratio {g['train_steps_per_s'] / torch_train:.2f}x")
print(f"search:   torch {torch_search:.0f} start-steps/s, go {g['search_start_steps_per_s']:.0f} start-steps/s, ratio {g['search_start_steps_per_s'] / torch_search:.2f}x")
ge = json.load(open(os.path.join(d, "go_end.json")))
print(f"search, one hard check at the end as torch's (--check-every 200): go {ge['search_start_steps_per_s']:.0f} start-steps/s, "
      f"ratio {ge['search_start_steps_per_s'] / torch_search:.2f}x")
print("settings: torch trains and searches with TF32 matmuls, no hard check during the search steps (one selection at the end);")
print(f"          go trains in float32; its search: TF32 {g.get('search_tf32')}, hard check every {g.get('search_check_every')} steps "
      f"and at the last, folded first layer {g.get('search_fold')}")
print(f"peak GPU memory during the Go run: {max(mem) if mem else 'n/a'} MiB")
PY
cat "$tmp/profile.txt"
